"""Service definitions: ``service_templates/<service>/service.yaml`` read into frozen values.

A definition says which machine (container) the service lives in, which files it renders, where
each lands (inside the container's rootfs or on the host), who owns it, and what to restart when it
changes. Everything is validated here, before any template is rendered, so a typo in a definition
is reported with its file and line and never reaches the disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from renderer.errors import ServiceError
from renderer.yamlload import Loader, decode, parse_yaml

DEFINITION = "service.yaml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_UNIT = re.compile(r"^[A-Za-z0-9:_.\\@-]+$")
_UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer", ".path", ".mount", ".slice")
_FILE_KEYS = {"template", "dest", "root", "owner", "group", "mode", "restart", "create_dirs",
              "secret", "validate", "oslo_namespaces", "follow_symlink"}
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


@dataclass(frozen=True, order=True)
class Action:
    """One restart. Equal actions from several files collapse, so each unit restarts once."""

    kind: ActionKind
    unit: str
    machine: str | None = None

    def systemctl_args(self) -> list[str]:
        if self.kind is ActionKind.UNIT:
            return [f"--machine={self.machine}", "try-restart", self.unit]
        return ["try-restart", self.unit]

    def describe(self) -> str:
        if self.kind is ActionKind.UNIT:
            return f"{self.unit} in {self.machine}"
        return self.unit


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


@dataclass(frozen=True)
class Service:
    name: str
    machine: str
    directory: Path
    files: tuple[FileSpec, ...]

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


def _parse_service(name: str, directory: Path, path: Path, data: dict[str, Any]) -> Service:
    unknown = set(data) - _SERVICE_KEYS - {"__line__"}
    if unknown:
        raise _fail(f"unknown key(s): {', '.join(sorted(map(str, unknown)))}", path, data, name)
    machine = data.get("machine", name)
    if not isinstance(machine, str) or not _NAME.match(machine):
        raise _fail(f"invalid machine name {machine!r}", path, data, name)
    entries = data.get("files")
    if not isinstance(entries, list) or not entries:
        raise _fail("'files' must be a non-empty list", path, data, name)
    files = tuple(_parse_file(entry, machine, directory, path, name) for entry in entries)
    seen: dict[tuple[Root, PurePosixPath], FileSpec] = {}
    for spec in files:
        key = (spec.root, spec.dest)
        if key in seen:
            raise ServiceError(f"destination {spec.dest} is listed twice", path=path,
                               line=spec.line, service=name)
        seen[key] = spec
    return Service(name=name, machine=machine, directory=directory, files=files)


def _parse_file(entry: Any, machine: str, directory: Path, path: Path, name: str) -> FileSpec:
    if not isinstance(entry, dict):
        raise ServiceError("each entry of 'files' must be a mapping", path=path, service=name)
    unknown = set(entry) - _FILE_KEYS - {"__line__"}
    if unknown:
        raise _fail(f"unknown key(s): {', '.join(sorted(map(str, unknown)))}", path, entry, name)
    template = entry.get("template")
    if not isinstance(template, str) or not (directory / template).is_file():
        raise _fail(f"template {template!r} not found in {directory}", path, entry, name)
    try:
        root = Root(entry.get("root", "container"))
    except ValueError:
        raise _fail(f"root must be 'container' or 'host', not {entry.get('root')!r}",
                    path, entry, name) from None
    validate = _parse_choice(entry.get("validate", "none"), "validate", VALIDATORS, path, entry,
                             name)
    return FileSpec(
        template=template,
        dest=_parse_dest(entry.get("dest"), path, entry, name),
        root=root,
        owner=_parse_owner(entry.get("owner"), "owner", path, entry, name),
        group=_parse_owner(entry.get("group"), "group", path, entry, name),
        mode=_parse_mode(entry.get("mode"), path, entry, name),
        actions=_parse_actions(entry.get("restart", "none"), machine, path, entry, name),
        create_dirs=_parse_bool(entry.get("create_dirs", False), "create_dirs", path, entry, name),
        secret=_parse_bool(entry.get("secret", False), "secret", path, entry, name),
        validate=validate,
        oslo_namespaces=_parse_namespaces(entry.get("oslo_namespaces"), validate, path, entry,
                                          name),
        line=entry.get("__line__"),
        follow_symlink=_parse_bool(entry.get("follow_symlink", False), "follow_symlink", path,
                                   entry, name),
    )


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


def _parse_actions(value: Any, machine: str, path: Path, entry: dict[str, Any],
                   name: str) -> tuple[Action, ...]:
    """``container``, ``unit:<name>`` (inside the container), ``host:<name>``, ``none``."""
    items = value if isinstance(value, list) else [value]
    actions: list[Action] = []
    for item in items:
        if item in ("none", None):
            continue
        if item == "container":
            action = Action(ActionKind.CONTAINER, f"systemd-nspawn@{machine}.service")
        elif isinstance(item, str) and item.startswith("unit:"):
            action = Action(ActionKind.UNIT, _unit_name(item[5:], path, entry, name), machine)
        elif isinstance(item, str) and item.startswith("host:"):
            action = Action(ActionKind.HOST, _unit_name(item[5:], path, entry, name))
        else:
            raise _fail(f"restart must be 'container', 'unit:<unit>', 'host:<unit>' or 'none', "
                        f"not {item!r}", path, entry, name)
        if action not in actions:
            actions.append(action)
    return tuple(actions)
