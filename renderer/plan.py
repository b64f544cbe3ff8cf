"""Plan: desired files x observed files x render's records -> typed changes. Pure.

Nothing here reads or writes: the actual state was observed (renderer.observe) and the records
loaded before. ``--noop`` stops after the plan, which is why the plan alone says everything a
report needs: what changes and why. Diffs are not made here; the report makes them when it
prints them (black decides at the edge too).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any, NamedTuple

from renderer.errors import RenderError, each_error
from renderer.observe import Observed
from renderer.services import Action, FileSpec, Kind
from renderer.state import FileRecord, Origin, ServiceState, Version, classify, file_hash
from renderer.system import Actual
from renderer.system.links import LINK_MODE
from renderer.targets import Target

DEFAULT_MODE = 0o644
SECRET_MODE = 0o640  # a new file that holds secrets is not world-readable


class Change(Enum):
    CREATE = "create"
    UPDATE = "update"
    METADATA = "metadata"   # same bytes, other owner or mode
    REMOVE = "remove"       # only a rollback removes a file (one that render created)
    NONE = "unchanged"


class FileChange(NamedTuple):
    """What one destination needs. ``target`` is its identity; ``path`` is only for people."""

    spec: FileSpec
    target: Target
    path: str                     # root + dest as this run spells the roots
    kind: Change
    reasons: tuple[str, ...]      # "content", "owner 0:0 -> 0:42", "mode 0644 -> 0640"
    data: bytes                   # the bytes the file gets
    uid: int
    gid: int
    mode: int
    hash: str = ""                # state.file_hash() of the target (data, owner, mode)
    origin: Origin = Origin.NONE  # why it differs: new, missing, edited outside render, data
    origin_text: str = ""         # the same for people: "edited outside render since <time>"
    before: Actual | None = None  # what is replaced (kept as a version, restored on rollback)
    diffable: bool = True         # False for a restored version: its secrets are not known
    temps: tuple[str, ...] = ()   # stale temp files next to it, removed under the lock
    # options holding a secret in ``data`` (recorded once it is there), and those masked on both
    # sides of the diff: these and the ones the last run recorded (renderer.masking)
    secret_names: frozenset[str] = frozenset()
    masked_names: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return self.target.key


class ServicePlan(NamedTuple):
    """One service's changes, or the errors that failed it (then nothing of it is written)."""

    service: str
    machine: str | None
    files: tuple[FileChange, ...] = ()
    errors: tuple[RenderError, ...] = ()
    state: ServiceState | None = None   # render's records for this service (restarts, writes)
    restores: tuple[tuple[str, Version], ...] = ()  # --rollback: target key -> version restored
    config_sets: dict[Action, tuple[str, ...]] = {}  # noqa: RUF012 - never mutated
    policies: dict[Action, Any] = {}  # noqa: RUF012 - restart policies (services.policy.Policy)
    restart_only: bool = False  # ``render restart``: the files as they are, nothing recorded

    @property
    def changes(self) -> tuple[FileChange, ...]:
        return tuple(f for f in self.files if f.kind is not Change.NONE)

    @property
    def error(self) -> RenderError | None:
        """The first error, or None: the plan failed when there is one."""
        return self.errors[0] if self.errors else None


def failed(service: str, error: RenderError, machine: str | None = None) -> ServicePlan:
    """A plan that only carries its errors (copies: an error may be shared); a ServiceErrors
    is spread into the errors it holds, each reported on its own line."""
    return ServicePlan(service, machine, errors=tuple(
        e.with_context(service=service) for e in each_error(error)))


def config_sets(files: Iterable[FileChange]) -> dict[Action, tuple[str, ...]]:
    """Per action, the targets of the service's files that trigger it; files without one don't
    count, and a file with the same action twice is listed once. Made once per plan."""
    sets: dict[Action, list[str]] = {}
    for change in files:
        for action in change.spec.actions:
            keys = sets.setdefault(action, [])
            if change.key not in keys:
                keys.append(change.key)
    return {action: tuple(keys) for action, keys in sets.items()}


def desired_mode(spec: FileSpec, actual: Actual | None, holds_secret: bool) -> int:
    """The mode the definition asks for; else what is there; else 0640 for secrets."""
    if spec.mode is not None:
        return spec.mode
    if actual is not None:
        return actual.mode  # keep what the operator or package set
    return SECRET_MODE if spec.secret or holds_secret else DEFAULT_MODE


def plan_file(spec: FileSpec, data: bytes, observed: Observed, record: FileRecord | None,
              holds_secret: bool, secret_names: frozenset[str] = frozenset()) -> FileChange:
    """Compare one desired file with what was observed."""
    actual = observed.actual
    uid, gid = observed.uid, observed.gid
    mode = LINK_MODE if spec.kind is Kind.LINK else desired_mode(spec, actual, holds_secret)
    desired = file_hash(data, uid, gid, mode)
    origin, origin_text = classify(
        record, file_hash(actual.data, actual.uid, actual.gid, actual.mode) if actual else None,
        desired)
    if spec.edit and (record is None or record.hash is None) and origin_text:
        origin_text = "new link" if actual is None else \
            f"the container's file, not edited by render before ({spec.kind.value})"

    def change(kind: Change, reasons: tuple[str, ...] = (), before: Actual | None = None
               ) -> FileChange:
        return FileChange(spec, observed.target, observed.path, kind, reasons, data, uid, gid,
                          mode, desired, origin, origin_text, before, temps=observed.temps,
                          secret_names=secret_names, masked_names=masked)

    masked = secret_names | frozenset(record.secret_options if record else ())

    if actual is None:
        return change(Change.CREATE)
    if actual.oversize:  # never read (renderer.bounds): replaced, not kept, not diffed
        return change(Change.UPDATE, ("content",), actual)._replace(diffable=False)
    reasons = []
    if actual.data != data:
        reasons.append("content")
    if (actual.uid, actual.gid) != (uid, gid):
        reasons.append(f"owner {actual.uid}:{actual.gid} -> {uid}:{gid}")
    if actual.mode != mode:
        reasons.append(f"mode {actual.mode:04o} -> {mode:04o}")
    if not reasons:
        return change(Change.NONE)
    return change(Change.UPDATE if "content" in reasons else Change.METADATA, tuple(reasons),
                  actual)


def plan_service(service: str, machine: str, files: Iterable[FileChange],
                 state: ServiceState, policies: dict[Action, Any] | None = None) -> ServicePlan:
    files = tuple(files)
    return ServicePlan(service, machine, files, state=state, config_sets=config_sets(files),
                       policies=policies or {})
