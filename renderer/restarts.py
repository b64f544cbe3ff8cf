"""Restarts: decided from recorded state, checked for health, rolled back when the unit fails.

A unit's *config set* is every file of a service whose restart actions include it; its hash
(state.config_hash) is recorded once the unit was restarted and came up healthy. A unit restarts
whenever the hash differs from the record, whether or not this run wrote anything, so a restart
that failed (or a run killed between write and restart) is retried by the next run.

Health: a restart is ``try-restart`` (``restart`` when render's own earlier restart left the unit
down), then wait up to ``--health-timeout`` for ActiveState ``active``. The rule for units that do
not run: ``try-restart`` does not start a stopped unit, so a unit that is ``inactive`` or ``failed``
before the restart is left alone and is *not* a failure; nothing runs with the old config, and it
reads the new files when someone starts it, so its hash is recorded. Actions that are not a
``try-restart`` of a unit (a reload, a daemon-reload) succeed when their command does.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from renderer.services import Action
from renderer.state import ServiceState, UnitRecord, action_key, config_hash, shown
from renderer.system import RealSystem
from renderer.versions import ABSENT

if TYPE_CHECKING:
    from renderer.plan import ServicePlan

STOPPED = ("inactive", "failed", "unknown")


class Outcome(Enum):
    RESTARTED = "restarted"
    NOT_RUNNING = "not running"  # left stopped: not a failure (see the module docstring)
    FAILED = "failed"


class Attempt(NamedTuple):
    outcome: Outcome
    state: str      # ActiveState after the attempt (before it, for NOT_RUNNING)
    output: str     # systemctl's last line, when it failed


class Pending(NamedTuple):
    """A restart a service asks for, and why."""

    action: Action
    reason: str
    force: bool     # the record says render left the unit down: ``restart``, not ``try-restart``


def config_sets(plan: ServicePlan) -> dict[Action, list[str]]:
    """Per action, the paths of the service's files that trigger it; files without one don't
    count, and a file with the same action twice is listed once."""
    sets: dict[Action, list[str]] = {}
    for change in plan.files:
        for action in change.spec.actions:
            paths = sets.setdefault(action, [])
            if change.path not in paths:
                paths.append(change.path)
    return sets


def current_hash(plan: ServicePlan, paths: list[str]) -> str:
    """The config set as this run makes it (the target of every file)."""
    by_path = {c.path: c for c in plan.files}
    return config_hash((p, by_path[p].hash) for p in paths)


def previous_hash(plan: ServicePlan, paths: list[str]) -> str:
    """The config set as it was on disk before this run wrote anything."""
    from renderer.state import file_hash

    pairs = []
    for change in plan.files:
        if change.path not in paths:
            continue
        if change.origin.value == "none":
            pairs.append((change.path, change.hash))
        elif change.before is None:
            pairs.append((change.path, ABSENT))
        else:
            b = change.before
            pairs.append((change.path, file_hash(b.data, b.uid, b.gid, b.mode)))
    return config_hash(pairs)


def owe_restarts(plan: ServicePlan, state: ServiceState, at: str) -> None:
    """Before writing: a unit never recorded gets the hash of the files it runs with now, so a
    run killed between the write and the restart still leaves the restart owed."""
    written = {c.path for c in plan.changes}
    for action, paths in config_sets(plan).items():
        key = action_key(action)
        if key not in state.units and written.intersection(paths):
            state.units[key] = UnitRecord(previous_hash(plan, paths), at)


def decide(plan: ServicePlan, state: ServiceState, at: str) -> list[Pending]:
    """The restarts this service needs; a unit seen in sync for the first time is recorded
    (adopted) without a restart."""
    pending = []
    for action, paths in config_sets(plan).items():
        current = current_hash(plan, paths)
        record = state.units.get(action_key(action))
        if record is None:
            state.units[action_key(action)] = UnitRecord(current, at)  # adopt, nothing written
            continue
        if record.hash == current and not record.down:
            continue
        written = {c.path for c in plan.changes}.intersection(paths)
        if record.down:
            reason = f"render's restart at {shown(record.at)} left it down"
        elif written:
            reason = "files changed"
        else:
            reason = "restart pending: config differs from the last successful restart"
        pending.append(Pending(action, reason, record.down))
    return pending


def record(state: ServiceState, action: Action, attempt: Attempt, hashed: str, at: str) -> None:
    """After the final attempt: ``hashed`` on success (or when the unit does not run), a
    ``down`` mark when render's restart left the unit stopped (the next run starts it again)."""
    key = action_key(action)
    if attempt.outcome is Outcome.FAILED:
        old = state.units.get(key)
        state.units[key] = UnitRecord(old.hash if old else "", at, down=True)
    else:
        state.units[key] = UnitRecord(hashed, at)


def restart(system: RealSystem, action: Action, force: bool, timeout: float) -> Attempt:
    """One restart and its health check."""
    args = action.systemctl_args()
    if "try-restart" not in args:  # a reload or daemon-reload: its exit status says it all
        check = action.running_check()
        if check is not None and not force:
            state = system.unit_state(*check)
            if state in STOPPED:
                return Attempt(Outcome.NOT_RUNNING, state, "")
        status, output = system.systemctl(args)
        return Attempt(Outcome.RESTARTED if status == 0 else Outcome.FAILED, "", output)
    index = args.index("try-restart")
    prefix, units = args[:index], args[index + 1:]
    before = [system.unit_state(prefix, unit) for unit in units]
    if not force and all(state in STOPPED for state in before):
        return Attempt(Outcome.NOT_RUNNING, ", ".join(before), "")
    status, output = system.systemctl([*prefix, "restart" if force else "try-restart", *units])
    after = [system.wait_active(prefix, unit, timeout) for unit in units]
    healthy = status == 0 and all(state == "active" for state in after)
    return Attempt(Outcome.RESTARTED if healthy else Outcome.FAILED, ", ".join(after),
                   "" if healthy else output)
