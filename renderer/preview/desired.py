"""What one revision makes of one node: its services' desired files and each unit's config hash.

The steps are the run's own (renderer.runner.Desire: load, bind, render, override, validate), one
Desire per revision, its Hiera and Jinja environment shared by every node; only the scope changes
from node to node. Nothing is observed: no root, no state dir. A file's identity is its target
(renderer.targets), shown under the default roots; its hash covers the bytes, the owner and group
*names* the definition gives (no container's passwd is read) and the mode a new file gets. A
unit's config hash is renderer.state.config_hash over the files that restart it, so a preview and
a run agree on which units a change restarts, without any record.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, NamedTuple

from renderer.errors import InternalError, RenderError, error_line
from renderer.masking import Masker
from renderer.names import printable
from renderer.plan import desired_mode
from renderer.preview.nodes import Node
from renderer.preview.revision import Revision
from renderer.rolling import policy_of
from renderer.runner import Desire, Settings
from renderer.scope import facts_scope
from renderer.services import Action
from renderer.sources import Source
from renderer.state import action_key, config_hash
from renderer.targets import Roots

SERVICES_KEY = "render::services"         # the services a node runs, an array
ROOTS = Roots(Path("/var/lib/machines"), Path("/"))  # display paths only: nothing is read


class DesiredFile(NamedTuple):
    path: str                 # the display path
    data: bytes
    meta: str                 # "owner:group mode"
    hash: str
    names: frozenset[str] | None  # options holding a secret (None: not looked for yet)
    secret_options: tuple[str, ...]  # the definition's
    whole: bool               # ``secret: true``: every value is masked
    actions: tuple[Action, ...]


class DesiredService(NamedTuple):
    machine: str | None
    files: dict[str, DesiredFile]                  # by target key
    units: dict[str, tuple[Action, str]]           # action key -> (action, config hash)
    errors: tuple[str, ...] = ()                   # error lines, masked, paths shown REF:path
    clusters: tuple[tuple[str, str], ...] = ()     # (group, unit) of each rolling policy


class DesiredNode(NamedTuple):
    services: dict[str, DesiredService]
    errors: tuple[str, ...] = ()                   # the node's own: facts, the services key
    # cluster group -> {service, units}: the node's rolling restart policies, the warning's
    clusters: dict[str, Any] = {}  # noqa: RUF012


def desire_for(revision: Revision, masker: Masker, environment: str) -> Desire:
    """The revision's Desire: its hiera.yaml and templates, undecryptable eyaml sealed."""
    from renderer.templates import Renderer

    source = Source(revision.hieradata, None, (revision.hieradata / "modules",), {})
    settings = Settings(services=(), templates=revision.templates, hieradata=revision.hieradata,
                        roots=ROOTS, source=source, environment=environment)
    desire = Desire(settings, masker)
    desire.renderer = Renderer(revision.templates)
    return desire


def _file_hash(data: bytes, meta: str) -> str:
    digest = hashlib.sha256(f"{meta}\n".encode())
    digest.update(data)
    return digest.hexdigest()


def desire_node(desire: Desire, revision: Revision, node: Node, environment: str,
                services_key: str = SERVICES_KEY) -> DesiredNode:
    """Every service ``services_key`` lists in the node's scope; a service that fails fails
    alone, a node whose facts or list cannot be read fails whole."""
    try:
        scope = facts_scope(node.facts, node.where, node.environment or environment,
                            node.extensions, node.name)
        desire.scope = scope
        hiera = desire.hiera()
        if hiera.sealed is None:
            hiera.sealed = set()
        # with ``service`` empty, as a run leaves no service level to match, minus the warning
        top = scope.with_variables(service="")
        names = hiera.lookup(services_key, top, default=None)
        if names is None:
            raise RenderError(f"hiera key '{services_key}' not found: it lists the services "
                              "the node runs", path=node.where)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RenderError(f"hiera key '{services_key}' must be an array of service names",
                              path=node.where)
        services = {name: _service(desire, revision, name) for name in dict.fromkeys(names)}
    except RenderError as exc:
        return DesiredNode({}, (_line(desire.masker, revision, exc),))
    finally:
        desire.forget_scopes()  # one node's scopes are not needed by the next
    return DesiredNode(services, (), _clusters(services))


def _clusters(services: dict[str, DesiredService]) -> dict[str, Any]:
    """The cluster groups the node is a member of, by its rolling restart policies (the group
    looked up in the node's scope, as a run binds it): group -> {service, units}."""
    groups: dict[str, Any] = {}
    for name, service in services.items():
        for group, unit in service.clusters:
            found = groups.setdefault(group, {"service": name, "units": []})
            if unit not in found["units"]:
                found["units"].append(unit)
    return groups


def _line(masker: Masker, revision: Revision, error: RenderError) -> str:
    return revision.shown(masker.mask_text(error_line(error)))


def _service(desire: Desire, revision: Revision, name: str) -> DesiredService:
    try:
        service, rendered = desire.desire(name)
    except RenderError as exc:
        return _failed(desire, revision, name, exc)
    except Exception as exc:  # noqa: BLE001 - a bug in render fails its service only
        return _failed(desire, revision, name, InternalError.from_exception(exc))
    files: dict[str, DesiredFile] = {}
    sets: dict[Action, list[str]] = {}
    for item in rendered:
        spec = item.spec
        target = ROOTS.target(spec, service.machine)
        # the options holding a secret decide a new file's mode when the definition gives
        # none; otherwise only a diff needs them (renderer.preview.compare finds them then)
        names = None if spec.mode is not None else desire.masker.secret_names(
            item.data.decode("utf-8", "replace"), spec.secret_options)
        meta = f"{spec.owner or 'root'}:{spec.group or 'root'} " \
               f"{desired_mode(spec, None, bool(names)):04o}"
        files[target.key] = DesiredFile(ROOTS.display(target), item.data, meta,
                                        _file_hash(item.data, meta), names,
                                        spec.secret_options, spec.secret, spec.actions)
        for action in spec.actions:
            keys = sets.setdefault(action, [])
            if target.key not in keys:
                keys.append(target.key)
    units = {action_key(action): (action, config_hash((k, files[k].hash) for k in keys))
             for action, keys in sets.items()}
    declared = dict(service.policies)  # a container restart takes its units' (renderer.rolling)
    clusters = tuple((str(policy.group), printable(action.describe()))
                     for action in dict.fromkeys([*declared, *sets])
                     if (policy := policy_of(action, declared)) is not None)
    return DesiredService(service.machine, files, units, (), clusters)


def _failed(desire: Desire, revision: Revision, name: str, error: RenderError
            ) -> DesiredService:
    from renderer.errors import each_error

    desire.learn_decrypted()
    lines = tuple(_line(desire.masker, revision, e.with_context(service=name))
                  for e in each_error(error))
    return DesiredService(None, {}, {}, lines)
