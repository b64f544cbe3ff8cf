"""Restarts: decided from recorded state, run once each, checked for health.

A unit's *config set* is every file of a service whose restart actions include it; its hash
(state.config_hash over target keys) is recorded once the unit was restarted and came up healthy.
A unit restarts whenever the hash differs from the record, whether or not this run wrote
anything, so a restart that failed (or a run killed between write and restart) is retried by the
next run.

Health is restart policy, not System: a restart is ``try-restart`` (``restart`` when render's own
earlier restart left the unit down), then a poll of ActiveState through the System's read-only
``systemctl show`` until ``active`` or ``--health-timeout``. A unit that is ``inactive`` or
``failed`` before the restart is left alone and is *not* a failure: nothing runs with the old
config, and it reads the new files when someone starts it. Actions that are not a
``try-restart`` of a unit (a reload, a daemon-reload) succeed when their command does.

A container (or a unit in one) that failed its health check under a confining file render kept
(apply: a host-side ``.nspawn``, networkd file, ...) is recorded ``held``: no later run restarts it
while its config set is the one it failed with; a check that finds it active (started by hand)
records it healthy, a config change restarts it as usual.

A container restart that is due absorbs the restarts and daemon-reloads of units inside that
container: they start with the container, with the new files, so they are not run separately.

Restarts run in waves (``waves``): daemon-reloads first, then every other action at once, each
in its own thread (a ``systemctl`` call releases the GIL), so their health waits overlap and a
change that restarts N units waits about one health wait, not N. Actions of one ``group`` run
one after the other inside a wave: every action is its own group, except the members of one
cluster under a rolling policy (renderer.rolling), which also take a cluster lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable
from enum import Enum
from typing import NamedTuple

from renderer.errors import RestartError
from renderer.plan import ServicePlan
from renderer.services import Action, ActionKind
from renderer.state import (
    Origin,
    ServiceState,
    UnitRecord,
    action_key,
    config_hash,
    file_hash,
    shown,
)
from renderer.statefile import ABSENT
from renderer.system import System
from renderer.targets import Target

STOPPED = ("inactive", "failed", "unknown")
# Seconds a unit must stay active after its restart to count as healthy (--health-settle). Each
# unit settles in its own thread, so a wave of restarts settles once, not once per unit.
HEALTH_SETTLE = 0.5
PARALLEL = 32  # restarts in flight at once: each is one thread polling ``systemctl show``
POLL = 0.2     # seconds between two looks at a unit that is still activating

# (unit, ActiveState, seconds waited, timeout): called on each look while a restart waits
Watch = Callable[[str, str, float, float], None]


class Outcome(Enum):
    RESTARTED = "restarted"
    NOT_RUNNING = "not running"  # left stopped: not a failure (see the module docstring)
    FAILED = "failed"
    OWED = "owed"  # a rolling restart that could not run now (renderer.rolling): retried later


class Attempt(NamedTuple):
    outcome: Outcome
    state: str      # ActiveState after the attempt (before it, for NOT_RUNNING)
    output: str     # systemctl's last line, when it failed


class Pending(NamedTuple):
    """A restart a service asks for, and why."""

    action: Action
    reason: str
    force: bool     # the record says render left the unit down: ``restart``, not ``try-restart``
    held: bool = False  # down under a confining file render kept: not restarted (apply)


# --- config sets --------------------------------------------------------------------------------

def current_hash(plan: ServicePlan, keys: tuple[str, ...]) -> str:
    """The config set as this run makes it (the target of every file)."""
    by_key = {c.key: c for c in plan.files}
    return config_hash((k, by_key[k].hash) for k in keys)


def on_disk(plan: ServicePlan, keys: tuple[str, ...]) -> list[tuple[Target, str]]:
    """The config set as it is on disk before this run writes anything."""
    pairs = []
    for change in plan.files:
        if change.key not in keys:
            continue
        b = change.before
        if change.origin is Origin.NONE:
            pairs.append((change.target, change.hash))
        elif b is None:
            pairs.append((change.target, ABSENT))
        else:
            pairs.append((change.target, file_hash(b.data, b.uid, b.gid, b.mode)))
    return pairs


def previous_hash(plan: ServicePlan, keys: tuple[str, ...]) -> str:
    return config_hash((t.key, h) for t, h in on_disk(plan, keys))


def owe_restarts(plan: ServicePlan, state: ServiceState, at: str) -> None:
    """Before writing: a unit never recorded gets the hash of the files it runs with now, so a
    run killed between the write and the restart still leaves the restart owed."""
    written = {c.key for c in plan.changes}
    for action, keys in plan.config_sets.items():
        key = action_key(action)
        if key not in state.units and written.intersection(keys):
            state.units[key] = UnitRecord(previous_hash(plan, keys), at)


def decide(plan: ServicePlan, state: ServiceState, at: str) -> list[Pending]:
    """The restarts this service needs; a unit seen in sync for the first time is recorded
    (adopted) without a restart."""
    pending = []
    written = {c.key for c in plan.changes}
    for action, keys in plan.config_sets.items():
        current = current_hash(plan, keys)
        record = state.units.get(action_key(action))
        if record is None:
            state.units[action_key(action)] = UnitRecord(current, at)  # adopt, nothing written
            continue
        if record.held and record.hash == current:
            pending.append(Pending(action, f"held down since {shown(record.at)}", True, True))
            continue
        if record.hash == current and not record.down:
            continue
        if record.held:
            reason = f"config changed since render held it down at {shown(record.at)}"
        elif record.down:
            reason = f"render's restart at {shown(record.at)} left it down"
        elif written.intersection(keys):
            reason = "files changed"
        else:
            reason = "restart pending: config differs from the last successful restart"
        pending.append(Pending(action, reason, record.down))
    return pending


def confining(plan: ServicePlan, keys: tuple[str, ...]) -> list[str]:
    """The display paths of the files in a config set that a failed health check keeps."""
    return [c.path for c in plan.files if c.key in keys and not c.spec.rollback]


def record(state: ServiceState, action: Action, attempt: Attempt, hashed: str, at: str,
           held: bool = False) -> None:
    """After the final attempt: ``hashed`` on success (or when the unit does not run), a
    ``down`` mark when render's restart left the unit stopped (the next run starts it again);
    ``held``: down with the kept config set ``hashed``, not started again while it is current."""
    key = action_key(action)
    if held:
        state.units[key] = UnitRecord(hashed, at, down=True, held=True)
    elif attempt.outcome is Outcome.FAILED:
        old = state.units.get(key)
        state.units[key] = UnitRecord(old.hash if old else "", at, down=True)
    else:
        state.units[key] = UnitRecord(hashed, at)


def failure(action: Action, first: Attempt, again: Attempt | None, rolled_back: int,
            kept: int, held: bool = False) -> RestartError:
    """One line: the unit, its state, what render did about it (``rolled_back`` and ``kept``:
    how many files of the service)."""
    if first.outcome is Outcome.FAILED:
        message = f"restart failed: unit is {first.state or 'failed'}"
        if first.output and first.state in ("", "unknown"):
            message += f" ({first.output})"
    else:
        message = "restarted fine, but another unit of this service failed"
    if rolled_back:
        message += f"; rolled back {rolled_back} file(s) written by this run"
    elif not kept:
        message += "; no file written by this run to roll back"
    if kept:
        message += f"; kept {kept} file(s) that confine the container"
    if held:
        message += "; left down until the config changes or it is started by hand"
    elif again is not None:
        message += f"; restarted again: unit is {again.state or again.outcome.value}"
    elif not rolled_back:
        message += "; the next run restarts it again"
    return RestartError(message, path=action.describe())


# --- running them -------------------------------------------------------------------------------

def command(action: Action, force: bool = False) -> list[str]:
    """The systemctl arguments a restart of ``action`` runs: built here only, so ``render show``
    prints what a run issues. ``force``: ``restart``, not ``try-restart``."""
    args = action.systemctl_args()
    if force and "try-restart" in args:
        args[args.index("try-restart")] = "restart"
    return args


def order(actions: Iterable[Action]) -> tuple[list[Action], dict[Action, Action]]:
    """The order restarts run in (daemon-reloads first: a restart must see the drop-in it is
    for; stable otherwise) and the actions a due container restart absorbs, to that container."""
    ordered = sorted(actions, key=lambda a: not a.first)
    due = set(ordered)
    return ordered, {a: c for a in ordered if (c := container_of(a)) in due}


def container_of(action: Action) -> Action | None:
    """The container restart that would absorb ``action`` (a unit or daemon-reload inside)."""
    if action.kind in (ActionKind.UNIT, ActionKind.DAEMON_RELOAD) and action.machine:
        return Action(ActionKind.CONTAINER, f"systemd-nspawn@{action.machine}.service")
    return None


def unit_state(system: System, prefix: list[str], unit: str) -> str:
    """The unit's ActiveState (``active``, ``failed``, ...); ``unknown`` if systemd cannot say
    (for a unit inside a container that is not running, for example)."""
    status, output = system.systemctl_query([*prefix, "show", "-p", "ActiveState", "--value",
                                             unit])
    return output.strip() if status == 0 and output.strip() else "unknown"


def wait_active(system: System, prefix: list[str], unit: str, timeout: float,
                settle: float = HEALTH_SETTLE, watch: Watch | None = None) -> str:
    """Poll until the unit is ``active`` (and still is ``settle`` seconds later) or gives up.

    ``activating``, ``reloading`` and ``deactivating`` mean wait; ``failed`` and ``inactive``
    end the wait at once. A unit that dies right after its start job finished is caught by the
    second look after ``settle`` seconds. ``watch`` sees every look (the progress line).
    """
    start = time.monotonic()
    deadline = start + timeout
    confirmed = False
    while True:
        state = unit_state(system, prefix, unit)
        now = time.monotonic()
        if watch is not None:
            watch(unit, state, now - start, timeout)
        if state in STOPPED:
            return state
        if state == "active":
            if confirmed or now >= deadline:
                return state
            confirmed = True
            time.sleep(min(settle, max(deadline - now, 0)))
            continue
        confirmed = False
        if now >= deadline:
            return state
        time.sleep(min(POLL, deadline - now))


def current_state(system: System, action: Action) -> str:
    """What the unit(s) of ``action`` are now, without touching them (a held unit's check)."""
    args = action.systemctl_args()
    if "try-restart" in args:
        index = args.index("try-restart")
        return ", ".join(unit_state(system, args[:index], unit) for unit in args[index + 1:])
    check = action.running_check()
    return unit_state(system, *check) if check is not None else "unknown"


def restart(system: System, action: Action, force: bool, timeout: float,
            settle: float = HEALTH_SETTLE, watch: Watch | None = None) -> Attempt:
    """One restart and its health check."""
    args = action.systemctl_args()
    if "try-restart" not in args:  # a reload or daemon-reload: its exit status says it all
        check = action.running_check()
        if check is not None and not force:
            state = unit_state(system, *check)
            if state in STOPPED:
                return Attempt(Outcome.NOT_RUNNING, state, "")
        status, output = system.systemctl(command(action, force))
        return Attempt(Outcome.RESTARTED if status == 0 else Outcome.FAILED, "", output)
    index = args.index("try-restart")
    prefix, units = args[:index], args[index + 1:]
    before = [unit_state(system, prefix, unit) for unit in units]
    if not force and all(state in STOPPED for state in before):
        return Attempt(Outcome.NOT_RUNNING, ", ".join(before), "")
    if watch is not None:  # the call itself lasts as long as the start job: it is waited for
        for unit in units:
            watch(unit, "restarting", 0.0, timeout)
    status, output = system.systemctl(command(action, force))
    after = [wait_active(system, prefix, unit, timeout, settle, watch) for unit in units]
    healthy = status == 0 and all(state == "active" for state in after)
    return Attempt(Outcome.RESTARTED if healthy else Outcome.FAILED, ", ".join(after),
                   "" if healthy else output)


# --- in parallel ------------------------------------------------------------------------------

def group(action: Action) -> Hashable:
    """The key of the actions that must not restart at the same time: each its own, unless
    a rolling policy says otherwise (renderer.rolling.key: its cluster group)."""
    return action


def waves(actions: Iterable[Action]) -> list[list[Action]]:
    """Daemon-reloads, then everything else: a restart must see the drop-in it is for. A unit
    inside a due container is not here at all (``order`` absorbs it into the container)."""
    ordered = list(actions)
    return [wave for wave in ([a for a in ordered if a.first], [a for a in ordered if not a.first])
            if wave]


def run_parallel(actions: Iterable[Action], attempt: Callable[[Action], Attempt],
                 workers: int = PARALLEL,
                 key: Callable[[Action], Hashable] | None = None) -> dict[Action, Attempt]:
    """``attempt`` for every action, wave after wave; inside a wave every group (``key``) at
    once (up to ``workers``), the actions of a group in order. ``attempt`` must not raise."""
    done: dict[Action, Attempt] = {}
    key = key or group
    for wave in waves(actions):
        groups: dict[Hashable, list[Action]] = {}
        for action in wave:
            groups.setdefault(key(action), []).append(action)
        queue = list(groups.values())
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    serial = queue.pop(0)
                for action in serial:
                    done[action] = attempt(action)

        if len(queue) == 1:
            work()
            continue
        threads = [threading.Thread(target=work, daemon=True)
                   for _ in range(min(workers, len(queue)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return done
