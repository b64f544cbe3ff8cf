"""Binding: a ``ServiceDef`` and what the data decides become a ``Service``.

The data may decide a service's machine, the machine of one file (so hieradata decides which
services share a container) and ``each``, which repeats a file once per key of a hash or item of
a list (one network file per attached network, one drop-in per agent). Binding is the only place
that asks for data, and it asks through a plain ``lookup(key, default)`` in the service's scope:
definitions do not know Hiera. A definition that needs no data is bound without one.

Two entries that land on the same file (two nova services the data puts in one container) become
one file that restarts what both restart; two different files on one path are an error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from renderer.errors import LookupNotFound, RenderError
from renderer.hiera import NOT_GIVEN
from renderer.names import is_name
from renderer.services import policy
from renderer.services.fields import Where
from renderer.services.model import Entry, FileSpec, Ref, Root, Service, ServiceDef

# lookup(key, default) in the service's scope; default is NOT_GIVEN when the definition gives
# none, and a missing key then raises LookupNotFound.
Lookup = Callable[[str, object], object]
_FileKey = tuple[Root, str | None, PurePosixPath]


def resolve_machine(defn: ServiceDef, lookup: Lookup | None) -> str:
    """The service's machine: the one written, or the one the data names."""
    if isinstance(defn.machine, str):
        return defn.machine
    # {machine} in the key of the service's own machine stands for the service name
    return _machine(defn.machine, defn.name, lookup, Where(defn.definition, defn.name))


def bind(defn: ServiceDef, machine: str, lookup: Lookup | None) -> Service:
    """The service in ``machine`` with every file final. ``lookup`` may be None when the
    definition needs no data (``defn.needs_data`` is false); it is then never called."""
    files: dict[_FileKey, FileSpec] = {}
    for entry in defn.entries:
        where = Where(entry.source, defn.name, entry.line)
        file_machine = _entry_machine(entry, machine, lookup, where)
        shared = isinstance(entry.machine, Ref) or isinstance(defn.machine, Ref)
        for item, value in _items(entry, file_machine, lookup, where):
            spec = _spec(entry, file_machine, machine, item, value)
            key = (spec.root, file_machine if spec.root is Root.CONTAINER else None, spec.dest)
            files[key] = _merge(files.get(key), spec, shared, where)
    where = Where(defn.definition, defn.name)
    policies = policy.bind(defn.policies, machine,
                           lambda ref, key: _lookup(ref, key, lookup, where), where)
    return Service(defn.name, machine, defn.directory, tuple(files.values()), policies)


def _spec(entry: Entry, machine: str, service_machine: str, item: str | None,
          value: Any) -> FileSpec:
    return FileSpec(
        template=entry.template,
        dest=_fill(entry.dest, machine, item),
        root=entry.root,
        owner=entry.owner,
        group=entry.group,
        mode=entry.mode,
        actions=tuple(dict.fromkeys(restart.action(machine, item) for restart in entry.restart)),
        create_dirs=entry.create_dirs,
        secret=entry.secret,
        secret_options=entry.secret_options,
        validate=entry.validate,
        line=entry.line,
        oslo_namespaces=entry.oslo_namespaces,
        follow_symlink=entry.follow_symlink,
        machine=None if machine == service_machine else machine,
        item=item,
        value=value,
        source=entry.source,
        rollback_on_failure=entry.rollback_on_failure,
        kind=entry.kind,
        argument=entry.argument,
        account=entry.account,
    )


def _fill(dest: PurePosixPath, machine: str, item: str | None) -> PurePosixPath:
    text = str(dest)
    if "{" not in text:
        return dest
    text = text.replace("{machine}", machine)
    return PurePosixPath(text if item is None else text.replace("{item}", item))


def _merge(old: FileSpec | None, new: FileSpec, shared: bool, where: Where) -> FileSpec:
    """Only a machine the data chose may make two entries one file; a definition that lists
    one path twice by itself is a mistake."""
    if old is None:
        return new
    if not shared or _content(old) != _content(new):
        raise where.fail(f"destination {new.dest} is listed twice")
    return old._replace(actions=tuple(dict.fromkeys(old.actions + new.actions)))


def _content(spec: FileSpec) -> FileSpec:
    """What must agree for two entries to be one file: all but restarts and where written."""
    return spec._replace(actions=(), line=None, source=None, value=None)  # value: not compared


def _lookup(ref: Ref, key: str, lookup: Lookup | None, where: Where) -> Any:
    if lookup is None:
        raise where.fail(f"{ref.key}: needs hieradata")
    try:
        value = lookup(key, ref.default if ref.has_default else NOT_GIVEN)
    except LookupNotFound as exc:
        raise where.fail(f"hiera key '{key}' not found and no default given") from exc
    except RenderError as exc:
        if exc.path is None:  # e.g. an interpolation loop: say which entry asked
            exc.path, exc.line = str(where.path), where.line
        exc.service = where.service
        raise
    return getattr(value, "value", value)  # a Sensitive machine name is still just a name


def _machine(ref: Ref, machine: str, lookup: Lookup | None, where: Where) -> str:
    value = _lookup(ref, ref.key.replace("{machine}", machine), lookup, where)
    if not is_name(value):
        raise where.fail(f"'{ref.key}' must be a machine name, not {value!r}")
    return str(value)


def _entry_machine(entry: Entry, machine: str, lookup: Lookup | None, where: Where) -> str:
    if entry.machine is None:
        return machine
    if isinstance(entry.machine, str):
        return entry.machine
    return _machine(entry.machine, machine, lookup, where)


def _items(entry: Entry, machine: str, lookup: Lookup | None, where: Where
           ) -> list[tuple[str | None, Any]]:
    """``each``: the keys of a hash (value: the key's value) or the items of a list."""
    if entry.each is None:
        return [(None, None)]
    key = entry.each.key.replace("{machine}", machine)
    value = _lookup(entry.each, key, lookup, where)
    pairs = list(value.items()) if isinstance(value, dict) else \
        [(item, None) for item in value] if isinstance(value, list) else None
    if pairs is None:
        raise where.fail(f"each: '{key}' must be a hash or a list, not {value!r}")
    for item, _ in pairs:
        if not is_name(item):
            raise where.fail(f"each: '{key}' has an item that cannot be part of a file name: "
                             f"{item!r}")
    return pairs
