"""The values a service definition becomes: frozen, so a definition read once cannot drift.

Two stages, two types. A ``ServiceDef`` is what ``service.yaml`` says, with the parts the data
decides (``{lookup: KEY}`` machines, ``each``, ``{machine}`` and ``{item}`` placeholders) kept as
written. A ``Service`` is a definition bound to one machine and the data: every file final, with
its destination, owner and restarts. Nothing downstream (render, plan, apply) ever sees an
unbound definition, and nothing needs a flag to tell the two apart.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

DEFINITION = "service.yaml"
SHARED_DIR = "_lib"  # service_templates/_lib: macros, templates and includes shared by services
UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer", ".path", ".mount", ".slice")
DAEMON_RELOAD_UNIT = "daemon-reload"  # the "unit" of a DAEMON_RELOAD action: systemd itself
NSPAWN_UNIT = "systemd-nspawn@"
# host directories whose files configure containers (FileSpec.confines)
CONFINING_DIRS = ("/etc/systemd/nspawn", "/etc/systemd/network")


class Root(Enum):
    """Which tree a destination lives in; each is a separate confinement root."""

    CONTAINER = "container"
    HOST = "host"


class Kind(Enum):
    """What a destination is. Whole files are rendered from a template; the others are edits of
    what the container owns (renderer.edits): the desired bytes are the current ones plus the
    edit, so the same observe, plan, stage and commit apply to all four."""

    FILE = "file"          # the whole file, from ``template``
    LINK = "link"          # a symlink whose target is ``argument`` (a unit enabled at boot)
    LINE = "line"          # a line ``argument`` present in a file render does not own
    PASSWORD = "password"  # an account's hash in /etc/shadow, from the hiera key ``argument``


class ActionKind(Enum):
    """What a changed file asks for; each kind is one systemctl call (see ``Action``)."""

    CONTAINER = "container"  # systemctl try-restart systemd-nspawn@<machine>.service
    UNIT = "unit"            # systemctl --machine=<machine> try-restart <unit>
    HOST = "host"            # systemctl try-restart <unit> on the host
    # systemctl --machine=<machine> daemon-reload: a unit drop-in changed; runs before restarts
    DAEMON_RELOAD = "daemon-reload"
    # systemctl daemon-reload on the host: a host unit's drop-in changed (systemd-nspawn@<m>.d)
    HOST_DAEMON_RELOAD = "host-daemon-reload"
    # systemctl try-reload-or-restart <unit> on the host, e.g. systemd-networkd (networkctl reload)
    HOST_RELOAD = "host-reload"


class Action(NamedTuple):
    """One restart. Equal actions from several files collapse, so each unit restarts once."""

    kind: ActionKind
    unit: str
    machine: str | None = None

    @property
    def container_unit(self) -> bool:
        """Its health is the container's: ``container``, or ``host:systemd-nspawn@<m>``."""
        return self.kind is ActionKind.CONTAINER or self.kind in (
            ActionKind.HOST, ActionKind.HOST_RELOAD) and self.unit.startswith(NSPAWN_UNIT)

    @property
    def from_container(self) -> bool:
        """A failed health check whose signal the container controls (itself or a unit in
        it): it does not roll back the files that confine a container (renderer.apply)."""
        return self.container_unit or self.kind in (ActionKind.UNIT, ActionKind.DAEMON_RELOAD)

    @property
    def first(self) -> bool:
        """Runs before every other action: systemd must read a changed drop-in before the
        restart that should use it."""
        return self.kind in (ActionKind.DAEMON_RELOAD, ActionKind.HOST_DAEMON_RELOAD)

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
        if self.kind is ActionKind.HOST_DAEMON_RELOAD:
            return ["daemon-reload"]
        if self.kind is ActionKind.HOST_RELOAD:
            return ["try-reload-or-restart", self.unit]
        return ["try-restart", self.unit]

    def describe(self) -> str:
        if self.kind is ActionKind.UNIT:
            return f"{self.unit} in {self.machine}"
        if self.kind is ActionKind.DAEMON_RELOAD:
            return f"systemd (daemon-reload) in {self.machine}"
        if self.kind is ActionKind.HOST_DAEMON_RELOAD:
            return "systemd (daemon-reload) on the host"
        if self.kind is ActionKind.HOST_RELOAD:
            return f"{self.unit} (reload)"
        return self.unit


class Restart(NamedTuple):
    """One ``restart`` item as written, checked once at load. It becomes an ``Action`` only when
    bound: the machine is the file's, and ``{item}`` in the unit is the ``each`` item."""

    kind: ActionKind
    unit: str = ""  # may hold {item}; "" for container and the daemon-reloads

    def action(self, machine: str, item: str | None) -> Action:
        if self.kind is ActionKind.CONTAINER:
            return Action(self.kind, f"systemd-nspawn@{machine}.service")
        if self.kind is ActionKind.DAEMON_RELOAD:
            return Action(self.kind, DAEMON_RELOAD_UNIT, machine)
        if self.kind is ActionKind.HOST_DAEMON_RELOAD:
            return Action(self.kind, DAEMON_RELOAD_UNIT)
        unit = self.unit if item is None else self.unit.replace("{item}", item)
        unit = unit if unit.endswith(UNIT_SUFFIXES) else f"{unit}.service"
        return Action(self.kind, unit, machine if self.kind is ActionKind.UNIT else None)


class Ref(NamedTuple):
    """A value hieradata decides, written ``{lookup: KEY, default: VALUE}`` in service.yaml.

    ``{machine}`` in KEY stands for the file's machine (``each`` entries only)."""

    key: str
    default: Any = None
    has_default: bool = False


class FileSpec(NamedTuple):
    """One file a bound service writes: everything final, nothing left to the data."""

    template: str
    dest: PurePosixPath          # absolute path inside its root
    root: Root
    owner: str | None
    group: str | None
    mode: int | None
    actions: tuple[Action, ...]
    create_dirs: bool
    secret: bool                 # force "holds secrets" (0640 default mode, every value masked)
    validate: str                # syntax check before writing: none, ini, systemd, libvirt
    line: int | None             # where the entry is in ``source``, for messages
    # oslo.config namespaces the service registers for this INI file (as oslo-config-generator
    # names them); () for an INI file oslo.config does not read (api-paste.ini); None: undeclared.
    oslo_namespaces: tuple[str, ...] | None = None
    follow_symlink: bool = False  # a symlink at dest is followed, inside the root only
    machine: str | None = None   # the machine of this file when not the service's
    item: str | None = None      # ``each`` entries: the key (or list item) this copy is for
    value: Any = None  # ... and its value in the data
    source: Path | None = None   # the file holding the entry: service.yaml or an included one
    rollback_on_failure: bool | None = None  # as written; None: the rule of ``rollback``
    # options secret whatever their name (``option`` or ``section.option``, lower case)
    secret_options: tuple[str, ...] = ()
    kind: Kind = Kind.FILE
    argument: str = ""   # link: its target; line: the line; password: the hiera key
    account: str = "root"  # password: whose shadow entry

    @property
    def edit(self) -> bool:
        """A destination made from what is there (link, line, password), not from a template."""
        return self.kind is not Kind.FILE

    @property
    def confines(self) -> bool:
        """A host-side file that configures a container: its ``.nspawn``, a networkd file, a
        drop-in of its ``systemd-nspawn@`` unit, or any host file that restarts the container."""
        if self.root is not Root.HOST:
            return False
        parent = str(self.dest.parent)
        return parent in CONFINING_DIRS or (
            parent.startswith(f"/etc/systemd/system/{NSPAWN_UNIT}") and parent.endswith(
                ".service.d")) or any(a.container_unit for a in self.actions)

    @property
    def rollback(self) -> bool:
        """Whether a failed health check of a container (or of a unit in one) puts this file
        back. Not by default for a file that confines a container: the health signal comes
        from the container, which must not veto its own hardening."""
        if self.rollback_on_failure is not None:
            return self.rollback_on_failure
        return not self.confines


class Entry(NamedTuple):
    """One ``files`` entry as written. Its ``dest`` and ``restart`` are checked at load (so a
    typo is reported with its line before any lookup) but stay patterns until bound."""

    template: str
    dest: PurePosixPath          # may hold {machine} and {item}
    root: Root
    owner: str | None
    group: str | None
    mode: int | None
    restart: tuple[Restart, ...]
    create_dirs: bool
    secret: bool
    validate: str
    oslo_namespaces: tuple[str, ...] | None
    follow_symlink: bool
    source: Path                 # service.yaml, or the included file the entry comes from
    line: int | None
    machine: str | Ref | None = None  # None: the service's machine
    each: Ref | None = None
    rollback_on_failure: bool | None = None  # None: FileSpec.rollback decides
    secret_options: tuple[str, ...] = ()
    kind: Kind = Kind.FILE
    argument: str = ""     # as in FileSpec
    account: str = "root"

    @property
    def needs_data(self) -> bool:
        return isinstance(self.machine, Ref) or self.each is not None


class ServiceDef(NamedTuple):
    """A service as ``service.yaml`` says it: what to bind, before any data is read."""

    name: str
    directory: Path
    machine: str | Ref
    entries: tuple[Entry, ...]
    # restart_policy as written (renderer.services.policy): (Restart, Policy or Ref) pairs
    policies: tuple[tuple[Restart, Any], ...] = ()

    @property
    def needs_data(self) -> bool:
        """True when binding looks anything up (a looked-up machine or an ``each``)."""
        return isinstance(self.machine, Ref) or any(e.needs_data for e in self.entries) or any(
            isinstance(v, Ref) or isinstance(v.group, Ref) for _, v in self.policies)

    @property
    def definition(self) -> Path:
        return self.directory / DEFINITION


class Service(NamedTuple):
    """A definition bound to its machine and the data: what render renders and plans."""

    name: str
    machine: str
    directory: Path
    files: tuple[FileSpec, ...]
    policies: tuple[tuple[Action, Any], ...] = ()  # bound restart policies (Policy), by action

    @property
    def definition(self) -> Path:
        return self.directory / DEFINITION
