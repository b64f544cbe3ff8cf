"""Service definitions: ``service_templates/<service>/service.yaml`` read into frozen values.

A definition says which machine (container) the service lives in, which files it renders, where
each lands (inside the container's rootfs or on the host), who owns it, and what to restart when it
changes. Everything is validated here, before any template is rendered, so a typo in a definition
is reported with its file and line and never reaches the disk.

Some of a definition can be left to the data (``{lookup: KEY}``): the machine of the service or
of one file (so hieradata decides which services share a container), and ``each``, which repeats a
file once per key of a hash or item of a list (one network file per attached network, one drop-in
per agent). ``bind`` resolves those with the service's lookups; a definition without them is bound
at load time and never looks anything up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from renderer.errors import LookupNotFound, RenderError, ServiceError
from renderer.yamlload import Loader, decode, parse_yaml

if TYPE_CHECKING:
    from renderer.hiera import Hiera
    from renderer.scope import Scope

DEFINITION = "service.yaml"
SHARED_DIR = "_lib"  # service_templates/_lib: macros and templates shared by every service
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_UNIT = re.compile(r"^[A-Za-z0-9:_.\\@-]+$")
_UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer", ".path", ".mount", ".slice")
_FILE_KEYS = {"template", "dest", "root", "owner", "group", "mode", "restart", "create_dirs",
              "secret", "validate", "oslo_namespaces", "follow_symlink", "machine", "each"}
_REF_KEYS = {"lookup", "default"}
VALIDATORS = ("none", "ini", "systemd")
_SERVICE_KEYS = {"machine", "description", "files"}


class Root(Enum):
    """Which tree a destination lives in; each is a separate confinement root."""

    CONTAINER = "container"
    HOST = "host"


class ActionKind(Enum):
    CONTAINER = "container"  # systemctl try-restart systemd-nspawn@<machine>.service
    UNIT = "unit"            # systemctl --machine=<machine> try-restart <unit>
    HOST = "host"            # systemctl try-restart <unit> on the host
    # systemctl --machine=<machine> daemon-reload: a unit drop-in changed; runs before restarts
    DAEMON_RELOAD = "daemon-reload"
    # systemctl try-reload-or-restart <unit> on the host, e.g. systemd-networkd (networkctl reload)
    HOST_RELOAD = "host-reload"


DAEMON_RELOAD_UNIT = "daemon-reload"  # the "unit" of a DAEMON_RELOAD action: systemd itself


@dataclass(frozen=True, order=True)
class Action:
    """One restart. Equal actions from several files collapse, so each unit restarts once."""

    kind: ActionKind
    unit: str
    machine: str | None = None

    @property
    def first(self) -> bool:
        """Runs before every other action: systemd must read a changed drop-in before the
        restart that should use it."""
        return self.kind is ActionKind.DAEMON_RELOAD

    def running_check(self) -> tuple[list[str], str] | None:
        """(systemctl prefix, unit) whose state says whether a reload has anything to do: a
        container that is not running has no systemd to reload, a host unit that is not running
        reads its files when it starts. None for restarts (``try-restart`` checks for itself)."""
        if self.kind is ActionKind.DAEMON_RELOAD:
            return [], f"systemd-nspawn@{self.machine}.service"
        if self.kind is ActionKind.HOST_RELOAD:
            return [], self.unit
        return None

    def systemctl_args(self) -> list[str]:
        if self.kind is ActionKind.UNIT:
            return [f"--machine={self.machine}", "try-restart", self.unit]
        if self.kind is ActionKind.DAEMON_RELOAD:
            return [f"--machine={self.machine}", "daemon-reload"]
        if self.kind is ActionKind.HOST_RELOAD:
            return ["try-reload-or-restart", self.unit]
        return ["try-restart", self.unit]

    def describe(self) -> str:
        if self.kind is ActionKind.UNIT:
            return f"{self.unit} in {self.machine}"
        if self.kind is ActionKind.DAEMON_RELOAD:
            return f"systemd (daemon-reload) in {self.machine}"
        if self.kind is ActionKind.HOST_RELOAD:
            return f"{self.unit} (reload)"
        return self.unit


@dataclass(frozen=True)
class Ref:
    """A value hieradata decides, written ``{lookup: KEY, default: VALUE}`` in service.yaml.

    ``{machine}`` in KEY stands for the file's machine (``each`` entries only)."""

    key: str
    default: Any = None
    has_default: bool = False


@dataclass(frozen=True)
class FileSpec:
    template: str
    dest: PurePosixPath          # absolute path inside its root
    root: Root
    owner: str | None
    group: str | None
    mode: int | None
    actions: tuple[Action, ...]
    create_dirs: bool
    secret: bool                 # force "holds secrets" (0640 default mode, masked diff)
    validate: str                # syntax check before writing: none, ini, systemd
    line: int | None             # where the entry is in service.yaml, for messages
    # oslo.config namespaces the service registers for this INI file (as oslo-config-generator
    # names them); () for an INI file oslo.config does not read (api-paste.ini); None: undeclared.
    oslo_namespaces: tuple[str, ...] | None = None
    follow_symlink: bool = False  # a symlink at dest is followed, inside the root only
    machine: str | None = None   # the machine of this file when not the service's
    item: str | None = None      # ``each`` entries: the key (or list item) this copy is for
    value: Any = field(default=None, compare=False)  # ... and its value in the data


@dataclass(frozen=True)
class Entry:
    """One ``files`` entry as written: placeholders and lookups not resolved yet."""

    spec: FileSpec               # dest and actions not final when ``dynamic``
    dest: str
    restart: Any
    machine: str | Ref | None
    each: Ref | None

    @property
    def dynamic(self) -> bool:
        return isinstance(self.machine, Ref) or self.each is not None \
            or "{machine}" in self.dest


@dataclass(frozen=True)
class Service:
    name: str
    machine: str
    directory: Path
    files: tuple[FileSpec, ...]
    entries: tuple[Entry, ...] = ()
    machine_ref: Ref | None = None   # the service's machine comes from the data
    bound: bool = True               # False until ``bind`` resolved the data (``files`` empty)

    @property
    def machines(self) -> tuple[str, ...]:
        """Every machine the service writes into, its own first."""
        return tuple(dict.fromkeys([self.machine, *(f.machine for f in self.files
                                                    if f.machine and f.root is Root.CONTAINER)]))

    @property
    def definition(self) -> Path:
        return self.directory / DEFINITION


class _LineLoader(Loader):
    """Records the line of every mapping so errors point at the entry in service.yaml."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping


def list_services(templates: Path) -> list[str]:
    """Every folder with a service.yaml, sorted; folders starting with ``_`` hold shared macros."""
    try:
        entries = sorted(templates.iterdir())
    except OSError as exc:
        raise ServiceError(f"cannot list service templates: {exc.strerror}",
                           path=templates) from exc
    return [e.name for e in entries
            if not e.name.startswith(("_", ".")) and (e / DEFINITION).is_file()]


def load_service(templates: Path, name: str) -> Service:
    if not _NAME.match(name):
        raise ServiceError(f"invalid service name {name!r}", service=name)
    directory = templates / name
    path = directory / DEFINITION
    if not path.is_file():
        known = ", ".join(list_services(templates)) or "none"
        raise ServiceError(f"unknown service {name!r} (known: {known})", path=templates,
                           service=name)
    data = parse_yaml(decode(path.read_bytes(), path, ServiceError), path, _LineLoader,
                      ServiceError)
    if not isinstance(data, dict):
        raise ServiceError("must be a mapping with 'files'", path=path, line=1, service=name)
    return _parse_service(name, directory, path, data)


def _fail(message: str, path: Path, entry: dict[str, Any] | None, name: str) -> ServiceError:
    line = entry.get("__line__") if isinstance(entry, dict) else None
    return ServiceError(message, path=path, line=line, service=name)


def _parse_ref(value: Any, key: str, path: Path, entry: dict[str, Any], name: str) -> Ref:
    if not isinstance(value, dict) or not isinstance(value.get("lookup"), str) \
            or set(value) - _REF_KEYS - {"__line__"}:
        raise _fail(f"{key} must be a name or {{lookup: KEY, default: VALUE}}, not {value!r}",
                    path, entry, name)
    return Ref(value["lookup"], value.get("default"), "default" in value)


def _parse_machine(value: Any, path: Path, entry: dict[str, Any], name: str) -> str | Ref:
    if isinstance(value, dict):
        return _parse_ref(value, "machine", path, entry, name)
    if not isinstance(value, str) or not _NAME.match(value):
        raise _fail(f"invalid machine name {value!r}", path, entry, name)
    return value


def _parse_service(name: str, directory: Path, path: Path, data: dict[str, Any]) -> Service:
    unknown = set(data) - _SERVICE_KEYS - {"__line__"}
    if unknown:
        raise _fail(f"unknown key(s): {', '.join(sorted(map(str, unknown)))}", path, data, name)
    machine = _parse_machine(data.get("machine", name), path, data, name)
    entries = data.get("files")
    if not isinstance(entries, list) or not entries:
        raise _fail("'files' must be a non-empty list", path, data, name)
    parsed = tuple(_parse_file(entry, directory, path, name) for entry in entries)
    ref = machine if isinstance(machine, Ref) else None
    service = Service(name=name, machine=machine if isinstance(machine, str) else name,
                      directory=directory, files=(), entries=parsed, machine_ref=ref,
                      bound=False)
    if ref is None and not any(e.dynamic for e in parsed):
        return _bind_old(service, None)  # nothing to look up: bound once, at load
    return service


def _parse_file(entry: Any, directory: Path, path: Path, name: str) -> Entry:
    if not isinstance(entry, dict):
        raise ServiceError("each entry of 'files' must be a mapping", path=path, service=name)
    unknown = set(entry) - _FILE_KEYS - {"__line__"}
    if unknown:
        raise _fail(f"unknown key(s): {', '.join(sorted(map(str, unknown)))}", path, entry, name)
    template = entry.get("template")
    shared = directory.parent / SHARED_DIR
    if not isinstance(template, str) or not ((directory / template).is_file()
                                             or (shared / template).is_file()):
        raise _fail(f"template {template!r} not found in {directory} or {SHARED_DIR}/", path,
                    entry, name)
    try:
        root = Root(entry.get("root", "container"))
    except ValueError:
        raise _fail(f"root must be 'container' or 'host', not {entry.get('root')!r}",
                    path, entry, name) from None
    validate = _parse_choice(entry.get("validate", "none"), "validate", VALIDATORS, path, entry,
                             name)
    each = _parse_ref(entry["each"], "each", path, entry, name) if "each" in entry else None
    dest = entry.get("dest")
    _parse_dest(_fill(dest, "m", "i") if isinstance(dest, str) else dest, path, entry, name)
    if isinstance(dest, str) and "{item}" in dest and each is None:
        raise _fail("{item} in dest needs 'each'", path, entry, name)
    restart = entry.get("restart", "none")
    _parse_actions(restart, "m", "i", path, entry, name)  # syntax errors now, with the line
    machine = _parse_machine(entry["machine"], path, entry, name) if "machine" in entry else None
    spec = FileSpec(
        template=template,
        dest=PurePosixPath(dest) if isinstance(dest, str) else PurePosixPath("/"),  # as written
        root=root,
        owner=_parse_owner(entry.get("owner"), "owner", path, entry, name),
        group=_parse_owner(entry.get("group"), "group", path, entry, name),
        mode=_parse_mode(entry.get("mode"), path, entry, name),
        actions=(),
        create_dirs=_parse_bool(entry.get("create_dirs", False), "create_dirs", path, entry, name),
        secret=_parse_bool(entry.get("secret", False), "secret", path, entry, name),
        validate=validate,
        oslo_namespaces=_parse_namespaces(entry.get("oslo_namespaces"), validate, path, entry,
                                          name),
        line=entry.get("__line__"),
        follow_symlink=_parse_bool(entry.get("follow_symlink", False), "follow_symlink", path,
                                   entry, name),
    )
    return Entry(spec, str(dest), restart, machine, each)


def _fill(text: str, machine: str, item: str | None) -> str:
    text = text.replace("{machine}", machine)
    return text if item is None else text.replace("{item}", item)


def _bind_old(service: Service, lookup: Callable[..., Any] | None) -> Service:
    """Resolve what the data decides: machines from lookups, ``each`` entries per item.

    ``lookup(key, default=...)`` looks hieradata up in the service's scope. Two entries that
    land on the same file (two nova services the data puts in one container) become one file
    that restarts what both restart; two different files on one path are an error.
    """
    if service.bound:
        return service
    path = service.definition
    machine = service.machine
    if service.machine_ref is not None:
        machine = _resolve_machine(service.machine_ref, machine, lookup, path, service.name, None)
    files: dict[tuple[Root, str | None, PurePosixPath], FileSpec] = {}
    for entry in service.entries:
        spec = entry.spec
        file_machine = machine
        if entry.machine is not None:
            file_machine = entry.machine if isinstance(entry.machine, str) else \
                _resolve_machine(entry.machine, machine, lookup, path, service.name, spec.line)
        for item, value in _items(entry, file_machine, lookup, path, service.name):
            bound = replace(spec, dest=_parse_dest(_fill(entry.dest, file_machine, item), path,
                                                   {"__line__": spec.line}, service.name),
                            actions=_parse_actions(entry.restart, file_machine, item, path,
                                                   {"__line__": spec.line}, service.name),
                            machine=None if file_machine == machine else file_machine,
                            item=item, value=value)
            key = (spec.root, file_machine if spec.root is Root.CONTAINER else None, bound.dest)
            shared = isinstance(entry.machine, Ref) or service.machine_ref is not None
            files[key] = _merge(files.get(key), bound, shared, path, service.name)
    return replace(service, machine=machine, files=tuple(files.values()), bound=True)


def bind_in_scope(service: Service, hiera: Hiera, scope: Scope) -> Service:
    """``bind`` with lookups in the service's scope (``machine`` set once it is known)."""
    if service.bound:
        return service
    variables = {"service": service.name}
    if service.machine_ref is None:
        variables["machine"] = service.machine
    local = scope.with_variables(**variables)
    return _bind_old(service, lambda key, default: hiera.lookup(key, local, default=default))


def _merge(old: FileSpec | None, new: FileSpec, shared: bool, path: Path, name: str
           ) -> FileSpec:
    """Only a machine the data chose may make two entries one file; a definition that lists
    one path twice by itself is a mistake."""
    if old is None:
        return new
    if not shared or replace(old, actions=(), line=None) != replace(new, actions=(), line=None):
        raise ServiceError(f"destination {new.dest} is listed twice", path=path, line=new.line,
                           service=name)
    return replace(old, actions=tuple(dict.fromkeys(old.actions + new.actions)))


def _lookup(ref: Ref, key: str, lookup: Callable[..., Any] | None, path: Path, name: str,
            line: int | None) -> Any:
    from renderer.hiera import NOT_GIVEN

    if lookup is None:
        raise ServiceError(f"{ref.key}: needs hieradata", path=path, line=line, service=name)
    try:
        value = lookup(key, default=ref.default if ref.has_default else NOT_GIVEN)
    except LookupNotFound as exc:
        raise ServiceError(f"hiera key '{key}' not found and no default given", path=path,
                           line=line, service=name) from exc
    except RenderError as exc:
        if exc.path is None:  # e.g. an interpolation loop: say which entry asked
            exc.path, exc.line = str(path), line
        exc.service = name
        raise
    return getattr(value, "value", value)  # a Sensitive machine name is still just a name


def _resolve_machine(ref: Ref, machine: str, lookup: Callable[..., Any] | None, path: Path,
                     name: str, line: int | None) -> str:
    value = _lookup(ref, ref.key.replace("{machine}", machine), lookup, path, name, line)
    if not isinstance(value, str) or not _NAME.match(value):
        raise ServiceError(f"'{ref.key}' must be a machine name, not {value!r}", path=path,
                           line=line, service=name)
    return value


def _items(entry: Entry, machine: str, lookup: Callable[..., Any] | None, path: Path,
           name: str) -> list[tuple[str | None, Any]]:
    """``each``: the keys of a hash (value: the key's value) or the items of a list."""
    if entry.each is None:
        return [(None, None)]
    line = entry.spec.line
    key = entry.each.key.replace("{machine}", machine)
    value = _lookup(entry.each, key, lookup, path, name, line)
    pairs = list(value.items()) if isinstance(value, dict) else \
        [(item, None) for item in value] if isinstance(value, list) else None
    if pairs is None:
        raise ServiceError(f"each: '{key}' must be a hash or a list, not {value!r}", path=path,
                           line=line, service=name)
    for item, _ in pairs:
        if not isinstance(item, str) or not _NAME.match(item):
            raise ServiceError(f"each: '{key}' has an item that cannot be part of a file name: "
                               f"{item!r}", path=path, line=line, service=name)
    return pairs


def _parse_dest(value: Any, path: Path, entry: dict[str, Any], name: str) -> PurePosixPath:
    if not isinstance(value, str) or not value.startswith("/"):
        raise _fail(f"dest must be an absolute path, not {value!r}", path, entry, name)
    dest = PurePosixPath(value)
    if ".." in dest.parts or dest == PurePosixPath("/") or value.endswith("/"):
        raise _fail(f"dest {value!r} must name a file without '..'", path, entry, name)
    return dest


def _parse_owner(value: Any, key: str, path: Path, entry: dict[str, Any],
                 name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise _fail(f"{key} must be a name or a numeric id, not {value!r}", path, entry, name)
    return str(value)


def _parse_mode(value: Any, path: Path, entry: dict[str, Any], name: str) -> int | None:
    if value is None:
        return None
    # YAML 1.1 reads an unquoted 0640 as the octal integer 416; a quoted "0640" is a string.
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    elif isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value):
        mode = int(value, 8)
    else:
        raise _fail(f"mode must be octal like '0640', not {value!r}", path, entry, name)
    if not 0 <= mode <= 0o7777:
        raise _fail(f"mode {value!r} is out of range", path, entry, name)
    return mode


def _parse_bool(value: Any, key: str, path: Path, entry: dict[str, Any], name: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(f"{key} must be true or false, not {value!r}", path, entry, name)
    return value


def _parse_choice(value: Any, key: str, choices: tuple[str, ...], path: Path,
                  entry: dict[str, Any], name: str) -> str:
    if value not in choices:
        raise _fail(f"{key} must be one of {', '.join(choices)}, not {value!r}", path, entry, name)
    return str(value)


def _parse_namespaces(value: Any, validate: str, path: Path, entry: dict[str, Any],
                      name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if validate != "ini":
        raise _fail("oslo_namespaces needs validate: ini", path, entry, name)
    if not isinstance(value, list) or not all(
            isinstance(item, str) and _NAMESPACE.match(item) for item in value):
        raise _fail(f"oslo_namespaces must be a list of namespace names, not {value!r}",
                    path, entry, name)
    return tuple(value)


def _unit_name(unit: str, path: Path, entry: dict[str, Any], name: str) -> str:
    if not _UNIT.match(unit):
        raise _fail(f"invalid unit name {unit!r}", path, entry, name)
    return unit if unit.endswith(_UNIT_SUFFIXES) else f"{unit}.service"


def _parse_actions(value: Any, machine: str, item: str | None, path: Path,
                   entry: dict[str, Any], name: str) -> tuple[Action, ...]:
    """``container``, ``unit:<name>`` (inside the container), ``host:<name>``, ``daemon-reload``
    (systemd inside the container), ``host-reload:<name>`` (reload-or-restart on the host),
    ``none``. ``{item}`` in a unit name stands for the ``each`` item."""
    items = value if isinstance(value, list) else [value]
    actions: list[Action] = []
    for raw in items:
        item_text = raw.replace("{item}", item) if isinstance(raw, str) and item else raw
        if item_text in ("none", None):
            continue
        if item_text == "container":
            action = Action(ActionKind.CONTAINER, f"systemd-nspawn@{machine}.service")
        elif item_text == "daemon-reload":
            action = Action(ActionKind.DAEMON_RELOAD, DAEMON_RELOAD_UNIT, machine)
        elif isinstance(item_text, str) and item_text.startswith("unit:"):
            action = Action(ActionKind.UNIT, _unit_name(item_text[5:], path, entry, name),
                            machine)
        elif isinstance(item_text, str) and item_text.startswith("host:"):
            action = Action(ActionKind.HOST, _unit_name(item_text[5:], path, entry, name))
        elif isinstance(item_text, str) and item_text.startswith("host-reload:"):
            action = Action(ActionKind.HOST_RELOAD, _unit_name(item_text[12:], path, entry, name))
        else:
            raise _fail(f"restart must be 'container', 'unit:<unit>', 'host:<unit>', "
                        f"'daemon-reload', 'host-reload:<unit>' or 'none', not {raw!r}",
                        path, entry, name)
        if action not in actions:
            actions.append(action)
    return tuple(actions)


# TEMPORARY shim until the services package lands
ServiceDef = Service


def resolve_machine(defn: Service, lookup: Callable[..., Any]) -> str:
    assert defn.machine_ref is not None
    return _resolve_machine(defn.machine_ref, defn.machine, lookup, defn.definition, defn.name,
                            None)


def bind(defn: Service, machine: str, lookup: Callable[..., Any] | None) -> Service:
    return _bind_old(defn, lookup)
