"""Apply: run plans against a System. Writes first, then each restart once, then the records.

Per service the writes are all-or-nothing as far as the filesystem allows: every changed file is
staged (temp file written, owned and fsynced next to its target) before the first rename, so a full
disk, a read-only mount or EACCES on any file leaves the whole service untouched and unrestarted.
What a write replaces is kept first (renderer.versions). Restarts are decided from the recorded
state (renderer.restarts), de-duplicated (two services sharing a container restart it once) and all
run even when one fails, as consul-template does. A unit that does not come back healthy gets the
files of this run restored and is restarted again; only a healthy restart is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

from renderer import restarts as rs
from renderer import state as st
from renderer.errors import RenderError, RestartError
from renderer.plan import Change, FileChange, ServicePlan
from renderer.services import Action
from renderer.system import RealSystem, Staged
from renderer.versions import Store


class Options(NamedTuple):
    restart: bool = True            # False: --no-restart (write, record nothing about units)
    health_timeout: float = 30.0    # seconds a restarted unit has to become active
    keep: int = st.DEFAULT_KEEP     # versions kept of each replaced file


class RestartDone(NamedTuple):
    action: Action
    reason: str
    attempt: rs.Attempt


@dataclass
class ServiceResult:
    plan: ServicePlan
    written: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    restarts: list[RestartDone] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    errors: list[RenderError] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.plan.error is not None:
            self.errors.append(self.plan.error)

    @property
    def restarted(self) -> list[Action]:
        return [r.action for r in self.restarts if r.attempt.outcome is rs.Outcome.RESTARTED]

    @property
    def changed(self) -> bool:
        """A service whose files were rolled back after a failed restart ends as it began."""
        return bool(self.written or self.restarted) and not self.rolled_back

    @property
    def failed(self) -> bool:
        return bool(self.errors)


def _write_files(changes: list[FileChange], service: str, system: RealSystem,
                 result: ServiceResult, done: list[str]) -> bool:
    """Stage every file, then rename them all; on any error drop what is not renamed."""
    staged: list[Staged] = []
    handed = 0  # staged items given to commit(), which releases them whether it succeeds or not
    try:
        for change in changes:
            if change.kind is Change.REMOVE:
                continue
            staged.append(system.stage(change.root, change.spec.dest, change.data, change.uid,
                                       change.gid, change.mode, change.spec.create_dirs,
                                       change.spec.follow_symlink))
        for item in staged:
            handed += 1
            system.commit(item)
            done.append(item.path)
            if item.note:
                result.notes.append(f"{item.path}: {item.note}")
        for change in changes:
            if change.kind is Change.REMOVE:
                system.remove_file(change.root, change.spec.dest, change.spec.follow_symlink)
                done.append(change.path)
    except RenderError as exc:
        for item in staged[handed:]:
            system.discard(item)
        exc.service = service
        result.errors.append(exc)
        return False
    return True


def _note_stale_temps(results: list[ServiceResult], system: RealSystem) -> None:
    """Say which temp files of a killed run this run removed (while planning, under the lock)."""
    for result in results:
        for change in result.plan.files:
            result.notes.extend(f"removed stale temp file {temp}"
                                for temp in system.removed.get(change.path, ()))


def _undo_changes(result: ServiceResult) -> list[FileChange]:
    """The changes that put back what this run replaced in ``result``'s service."""
    undo = []
    for change in result.plan.changes:
        if change.path not in result.written:
            continue
        before = change.before
        if before is None:
            undo.append(replace(change, kind=Change.REMOVE))
        else:
            undo.append(replace(change, kind=Change.UPDATE, data=before.data, uid=before.uid,
                                gid=before.gid, mode=before.mode))
    return undo


def apply(plans: list[ServicePlan], system: RealSystem, restart: bool = True,
          options: Options | None = None) -> list[ServiceResult]:
    options = options or Options(restart=restart)
    at = st.timestamp()
    results = [ServiceResult(plan) for plan in plans]
    _note_stale_temps(results, system)
    stores: dict[int, Store] = {}
    for index, result in enumerate(results):
        plan = result.plan
        if plan.error is not None:
            continue
        store = stores[index] = Store(plan.service, plan.state or st.ServiceState())
        if not plan.changes:
            continue
        try:
            if not plan.restores:
                store.keep(system, plan.changes, options.keep, at)
            rs.owe_restarts(plan, store.state, at)
            store.save(system)  # before the write: a killed run still owes its restarts
        except RenderError as exc:
            exc.service = plan.service
            result.errors.append(exc)
            continue
        _write_files(list(plan.changes), plan.service, system, result, result.written)
    _restart(results, stores, system, options, at)
    for index, store in stores.items():
        _record_files(results[index], store.state, at)
        try:
            store.save(system)
        except RenderError as exc:
            exc.service = results[index].plan.service
            results[index].errors.append(exc)
    return results


def _restart(results: list[ServiceResult], stores: dict[int, Store], system: RealSystem,
             options: Options, at: str) -> None:
    """Decide, restart each action once, roll back the services of a unit that failed, record."""
    pending: dict[Action, list[tuple[int, rs.Pending]]] = {}
    for index, store in stores.items():
        if not results[index].failed:
            for item in rs.decide(results[index].plan, store.state, at):
                pending.setdefault(item.action, []).append((index, item))
    if not options.restart:
        return
    # daemon-reloads first (stable order otherwise): a restart must see the drop-in it is for
    pending = {action: pending[action] for action in sorted(pending, key=lambda a: not a.first)}
    first = {action: rs.restart(system, action, any(p.force for _, p in owners),
                                options.health_timeout)
             for action, owners in pending.items()}
    broken = sorted({index for action, owners in pending.items() for index, _ in owners
                     if first[action].outcome is rs.Outcome.FAILED})
    for index in broken:
        result = results[index]
        _write_files(_undo_changes(result), result.plan.service, system, result,
                     result.rolled_back)
    # Every unit of a rolled-back service that was running starts again with the old files. A
    # unit that failed with nothing to roll back (a retried restart) stays as it is: the record
    # marks it down and the next run starts it.
    again = {action: rs.restart(system, action, True, options.health_timeout)
             for action, owners in pending.items()
             if first[action].outcome is not rs.Outcome.NOT_RUNNING
             and any(index in broken and results[index].rolled_back for index, _ in owners)}
    for action, owners in pending.items():
        for index, item in owners:
            result = results[index]
            final = again.get(action, first[action])
            result.restarts.append(RestartDone(action, item.reason, first[action]))
            paths = rs.config_sets(result.plan)[action]
            hashed = (rs.previous_hash if index in broken else rs.current_hash)(result.plan, paths)
            rs.record(stores[index].state, action, final, hashed, at)
            if rs.Outcome.FAILED in (first[action].outcome, final.outcome):
                result.errors.append(_restart_error(result, action, first[action],
                                                    again.get(action)))


def _restart_error(result: ServiceResult, action: Action, first: rs.Attempt,
                   again: rs.Attempt | None) -> RestartError:
    """One line: the unit, its state, what render did about it."""
    if first.outcome is rs.Outcome.FAILED:
        message = f"restart failed: unit is {first.state or 'failed'}"
        if first.output and first.state in ("", "unknown"):
            message += f" ({first.output})"
    else:
        message = "restarted fine, but another unit of this service failed"
    count = len(result.rolled_back)
    message += f"; rolled back {count} file(s) written by this run" if count else \
        "; no file written by this run to roll back"
    if again is not None:
        message += f"; restarted again: unit is {again.state or again.outcome.value}"
    elif not count:
        message += "; the next run restarts it again"
    return RestartError(message, path=action.describe(), service=result.plan.service)


def _record_files(result: ServiceResult, state: st.ServiceState, at: str) -> None:
    """What render wrote (or found in sync and had no record of) is what it last wrote."""
    by_path = {c.path: c for c in result.plan.files}
    for change in result.plan.files:
        if change.path in result.rolled_back:
            record = state.files.get(change.path)
            if record and record.versions and record.versions[-1].at == at:
                st.drop_versions_from(state, change.path, record.versions[-1])  # kept it back
            before = change.before
            if before is not None:
                st.record_file(state, change.path,
                               st.file_hash(before.data, before.uid, before.gid, before.mode), at)
        elif change.path in result.written and change.kind is not Change.REMOVE:
            st.record_file(state, change.path, change.hash, at)
        elif change.kind is Change.NONE:
            record = state.files.get(change.path)
            if record is None or record.hash is None:
                st.record_file(state, change.path, change.hash, at)
    if not result.failed:
        for path, version in result.plan.restores:
            if path in by_path and path in state.files:
                st.drop_versions_from(state, path, version)


def exit_code(results: list[ServiceResult]) -> int:
    """Puppet's --detailed-exitcodes: 2 for changes, 4 for failures, 6 for both."""
    changes = any(r.changed for r in results)
    failures = any(r.failed for r in results)
    return (2 if changes else 0) | (4 if failures else 0)
