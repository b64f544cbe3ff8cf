"""Rollback: ``render --rollback SERVICE`` as a plan, made by the same pure planner.

Each file of the service goes back to its newest kept version that differs from what is on disk
now, but only the versions the last run replaced (files it did not touch stay as they are). A
kept version becomes the desired file, is observed and planned like a rendered one, and so is
written, recorded and restarted by the same apply. A file render created is removed.
"""

from __future__ import annotations

from renderer import state as st
from renderer.errors import ApplyError, MissingDirectoryError
from renderer.observe import observe_file, read_actual
from renderer.plan import Change, FileChange, ServicePlan, plan_file, plan_service
from renderer.services import FileSpec, Service
from renderer.statefile import ABSENT, blob, migrate_files
from renderer.system import Actual, System
from renderer.targets import Roots


def rollback_plan(service: Service, roots: Roots, system: System,
                  state: st.ServiceState) -> ServicePlan:
    migrate_files(state, (roots.target(s, service.machine) for s in service.files), roots)
    found: list[tuple[FileSpec, Actual | None, st.Version | None]] = []
    for spec in service.files:
        target = roots.target(spec, service.machine)
        try:
            actual = read_actual(system, roots.root_of(target), spec)
        except MissingDirectoryError:
            actual = None
        record = state.files.get(target.key)
        found.append((spec, actual, newest_other(record.versions if record else (), actual)))
    last = max((v.at for _, _, v in found if v is not None), default=None)
    files: list[FileChange] = []
    restores: list[tuple[str, st.Version]] = []
    for spec, actual, version in found:
        if version is not None and version.at != last:
            version = None
        if version is None and actual is None:
            continue  # not there and nothing kept: not part of the config set
        files.append(_restore(spec, actual, version, service, roots, system, state))
        if version is not None:
            restores.append((files[-1].key, version))
    if not restores:
        raise ApplyError("no earlier version of any file of this service is kept",
                         path=system.state_path(st.state_name(service.name)))
    return plan_service(service.name, service.machine, files, state)._replace(
        restores=tuple(restores))


def _restore(spec: FileSpec, actual: Actual | None, version: st.Version | None,
             service: Service, roots: Roots, system: System,
             state: st.ServiceState) -> FileChange:
    """The change that puts ``version`` back (``None``: the file stays as it is)."""
    if version is None or version.blob is None:
        assert actual is not None
        data, owner, mode = actual.data, (actual.uid, actual.gid), actual.mode
    else:
        data, owner, mode = blob(system, service.name, version.blob), \
            (version.uid, version.gid), version.mode
    fixed = spec._replace(owner=str(owner[0]), group=str(owner[1]), mode=mode)
    observed = observe_file(fixed, service, roots, system)
    record = state.files.get(observed.target.key)
    change = plan_file(fixed, data, observed, record, False,  # the recorded secret names stay
                       frozenset(record.secret_options) if record else frozenset())
    if version is None:
        return change
    # No diff: without rendering, the masker does not know which values hieradata marks
    # Sensitive, so a diff of a kept version could show one in clear.
    if version.blob is None:
        return change._replace(kind=Change.REMOVE, reasons=(), hash=ABSENT, before=actual,
                       diffable=False, origin_text="rollback: render created it")
    return change._replace(diffable=False,
                   origin_text=f"rollback to the version replaced at {st.shown(version.at)}")


def restart_plan(service: Service, roots: Roots, system: System,
                 state: st.ServiceState) -> ServicePlan:
    """``render restart``: every file as it is on disk is the desired one, so nothing is
    written and only the restarts the records owe are made (their config sets hashed from
    disk, as a full run that wrote nothing would). A file not there needs a full run first."""
    migrate_files(state, (roots.target(s, service.machine) for s in service.files), roots)
    files: list[FileChange] = []
    for spec in service.files:
        target = roots.target(spec, service.machine)
        try:
            actual = system.read_file(roots.root_of(target), spec.dest, spec.follow_symlink)
        except MissingDirectoryError:
            actual = None
        if actual is None or actual.oversize:
            raise ApplyError("not written yet: `render restart` makes owed restarts only; a "
                             "full run writes it first", path=roots.display(target))
        files.append(_restore(spec, actual, None, service, roots, system, state))
    return plan_service(service.name, service.machine, files, state,
                        dict(service.policies))._replace(restart_only=True)


def newest_other(versions: tuple[st.Version, ...], actual: Actual | None) -> st.Version | None:
    """The newest kept version that is not what is on disk now."""
    current = None if actual is None else \
        (st.blob_hash(actual.data), actual.uid, actual.gid, actual.mode)
    for version in reversed(versions):
        if version.blob is None:
            if current is not None:
                return version
        elif (version.blob, version.uid, version.gid, version.mode) != current:
            return version
    return None
