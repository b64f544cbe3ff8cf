"""Runner: the one owner of a run. Plan every service, then apply, then hand over to the report.

Per service the steps read as method names, as confd's ``process()`` does:
load -> bind -> render -> override -> validate -> observe -> plan. Everything up to ``observe``
is computation over the source state; ``observe`` reads the actual state through the System and
makes every "can this be written" check; ``plan`` is pure. One service scope is built per service
(two only when the data decides the machine: the machine must be looked up before it can be a
scope variable). Each service runs inside one ``try``: a RenderError, or any unexpected
exception, fails that service and no other.

The same code runs for ``--noop``: the CLI hands a DryRunSystem, which reads what a real run
reads and records what it would change. The steps up to ``validate`` are ``Desire``, which
needs no System: ``render preview`` drives it once per node and revision (renderer.preview).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from renderer import yamlcache
from renderer.apply import Listener, Options, ServiceResult, apply
from renderer.edits import desired, render_edits
from renderer.errors import InternalError, RenderError
from renderer.fanout import plan_all
from renderer.hiera import Hiera
from renderer.masking import Masker
from renderer.observe import Observed, observe_file
from renderer.optiondata import OptionData
from renderer.overrides import apply_overrides
from renderer.plan import ServicePlan, failed, plan_file, plan_service
from renderer.restarts import HEALTH_SETTLE, on_disk
from renderer.rollback import restart_plan, rollback_plan
from renderer.scope import Scope, build_scope
from renderer.services import (
    Entry,
    Lookup,
    Service,
    ServiceDef,
    bind,
    list_services,
    load_service,
    resolve_machine,
)
from renderer.sources import Source, open_data
from renderer.state import ServiceState, action_key
from renderer.statefile import host_key, load, migrate_files, migrate_units
from renderer.system import System
from renderer.targets import Roots
from renderer.templates import Rendered, Renderer, bytecode_cache
from renderer.validate import validate
from renderer.yamlcache import parse_cache


class Settings(NamedTuple):
    """What the command line asked for, with every root a parameter."""

    services: tuple[str, ...]
    templates: Path | tuple[Path, ...]  # one directory or the search path, earlier wins
    hieradata: Path
    roots: Roots
    node: str | None = None
    facts: str | None = None
    variables: tuple[str, ...] = ()
    every: bool = False               # --all
    rollback: bool = False            # --rollback: ``services`` holds the one service
    restart_only: bool = False        # ``render restart``: owed restarts, nothing rendered
    noop: bool = False
    restart: bool = True              # False: --no-restart
    health_timeout: float = 30.0
    health_settle: float = HEALTH_SETTLE
    keep: int = 5
    lock_timeout: float = 60.0
    coordinator: str | None = None    # --coordinator etcd://HOST:PORT (renderer.coordinator)
    lock_wait: float = 300.0          # --lock-wait: for a place in a cluster lock
    key_source: Path | None = None    # derives hmac.key while there is none (statefile.host_key)
    bundle: Path | None = None        # --bundle: lookups answered from it (renderer.bundle)
    bundle_key: str | None = None     # --bundle-key: opens an encrypted bundle
    source: Source | None = None      # the three layers; None: hieradata's hiera.yaml alone
    extensions: tuple[str, ...] = ()  # --trusted-extension KEY=VALUE
    environment: str = "production"   # $environment


class Desire:
    """The source-state steps, load -> bind -> render -> override -> validate: a service's
    desired files from data and templates alone, no root, state or System read. A Runner adds
    the System; ``render preview`` drives one per revision, setting ``scope`` per node. The
    caller sets ``scope`` and ``renderer`` before the first ``desire``."""

    scope: Scope
    renderer: Renderer

    def __init__(self, settings: Settings, masker: Masker | None = None) -> None:
        self.settings = settings
        self.masker = masker or Masker(b"")
        self._hiera: Hiera | RenderError | None = None
        self._options: OptionData | None = None
        self._included: dict[str, tuple[Entry, ...]] = {}  # renderer.services.load_service
        self._definitions: dict[str, ServiceDef] = {}  # a preview binds them once per node

    def desire(self, name: str) -> tuple[Service, list[Rendered]]:
        """One service's desired files, validated; a RenderError fails it (the caller's
        ``try``)."""
        definition = self._definitions.get(name)
        if definition is None:
            definition = load_service(self.settings.templates, name, self._included)
            self._definitions[name] = definition
        service, scope = self.bind(definition)
        secrets: set[str] = set()
        rendered = self.render(service, scope, secrets)
        rendered = self.override(service, rendered, scope, secrets)
        rendered += render_edits(service, self.lookup(scope), secrets)  # link, line, password
        self.masker.add(secrets)
        self.learn_decrypted()
        validate(rendered, self.masker)
        return service, rendered

    # --- the steps ------------------------------------------------------------------------------

    def forget_scopes(self) -> None:
        """Drop what Hiera resolved for the scopes seen so far (a preview: node after node)."""
        if isinstance(self._hiera, Hiera):
            self._hiera._states.clear()

    def learn_decrypted(self) -> None:
        """Every eyaml plaintext is a secret, with or without ``convert_to: Sensitive``."""
        if isinstance(self._hiera, Hiera):
            self.masker.add(self._hiera.secrets)

    def hiera(self) -> Hiera:
        """hiera.yaml (or the bundle), read once per run; a broken one fails every service that
        needs data."""
        if self._hiera is None:
            try:
                self._hiera = self._load_data()
            except RenderError as exc:
                self._hiera = exc
        if isinstance(self._hiera, RenderError):
            raise self._hiera.with_context()  # a copy: each service adds its own name
        return self._hiera

    def _load_data(self) -> Hiera:
        s = self.settings
        return open_data(s.source or Source(s.hieradata, None, (), {}), s.bundle, s.bundle_key)

    def bind(self, definition: ServiceDef) -> tuple[Service, Scope]:
        """Resolve what the data decides (the machine, ``each`` copies) in the service's scope."""
        return bind_in_scope(definition, self.scope, self.hiera)

    def lookup(self, scope: Scope) -> Callable[..., object]:
        """``lookup(key, merge, default)`` in the service's scope, as templates call it."""
        hiera = self.hiera()

        def lookup(key: str, merge: str | dict[str, Any] | None, default: object) -> object:
            return hiera.lookup(key, scope, merge=merge, default=default)

        return lookup

    def render(self, service: Service, scope: Scope, secrets: set[str]) -> list[Rendered]:
        """The whole files, from their templates (edits have none: renderer.edits)."""
        return self.renderer.render_service(service, self.lookup(scope), scope, secrets)

    def override(self, service: Service, rendered: list[Rendered], scope: Scope,
                 secrets: set[str]) -> list[Rendered]:
        """INI overrides from hieradata go in before validation, masking and the plan."""
        if self._options is None:
            self._options = OptionData(self.settings.templates)
        return apply_overrides(service, rendered, self.hiera(), scope, self._options, secrets)


class Runner(Desire):
    """Plans and applies one run; ``masker`` is what the report masks with afterwards."""

    def __init__(self, settings: Settings, system: System) -> None:
        super().__init__(settings)
        self.system = system
        self.roots = settings.roots

    def run(self, after: Callable[[list[ServiceResult]], None] | None = None,
            listener: Listener | None = None, before: Callable[[], None] | None = None
            ) -> list[ServiceResult]:
        """``after``: called with the results before the lock is released (the monitoring
        outputs: a --noop that checked before a real run cannot overwrite that run's fact);
        ``listener``: told of each service and restart as it is done (the live report);
        ``before``: right after the lock is taken (the fast path's manifest is dropped)."""
        s = self.settings
        self.system.lock(s.lock_timeout, exclusive=not s.noop)  # plan, writes, restarts as one
        try:
            if before is not None:
                before()
            key = host_key(self.system, create=not s.noop, source=s.key_source)
            self.masker = Masker(key)
            self.scope = build_scope(s.node, s.facts, list(s.variables),
                                     s.environment, s.extensions)
            self.renderer = Renderer(s.templates, bytecode_cache(
                self.system.cache_dir("cache/jinja", create=not s.noop), not s.noop, key))
            names = list_services(s.templates) if s.every else list(dict.fromkeys(s.services))
            with yamlcache.using(parse_cache(self.system, key, writable=not s.noop)):
                plans = plan_all(self, names)  # on many cores for many services
            notes = self.sweep(plans)
            self.system.remove_state_temps()
            results = apply(plans, self.system, self.roots,
                            Options(s.restart and not s.noop, s.health_timeout, s.keep,
                                    s.health_settle, s.coordinator, s.lock_wait),
                            listener, notes)
            if after is not None:
                after(results)
            return results
        finally:
            self.system.unlock()

    def plan_one(self, name: str) -> ServicePlan:
        """One service from its definition to its plan; any failure fails it alone."""
        try:
            if self.settings.rollback:
                service, _ = self.bind(load_service(self.settings.templates, name,
                                                    self._included))
                return migrated(rollback_plan(service, self.roots, self.system,
                                              load(self.system, service.name)), self.roots)
            if self.settings.restart_only:
                service, _ = self.bind(load_service(self.settings.templates, name,
                                                    self._included))
                return migrated(restart_plan(service, self.roots, self.system,
                                             load(self.system, service.name)), self.roots)
            service, rendered = self.desire(name)
            state = load(self.system, service.name)
            observed = self.observe(service, rendered)
            return self.plan(service, rendered, observed, state)
        except RenderError as exc:
            self.learn_decrypted()  # an error may quote a value that came from an eyaml token
            return failed(name, exc)
        except Exception as exc:  # noqa: BLE001 - a bug in render fails its service only
            return failed(name, InternalError.from_exception(exc))

    def observe(self, service: Service, rendered: list[Rendered]) -> list[Observed]:
        """The actual state of every destination, with every can-it-be-written check."""
        return observe(service, rendered, self.roots, self.system)

    def plan(self, service: Service, rendered: list[Rendered], observed: list[Observed],
             state: ServiceState) -> ServicePlan:
        """Pure: desired x observed x records -> changes."""
        return plan(service, rendered, observed, state, self.roots, self.masker)

    def sweep(self, plans: list[ServicePlan]) -> dict[str, list[str]]:
        """Remove the temp files a killed run left next to this run's targets, under the lock;
        returns the notes saying so, per service."""
        notes: dict[str, list[str]] = {}
        verb = "would remove" if self.settings.noop else "removed"
        for service_plan in plans:
            for change in service_plan.files:
                if not change.temps:
                    continue
                try:
                    self.system.remove_temps(self.roots.root_of(change.target), change.spec.dest,
                                             list(change.temps), change.spec.follow_symlink)
                except Exception:  # noqa: BLE001 - the write to that directory reports it
                    continue
                parent = change.path.rsplit("/", 1)[0]
                notes.setdefault(service_plan.service, []).extend(
                    f"{verb} stale temp file {parent}/{name}" for name in change.temps)
        return notes


def bind_in_scope(definition: ServiceDef, scope: Scope,
                  hiera: Callable[[], Hiera]) -> tuple[Service, Scope]:
    """The bound service and its one scope (``service`` and ``machine`` set). A machine the data
    decides is looked up first, in the scope without ``machine``; ``hiera`` is asked for only
    when the definition needs data."""
    def lookup_in(local: Scope) -> Lookup:
        return lambda key, default: hiera().lookup(key, local, default=default)

    if isinstance(definition.machine, str):
        machine = definition.machine
    else:
        machine = resolve_machine(definition,
                                  lookup_in(scope.with_variables(service=definition.name)))
    local = scope.with_variables(service=definition.name, machine=machine)
    return bind(definition, machine, lookup_in(local) if definition.needs_data else None), local


def plan_rendered(service: Service, rendered: list[Rendered], roots: Roots, system: System,
                  masker: Masker, state: ServiceState | None = None) -> ServicePlan:
    """observe -> plan for one service's desired files, without the steps before (tests
    drive the pipeline from here)."""
    return plan(service, rendered, observe(service, rendered, roots, system),
                state or ServiceState(), roots, masker)


def observe(service: Service, rendered: list[Rendered], roots: Roots,
            system: System) -> list[Observed]:
    return [observe_file(r.spec, service, roots, system) for r in rendered]


def plan(service: Service, rendered: list[Rendered], observed: list[Observed],
         state: ServiceState, roots: Roots, masker: Masker) -> ServicePlan:
    migrate_files(state, (o.target for o in observed), roots)
    files = []
    for r, o in zip(rendered, observed, strict=True):
        data = desired(r.spec, r.data, o.actual, o.path) if r.spec.edit else r.data
        names = masker.secret_names(data.decode("utf-8", "replace"), r.spec.secret_options)
        files.append(plan_file(r.spec, data, o, state.files.get(o.target.key),
                               bool(names), names))
    return migrated(plan_service(service.name, service.machine, files, state,
                                 dict(service.policies)), roots)


def migrated(plan: ServicePlan, roots: Roots) -> ServicePlan:
    """Format-1 unit records re-hashed against what is on disk (renderer.statefile)."""
    if plan.state is not None and plan.state.legacy:
        migrate_units(plan.state, {action_key(a): on_disk(plan, keys)
                                   for a, keys in plan.config_sets.items()}, roots)
    return plan
