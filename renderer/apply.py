"""Apply: run plans against a System. Writes first, then each restart once, then the records.

Per service the writes are all-or-nothing as far as the filesystem allows: every changed file is
staged (temp file written, owned and fsynced next to its target) before the first rename, so a full
disk, a read-only mount or EACCES on any file leaves the whole service untouched and unrestarted.
What a write replaces is kept first (renderer.statefile). Restarts are decided from the recorded
state (renderer.restarts), de-duplicated (two services sharing a container restart it once) and all
run even when one fails, as consul-template does. A unit that does not come back healthy gets the
files of this run restored and is restarted again; only a healthy restart is recorded. Not the
files that confine a container (``FileSpec.rollback``) when the failed health check is a
container's or a unit's in one: that signal comes from the container, which must not undo its own
hardening. They are kept, the unit stays down and is recorded ``held`` (renderer.restarts). With
``--noop`` the same code runs against a DryRunSystem and restarts are only decided: they are
reported as owed, as with ``--no-restart``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from renderer import restarts as rs
from renderer import rolling
from renderer import state as st
from renderer.bounds import MAX_FILE, size_text
from renderer.errors import InternalError, RenderError, RestartError
from renderer.plan import Change, FileChange, ServicePlan
from renderer.records import record_files
from renderer.services import Action, Kind
from renderer.services.policy import Policy
from renderer.statefile import Store
from renderer.system import Staged, System
from renderer.targets import Roots

KEPT_NOTE = "a container's health check does not undo its confinement " \
    "(rollback_on_failure: true to allow)"


class Options(NamedTuple):
    restart: bool = True            # False: --noop or --no-restart (decide, run nothing)
    health_timeout: float = 30.0    # seconds a restarted unit has to become active
    keep: int = st.DEFAULT_KEEP     # versions kept of each replaced file
    settle: float = rs.HEALTH_SETTLE  # seconds a restarted unit must stay active
    coordinator: str | None = None  # etcd://HOST:PORT: the lock of rolling restarts
    lock_wait: float = 300.0        # seconds a rolling restart waits for its place in the lock


class RestartDone(NamedTuple):
    action: Action
    reason: str
    attempt: rs.Attempt
    absorbed: bool = False  # not run by itself: the container it lives in restarted
    seconds: float = 0.0    # how long the restart and its health check took


class ServiceResult:
    """What a run did for one service (with ``--noop``: what it would do). A plain class: it is
    mutable, and a dataclass would cost its creation at every start."""

    def __init__(self, plan: ServicePlan) -> None:
        self.plan = plan
        self.written: list[str] = []              # target keys written (or staged, --noop)
        self.notes: list[str] = []
        self.restarts: list[RestartDone] = []
        self.owed: list[rs.Pending] = []          # decided, not run
        self.rolled_back: list[str] = []          # target keys put back
        self.kept: list[str] = []                 # ... not put back: they confine a container
        self.errors: list[RenderError] = list(plan.errors)

    @property
    def restarted(self) -> list[Action]:
        return [r.action for r in self.restarts if r.attempt.outcome is rs.Outcome.RESTARTED]

    @property
    def changed(self) -> bool:
        """A service whose files were rolled back after a failed restart ends as it began; one
        whose container stays down under kept files reports the failure (exit 4), as then."""
        return bool(self.written or self.restarted) and not (self.rolled_back or self.kept)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def fail(self, error: RenderError) -> None:
        self.errors.append(error.with_context(service=self.plan.service))


class Listener:
    """What a run tells as it goes (the live text report, renderer.report.Live): this one
    listens to nothing. ``restarted`` and ``waiting`` are called from the restart threads."""

    def service(self, result: ServiceResult) -> None:
        """``result``'s files are written (with --noop: planned); its restarts are to come."""

    def restarted(self, result: ServiceResult, done: RestartDone, again: bool) -> None:
        """One restart of ``result``'s finished (``again``: with the rolled-back files)."""

    def rolled_back(self, result: ServiceResult) -> None:
        """``result``'s files are put back after a failed restart."""

    def waiting(self, unit: str, state: str, waited: float, timeout: float) -> None:
        """A restarted unit is not healthy yet (one call per look)."""

    def done(self, action: Action) -> None:
        """``action``'s restart (and its health wait) is over."""


class _Live(NamedTuple):
    result: ServiceResult
    store: Store


def _write_files(changes: list[FileChange], system: System, roots: Roots,
                 result: ServiceResult, done: list[str]) -> bool:
    """Stage every file, then rename them all; on any error drop what is not renamed."""
    staged: list[tuple[FileChange, Staged]] = []
    handed = 0  # staged items given to commit(), which releases them whether it succeeds or not
    try:
        for change in changes:
            if change.kind is not Change.REMOVE:
                staged.append((change, system.stage(
                    roots.root_of(change.target), change.spec.dest, change.data, change.uid,
                    change.gid, change.mode, change.spec.create_dirs, change.spec.follow_symlink,
                    link=change.spec.kind is Kind.LINK)))
        for change, item in staged:
            handed += 1
            note = system.commit(item)
            done.append(change.key)
            if note:
                result.notes.append(f"{change.path}: {note}")
        for change in changes:
            if change.kind is Change.REMOVE:
                system.remove_file(roots.root_of(change.target), change.spec.dest,
                                   change.spec.follow_symlink,
                                   link=change.spec.kind is Kind.LINK)
                done.append(change.key)
    except Exception as exc:  # noqa: BLE001 - a bug fails this service, not the run
        for _, item in staged[handed:]:
            system.discard(item)
        result.fail(as_error(exc))
        return False
    return True


def as_error(exc: BaseException) -> RenderError:
    """A RenderError as it is; anything else is a bug, confined to its service."""
    return exc if isinstance(exc, RenderError) else InternalError.from_exception(exc)


def _oversize_note(change: FileChange) -> str:
    size = size_text(change.before.oversize) if change.before else ""
    return (f"{change.path}: was {size} (over the {size_text(MAX_FILE)} limit): "
            "replaced, not kept, not diffed")


def _undo_changes(result: ServiceResult) -> list[FileChange]:
    """The changes that put back what this run replaced in ``result``'s service (not a file
    that was over the size limit: it was never read, so it cannot be put back)."""
    undo = []
    for change in result.plan.changes:
        if change.key not in result.written or change.key in result.kept \
                or change.before and change.before.oversize:
            continue
        before = change.before
        if before is None:
            undo.append(change._replace(kind=Change.REMOVE))
        else:
            undo.append(change._replace(kind=Change.UPDATE, data=before.data, uid=before.uid,
                                gid=before.gid, mode=before.mode))
    return undo


def apply(plans: list[ServicePlan], system: System, roots: Roots, options: Options,
          listener: Listener | None = None,
          notes: dict[str, list[str]] | None = None) -> list[ServiceResult]:
    """``notes``: per service, what the run noted before (stale temp files swept)."""
    at = st.timestamp()
    tell = listener or Listener()
    results = [ServiceResult(plan) for plan in plans]
    live: list[_Live] = []
    for result in results:
        plan = result.plan
        result.notes.extend((notes or {}).get(plan.service, ()))
        if plan.errors:
            tell.service(result)
            continue
        store = Store(plan.service, plan.state or st.ServiceState())
        live.append(_Live(result, store))
        if not plan.changes:
            tell.service(result)
            continue
        result.notes.extend(_oversize_note(c) for c in plan.changes
                            if c.before is not None and c.before.oversize)
        try:
            if not plan.restores:
                # no copy of /etc/shadow in the state dir: its hashes are secrets (a failed
                # restart still puts it back, from memory; --rollback leaves it as it is)
                store.keep(system, ((c.key, c.before) for c in plan.changes
                                    if c.spec.kind is not Kind.PASSWORD), options.keep, at)
            rs.owe_restarts(plan, store.state, at)
            store.save(system)  # before the write: a killed run still owes its restarts
        except Exception as exc:  # noqa: BLE001 - a bug fails this service, not the run
            result.fail(as_error(exc))
            tell.service(result)
            continue
        _write_files(list(plan.changes), system, roots, result, result.written)
        tell.service(result)
    _restart(live, system, roots, options, at, tell)
    for result, store in live:
        try:
            record_files(result, store.state, at)
            store.save(system)
        except Exception as exc:  # noqa: BLE001 - a bug fails this service, not the run
            result.fail(as_error(exc))
    return results


class _Timed(NamedTuple):
    attempt: rs.Attempt
    seconds: float


def _attempt(system: System, action: Action, force: bool, options: Options,
             tell: Listener, policy: Policy | None = None) -> _Timed:
    """One restart (through its rolling policy, if any); a bug while making it fails that
    unit, and every other still restarts."""
    start = time.monotonic()

    def plain() -> rs.Attempt:
        return rs.restart(system, action, force, options.health_timeout, options.settle,
                          tell.waiting)
    try:
        coordinator = None
        if policy is not None and options.coordinator:
            from renderer.coordinator import Etcd  # urllib and json only when it is used

            coordinator = Etcd(system, options.coordinator)
        attempt = plain() if policy is None else rolling.restart(
            system, action, policy, coordinator, options.health_timeout, options.lock_wait,
            plain, force)
    except Exception as exc:  # noqa: BLE001
        attempt = rs.Attempt(rs.Outcome.FAILED, "", str(as_error(exc)))
    timed = _Timed(attempt, time.monotonic() - start)
    tell.done(action)
    return timed


def _run(actions: list[Action], force: Callable[[Action], bool], absorbed: dict[Action, Action],
         pending: dict[Action, list[tuple[_Live, rs.Pending]]], system: System,
         options: Options, tell: Listener, again: bool,
         policies: dict[Action, Policy]) -> dict[Action, _Timed]:
    """Every action at once (renderer.restarts.run_parallel), a cluster's members in turn;
    each owner hears of its restart, and of those its container absorbed, as soon as it is
    over. A restart with the rolled-back files (``again``) is not held back by its policy."""
    inside: dict[Action, list[Action]] = {}
    for unit, container in absorbed.items():
        inside.setdefault(container, []).append(unit)
    times: dict[Action, _Timed] = {}

    def one(action: Action) -> rs.Attempt:
        timed = times[action] = _attempt(system, action, force(action), options, tell,
                                         None if again else policies.get(action))
        for each in (action, *inside.get(action, ())) \
                if timed.attempt.outcome is not rs.Outcome.OWED else ():
            for owner, item in pending[each]:
                tell.restarted(owner.result, RestartDone(each, item.reason, timed.attempt,
                                                         each is not action, timed.seconds),
                               again)
        return timed.attempt

    rs.run_parallel(actions, one, key=lambda a: rolling.key(a, policies.get(a)))
    return times


def _restart(live: list[_Live], system: System, roots: Roots, options: Options,
             at: str, tell: Listener) -> None:
    """Decide, restart each action once, roll back the services of a unit that failed, record."""
    pending: dict[Action, list[tuple[_Live, rs.Pending]]] = {}
    for owner in live:
        if not owner.result.failed:
            for item in rs.decide(owner.result.plan, owner.store.state, at):
                pending.setdefault(item.action, []).append((owner, item))
    _check_held(pending, system, at)
    policies = rolling.policies(pending)  # and the reason of each says "rolling, group X"
    order, absorbed = rs.order(pending)  # daemon-reloads first; what a container absorbs
    if not options.restart:
        for action in order:
            for owner, item in pending[action]:
                owner.result.owed.append(item)
        return
    timed = _run([a for a in order if a not in absorbed],
                 lambda a: any(p.force for _, p in pending[a]), absorbed, pending, system,
                 options, tell, False, policies)
    timed.update({a: timed[c] for a, c in absorbed.items()})
    first = {a: t.attempt for a, t in timed.items()}
    broken = [o for o in live if any(first[a].outcome is rs.Outcome.FAILED
                                     for a, owners in pending.items() for x, _ in owners
                                     if x is o)]
    for owner in broken:
        _keep_confining(owner, pending, first)
        _write_files(_undo_changes(owner.result), system, roots, owner.result,
                     owner.result.rolled_back)
        tell.rolled_back(owner.result)
    # A container that failed under a kept confining file stays down (as do the units it
    # absorbed): starting it again would run it with half of its old files, for nothing.
    held = {a for a, owners in pending.items() if a not in absorbed
            and first[a].outcome is rs.Outcome.FAILED and a.from_container
            and any(set(o.result.kept) & set(o.result.plan.config_sets[a]) for o, _ in owners)}
    held.update(a for a, c in absorbed.items() if c in held)
    # Every unit of a rolled-back service that was running starts again with the old files. A
    # unit that failed with nothing to roll back (a retried restart) stays as it is: the record
    # marks it down and the next run starts it.
    retry = [a for a, owners in pending.items()
             if a not in absorbed and a not in held
             and first[a].outcome not in (rs.Outcome.NOT_RUNNING, rs.Outcome.OWED)
             and any(o in broken and o.result.rolled_back for o, _ in owners)]
    again = {a: t.attempt for a, t in _run(
        rs.order(retry)[0], lambda a: True, {a: c for a, c in absorbed.items() if c in retry},
        pending, system, options, tell, True, policies).items()}
    again.update({a: again[c] for a, c in absorbed.items() if c in again})
    for action, owners in pending.items():
        for owner, item in owners:
            result = owner.result
            final = again.get(action, first[action])
            if final.outcome is rs.Outcome.OWED:  # not run: the record stays, still owed
                result.owed.append(item)
                result.fail(RestartError(f"restart owed: {final.output}",
                                         path=action.describe()))
                continue
            result.restarts.append(RestartDone(action, item.reason, first[action],
                                               action in absorbed, timed[action].seconds))
            keys = result.plan.config_sets[action]
            hashed = (rs.previous_hash if owner in broken and action not in held
                      else rs.current_hash)(result.plan, keys)
            rs.record(owner.store.state, action, final, hashed, at, action in held)
            if rs.Outcome.FAILED in (first[action].outcome, final.outcome):
                result.fail(rs.failure(action, first[action], again.get(action),
                                       len(result.rolled_back), len(result.kept),
                                       action in held))


def _keep_confining(owner: _Live, pending: dict[Action, list[tuple[_Live, rs.Pending]]],
                    first: dict[Action, rs.Attempt]) -> None:
    """Marks kept the files of a broken service that confine a container, when a container's
    health check (or a unit's inside one) failed. ``--rollback`` is the operator's own choice:
    what it restores is rolled back as before."""
    result = owner.result
    if result.plan.restores or not any(
            first[a].outcome is rs.Outcome.FAILED and a.from_container
            for a, owners in pending.items() if any(x is owner for x, _ in owners)):
        return
    for change in result.plan.changes:
        if change.key in result.written and not change.spec.rollback:
            result.kept.append(change.key)
            result.notes.append(f"kept {change.path}: {KEPT_NOTE}")


def _check_held(pending: dict[Action, list[tuple[_Live, rs.Pending]]], system: System,
                at: str) -> None:
    """A held unit is not restarted (nor owed): found active, someone started it with the kept
    files and it is recorded healthy; otherwise its service fails again, with the same line.
    Only a read: ``--noop`` decides the same. Found active after this run wrote some of its
    files (rolled back by the run that held it), it restarts as for any change."""
    for action in [a for a, owners in pending.items() if all(p.held for _, p in owners)]:
        state = rs.current_state(system, action)
        if set(state.split(", ")) == {"active"} and any(
                set(o.result.written) & set(o.result.plan.config_sets[action])
                for o, _ in pending[action]):
            pending[action] = [(o, p._replace(reason="files changed", force=False, held=False))
                               for o, p in pending[action]]
            continue
        for owner, item in pending.pop(action):
            result = owner.result
            keys = result.plan.config_sets[action]
            if set(state.split(", ")) == {"active"}:
                rs.record(owner.store.state, action, rs.Attempt(rs.Outcome.RESTARTED, state, ""),
                          rs.current_hash(result.plan, keys), at)
                result.notes.append(f"{action.describe()} is active again (started outside "
                                    "render) with the kept files: recorded")
                continue
            container = rs.container_of(action)
            kept = rs.confining(result.plan, keys) or \
                [f"the kept files of {container.unit if container else action.unit}"]
            result.fail(RestartError(
                f"{item.reason} (unit is {state}): it failed its health check under "
                f"{', '.join(kept)}, which render keeps; not "
                "restarted until the config changes or it is started by hand",
                path=action.describe()))
