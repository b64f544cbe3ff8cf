"""Plan: desired files × actual files → typed changes, masked diffs and the units to restart.

Reads go through the System (so they are confined to the root like writes are); nothing here
writes. ``--noop`` stops after the plan, which is why the plan alone must say everything a report
needs: what changes, why, the diff, and which units would restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from renderer.errors import ApplyError, MissingDirectoryError, MissingRootError, RenderError
from renderer.masking import Masker
from renderer.services import Action, FileSpec, Root, Service
from renderer.state import Origin, ServiceState, Version, classify, file_hash
from renderer.system import Actual, RealSystem
from renderer.templates import Rendered

DEFAULT_MODE = 0o644
SECRET_MODE = 0o640  # a new file that holds secrets is not world-readable


class Change(Enum):
    CREATE = "create"
    UPDATE = "update"
    METADATA = "metadata"   # same bytes, other owner or mode
    REMOVE = "remove"       # only a rollback removes a file (one that render created)
    NONE = "unchanged"


@dataclass(frozen=True)
class Roots:
    """Every path root is a parameter, so tests never touch /var/lib/machines or /etc."""

    machines_dir: Path
    host_root: Path

    def for_file(self, spec: FileSpec, machine: str) -> Path:
        """``machine``: the service's; a file the data puts in another machine says so."""
        if spec.root is not Root.CONTAINER:
            return self.host_root
        return self.machines_dir / (spec.machine or machine)


@dataclass(frozen=True)
class FileChange:
    spec: FileSpec
    root: Path
    path: str                     # for humans: root + dest
    kind: Change
    reasons: tuple[str, ...]
    data: bytes
    uid: int
    gid: int
    mode: int
    diff: tuple[str, ...]         # unified diff, secrets already masked
    hash: str = ""                # state.file_hash() of the target (data, owner, mode)
    origin: Origin = Origin.NONE  # why it differs: new, missing, edited outside render, data
    origin_text: str = ""         # the same for people: "edited outside render since <time>"
    before: Actual | None = None  # what is replaced (kept as a version, restored on rollback)


@dataclass(frozen=True)
class ServicePlan:
    service: str
    machine: str | None
    files: tuple[FileChange, ...] = ()
    error: RenderError | None = None
    state: ServiceState | None = None   # render's records for this service (restarts, writes)
    restores: tuple[tuple[str, Version], ...] = ()  # --rollback: path -> kept version restored

    @property
    def changes(self) -> tuple[FileChange, ...]:
        return tuple(f for f in self.files if f.kind is not Change.NONE)

    @property
    def actions(self) -> tuple[Action, ...]:
        """Units to restart: those of changed files, each once, in definition order."""
        seen: list[Action] = []
        for change in self.changes:
            seen.extend(a for a in change.spec.actions if a not in seen)
        return tuple(seen)


def failed(service: str, error: RenderError, machine: str | None = None) -> ServicePlan:
    """A plan that only carries its error; the error may be shared (a broken hiera.yaml)."""
    import copy

    error = copy.copy(error)
    error.service = service
    return ServicePlan(service, machine, error=error)


def _resolve_id(name: str | None, database: str, fallback: int, system: RealSystem,
                root: Path, spec: FileSpec, service: Service) -> int:
    """A user or group id in the root's own terms (``database``: ``passwd`` or ``group``)."""
    if name is None:
        return fallback
    if name.isdigit():
        return int(name)
    table = system.ids(root, database)
    if name not in table:
        kind = "user" if database == "passwd" else "group"
        where = f"container {spec.machine or service.machine}" if spec.root is Root.CONTAINER \
            else f"host {root}"
        raise ApplyError(f"{kind} {name!r} does not exist in {where} ({root}/etc/{database})",
                         path=spec.source or service.definition, line=spec.line)
    return table[name]


def diff_lines(old: bytes | None, new: bytes, path: str, masker: Masker) -> tuple[str, ...]:
    import difflib  # only a run with a difference pays for it

    old_text = masker.mask_lines(old.decode("utf-8", "replace").splitlines(keepends=True)) \
        if old is not None else []
    new_text = masker.mask_lines(new.decode("utf-8", "replace").splitlines(keepends=True))
    lines = difflib.unified_diff(old_text, new_text, "/dev/null" if old is None else path, path)
    return tuple(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                 for line in lines)


def plan_file(rendered: Rendered, service: Service, roots: Roots, system: RealSystem,
              masker: Masker, state: ServiceState | None = None) -> FileChange:
    spec = rendered.spec
    machine = spec.machine or service.machine  # the data may put a file in another machine
    root = roots.for_file(spec, machine)
    path = f"{root}{spec.dest}"
    try:
        actual: Actual | None = system.read_file(root, spec.dest, follow=spec.follow_symlink)
    except MissingRootError as exc:
        message = (f"container rootfs does not exist: machine {machine!r} is not "
                   "provisioned yet" if spec.root is Root.CONTAINER else "host root does not exist")
        raise MissingRootError(message, path=exc.path) from exc
    except MissingDirectoryError:
        if not spec.create_dirs:
            raise
        actual = None
    uid = _resolve_id(spec.owner, "passwd", actual.uid if actual else 0, system, root, spec,
                      service)
    gid = _resolve_id(spec.group, "group", actual.gid if actual else 0, system, root, spec,
                      service)
    if spec.mode is not None:
        mode = spec.mode
    elif actual is not None:
        mode = actual.mode  # keep what the operator or package set
    elif spec.secret or masker.holds_secret(rendered.data.decode("utf-8", "replace")):
        mode = SECRET_MODE
    else:
        mode = DEFAULT_MODE
    desired = file_hash(rendered.data, uid, gid, mode)
    record = state.files.get(path) if state else None
    origin, origin_text = classify(
        record, file_hash(actual.data, actual.uid, actual.gid, actual.mode) if actual else None,
        desired)
    if actual is None:
        return FileChange(spec, root, path, Change.CREATE, (), rendered.data, uid, gid, mode,
                          diff_lines(None, rendered.data, path, masker), desired, origin,
                          origin_text)
    reasons = []
    if actual.data != rendered.data:
        reasons.append("content")
    if (actual.uid, actual.gid) != (uid, gid):
        reasons.append(f"owner {actual.uid}:{actual.gid} -> {uid}:{gid}")
    if actual.mode != mode:
        reasons.append(f"mode {actual.mode:04o} -> {mode:04o}")
    if not reasons:
        kind = Change.NONE
    else:
        kind = Change.UPDATE if "content" in reasons else Change.METADATA
    diff = diff_lines(actual.data, rendered.data, path, masker) if "content" in reasons else ()
    return FileChange(spec, root, path, kind, tuple(reasons), rendered.data, uid, gid, mode, diff,
                      desired, origin, origin_text, actual if kind is not Change.NONE else None)


def plan_service(service: Service, rendered: list[Rendered], roots: Roots, system: RealSystem,
                 masker: Masker, state: ServiceState | None = None) -> ServicePlan:
    """Compare every rendered file with the disk; any error fails the whole service."""
    state = state if state is not None else ServiceState()
    try:
        files = tuple(plan_file(r, service, roots, system, masker, state) for r in rendered)
    except RenderError as exc:
        return failed(service.name, exc, service.machine)
    return ServicePlan(service.name, service.machine, files, state=state)
