"""The value of each key of a ``files`` entry, checked and parsed once.

One function per key, each given the ``Where`` of its entry, so an error names the file and line
of the entry it is in (service.yaml or an included file) without threading them through every
helper. ``dest`` and ``restart`` are checked as patterns, ``{machine}`` and ``{item}`` left in.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from renderer.bounds import MAX_ID
from renderer.errors import ServiceError
from renderer.names import is_name
from renderer.services.model import ActionKind, Kind, Ref, Restart, Root

_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_UNIT = re.compile(r"[A-Za-z0-9:_.\\@-]+\Z")
_REF_KEYS = {"lookup", "default"}
_UNIT_PREFIXES = (("unit:", ActionKind.UNIT), ("host:", ActionKind.HOST),
                  ("host-reload:", ActionKind.HOST_RELOAD))


class Where(NamedTuple):
    """Where a definition says something: the file, the service, and the line once known."""

    path: Path
    service: str
    line: int | None = None

    def at(self, line: int | None) -> Where:
        return self._replace(line=line)

    def fail(self, message: str) -> ServiceError:
        return ServiceError(message, path=self.path, line=self.line, service=self.service)


def unknown(data: dict[Any, Any], known: set[str], where: Where) -> None:
    """Refuses a key the definition does not know (a typo would otherwise be ignored)."""
    extra = set(data) - known
    if extra:
        raise where.fail(f"unknown key(s): {', '.join(sorted(map(str, extra)))}")


def ref(value: Any, key: str, where: Where) -> Ref:
    if not isinstance(value, dict) or not isinstance(value.get("lookup"), str) \
            or set(value) - _REF_KEYS:
        raise where.fail(f"{key} must be a name or {{lookup: KEY, default: VALUE}}, not {value!r}")
    return Ref(value["lookup"], value.get("default"), "default" in value)


def machine(value: Any, where: Where) -> str | Ref:
    if isinstance(value, dict):
        return ref(value, "machine", where)
    if not is_name(value):
        raise where.fail(f"invalid machine name {value!r}")
    return str(value)


def root(value: Any, where: Where) -> Root:
    try:
        return Root(value)
    except ValueError:
        raise where.fail(f"root must be 'container' or 'host', not {value!r}") from None


def dest(value: Any, each: bool, where: Where) -> PurePosixPath:
    """Checked as written: names filled in for ``{machine}`` and ``{item}`` cannot hold ``/``
    or start with ``.``, so a valid pattern stays valid once bound."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise where.fail(f"dest must be an absolute path, not {value!r}")
    path = PurePosixPath(value)
    if ".." in path.parts or path == PurePosixPath("/") or value.endswith("/"):
        raise where.fail(f"dest {value!r} must name a file without '..'")
    if "{item}" in value and not each:
        raise where.fail("{item} in dest needs 'each'")
    return path


def owner(value: Any, key: str, where: Where) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise where.fail(f"{key} must be a name or a numeric id, not {value!r}")
    if (isinstance(value, int) or value.isascii() and value.isdigit()) \
            and not 0 <= int(value) < MAX_ID:
        raise where.fail(f"{key} {value} is not a valid id (0-{MAX_ID - 1})")
    return str(value)


def mode(value: Any, where: Where) -> int | None:
    if value is None:
        return None
    # YAML 1.1 reads an unquoted 0640 as the octal integer 416; a quoted "0640" is a string.
    if isinstance(value, int) and not isinstance(value, bool):
        bits = value
    elif isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value):
        bits = int(value, 8)
    else:
        raise where.fail(f"mode must be octal like '0640', not {value!r}")
    if not 0 <= bits <= 0o7777:
        raise where.fail(f"mode {value!r} is out of range")
    return bits


def flag(value: Any, key: str, where: Where) -> bool:
    if not isinstance(value, bool):
        raise where.fail(f"{key} must be true or false, not {value!r}")
    return value


def optional_flag(value: Any, key: str, where: Where) -> bool | None:
    """A flag whose absence means "the rule decides" (``rollback_on_failure``)."""
    return None if value is None else flag(value, key, where)


_OPTION_NAME = re.compile(r"[A-Za-z0-9_.\-]+(\.[A-Za-z0-9_\-]+)?\Z")


def option_names(value: Any, where: Where) -> tuple[str, ...]:
    """``secret_options``: option names (``kek``) or ``section.option``, compared in lower case."""
    if not isinstance(value, list) or not all(
            isinstance(item, str) and _OPTION_NAME.match(item) for item in value):
        raise where.fail(f"secret_options must be a list of option names (option or "
                         f"section.option), not {value!r}")
    return tuple(dict.fromkeys(item.lower() for item in value))


def choice(value: Any, key: str, choices: tuple[str, ...], where: Where) -> str:
    if value not in choices:
        raise where.fail(f"{key} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def namespaces(value: Any, validate: str, where: Where) -> tuple[str, ...] | None:
    if value is None:
        return None
    if validate != "ini":
        raise where.fail("oslo_namespaces needs validate: ini")
    if not isinstance(value, list) or not all(
            isinstance(item, str) and _NAMESPACE.match(item) for item in value):
        raise where.fail(f"oslo_namespaces must be a list of namespace names, not {value!r}")
    return tuple(value)


def restarts(value: Any, each: bool, where: Where) -> tuple[Restart, ...]:
    """``container``, ``unit:<name>`` (inside the container), ``host:<name>``, ``daemon-reload``
    (systemd inside the container), ``host-daemon-reload`` (the host's systemd: a drop-in for
    a host unit), ``host-reload:<name>`` (reload-or-restart on the host),
    ``none``. ``{item}`` in a unit name stands for the ``each`` item."""
    parsed = (_restart(raw, each, where) for raw in (value if isinstance(value, list)
                                                     else [value]))
    return tuple(restart for restart in parsed if restart is not None)


def _restart(raw: Any, each: bool, where: Where) -> Restart | None:
    if raw in ("none", None):
        return None
    if raw == "container":
        return Restart(ActionKind.CONTAINER)
    if raw == "daemon-reload":
        return Restart(ActionKind.DAEMON_RELOAD)
    if raw == "host-daemon-reload":
        return Restart(ActionKind.HOST_DAEMON_RELOAD)
    for prefix, kind in _UNIT_PREFIXES:
        if isinstance(raw, str) and raw.startswith(prefix):
            return Restart(kind, _unit(raw[len(prefix):], each, where))
    raise where.fail(f"restart must be 'container', 'unit:<unit>', 'host:<unit>', "
                     f"'daemon-reload', 'host-daemon-reload', 'host-reload:<unit>' or 'none', "
                     f"not {raw!r}")


def _unit(unit: str, each: bool, where: Where) -> str:
    """A unit name, ``{item}`` left in: an item name only holds characters a unit name may."""
    if "{item}" in unit and not each:
        raise where.fail("{item} in restart needs 'each'")
    if not _UNIT.match(unit.replace("{item}", "i")):
        raise where.fail(f"invalid unit name {unit!r}")
    return unit


_EDITS = {"link": Kind.LINK, "line": Kind.LINE, "password": Kind.PASSWORD}
_EDIT_COMMON = {"dest", "root", "restart", "machine", "rollback_on_failure"}
_EDIT_MORE = {Kind.LINK: {"create_dirs"}, Kind.LINE: {"follow_symlink"},
              Kind.PASSWORD: {"account", "follow_symlink"}}
_ACCOUNT = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\Z")


def edit(raw: dict[str, Any], where: Where) -> tuple[Kind, str, str] | None:
    """``link: TARGET``, ``line: TEXT`` or ``password: {lookup: KEY}`` (with ``account:``,
    default root): (kind, argument, account), or None for a whole file (``template:``). An edit
    keeps the owner and mode of what is there, so it takes none of a template's keys."""
    names = [name for name in _EDITS if name in raw]
    if not names:
        return None
    if len(names) > 1 or "template" in raw:
        given = sorted({*names, *(["template"] if "template" in raw else [])})
        raise where.fail(f"an entry has one of template, link, line or password, not "
                         f"{', '.join(given)}")
    kind = _EDITS[names[0]]
    extra = set(raw) - _EDIT_COMMON - _EDIT_MORE[kind] - {names[0]}
    if extra:
        raise where.fail(f"key(s) not allowed in a {names[0]} entry (it keeps the owner and "
                         f"mode of what is there): {', '.join(sorted(map(str, extra)))}")
    value = raw[names[0]]
    account = raw.get("account", "root")
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        raise where.fail(f"account must be a user name, not {account!r}")
    return kind, _argument(kind, value, where), account


def _argument(kind: Kind, value: Any, where: Where) -> str:
    if kind is Kind.PASSWORD:
        if not isinstance(value, dict) or set(value) != {"lookup"} \
                or not isinstance(value["lookup"], str) or not value["lookup"]:
            raise where.fail(f"password must be {{lookup: KEY}} (a crypt hash in hieradata), "
                             f"not {value!r}")
        return str(value["lookup"])
    if not isinstance(value, str) or not value or any(c in value for c in "\n\r\0"):
        raise where.fail(f"{kind.value} must be one line of text, not {value!r}")
    if kind is Kind.LINK and (not value.startswith("/") or ".." in value.split("/")
                              or len(value.encode()) >= 4096):
        raise where.fail(f"link must be an absolute path inside the root without '..', "
                         f"not {value!r}")
    return value
