"""Versions: the service state file on disk, the last N replaced versions of each file, and the
plan of ``render --rollback SERVICE``.

Every replaced file is kept (bytes in ``versions/<service>/<sha256>``, 0600 in a 0700 dir, since a
config file usually holds secrets) before render writes over it, so both the automatic rollback of
a failed restart and a manual ``--rollback`` can put it back. A file render created is kept as an
"absent" version: rolling it back removes it. Reads and writes go through the System, so
``--noop`` and ``--rollback --noop`` run the same code and only record the writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from renderer import state as st
from renderer.system import Actual, RealSystem

ABSENT = "absent"  # stands for a missing file in the hash of a config set

if TYPE_CHECKING:
    from renderer.masking import Masker
    from renderer.plan import FileChange, Roots, ServicePlan
    from renderer.services import Service


def load(system: RealSystem, service: str) -> st.ServiceState:
    name = st.state_name(service)
    return st.parse(system.read_state(name), system.state_dir / name)


class Store:
    """One service's state as loaded, and the blobs it may have to clean up when it is saved."""

    def __init__(self, service: str, state: st.ServiceState) -> None:
        self.service = service
        self.state = state
        self.saved = st.dumps(state)
        self.known = state.blobs()   # blobs on disk that this state may stop referring to

    def keep(self, system: RealSystem, changes: tuple[FileChange, ...], keep: int,
             at: str) -> dict[str, st.Version]:
        """Store what ``changes`` replace; returns the version pushed per path."""
        pushed = {}
        for change in changes:
            before = change.before
            if before is None:
                version = st.Version(None, 0, 0, 0, at)
            else:
                blob = st.blob_hash(before.data)
                if blob not in self.known and keep > 0:
                    system.write_state(st.blob_name(self.service, blob), before.data, 0o600)
                    self.known.add(blob)
                version = st.Version(blob, before.uid, before.gid, before.mode, at)
            st.push_version(self.state, change.path, version, keep)
            pushed[change.path] = version
        return pushed

    def save(self, system: RealSystem) -> None:
        """Write the state file when it changed, then drop blobs nothing refers to any more."""
        data = st.dumps(self.state)
        if data != self.saved:
            system.write_state(st.state_name(self.service), data, 0o600)
            self.saved = data
        referenced = self.state.blobs()
        for blob in sorted(self.known - referenced):
            system.remove_state(st.blob_name(self.service, blob))
        self.known = referenced


def rollback_plan(service: Service, roots: Roots, system: RealSystem,
                  masker: Masker) -> ServicePlan:
    """``--rollback``: each file of the service back to its newest kept version that differs
    from what is on disk now (a file render created is removed). Restarts then follow from the
    state like for any other change, and a restart that fails rolls the rollback back."""
    from dataclasses import replace

    from renderer.errors import ApplyError, MissingDirectoryError, RenderError
    from renderer.plan import Change, ServicePlan, failed, plan_file
    from renderer.templates import Rendered

    try:
        state = load(system, service.name)
        files: list[FileChange] = []
        restores: list[tuple[str, st.Version]] = []
        found = []
        for spec in service.files:
            root = roots.for_file(spec, service.machine)
            path = f"{root}{spec.dest}"
            try:
                actual = system.read_file(root, spec.dest, follow=spec.follow_symlink)
            except MissingDirectoryError:
                actual = None
            record = state.files.get(path)
            found.append((spec, actual, newest_other(record.versions if record else (), actual)))
        # undo the last run that replaced something; files it did not touch stay as they are
        last = max((v.at for _, _, v in found if v is not None), default=None)
        for spec, actual, version in found:
            root = roots.for_file(spec, service.machine)
            path = f"{root}{spec.dest}"
            if version is not None and version.at != last:
                version = None
            if version is None and actual is None:
                continue  # not there and nothing kept: not part of the config set
            if version is not None:
                restores.append((path, version))
            if version is None or version.blob is None:
                assert actual is not None
                data, owner, mode = actual.data, (actual.uid, actual.gid), actual.mode
            else:
                data, owner, mode = blob(system, service.name, version.blob), \
                    (version.uid, version.gid), version.mode
            fixed = replace(spec, owner=str(owner[0]), group=str(owner[1]), mode=mode)
            change = plan_file(Rendered(fixed, data), service, roots, system, masker, state)
            if version is not None:
                # No diff: without rendering, the masker does not know which values hieradata
                # marks Sensitive, so a diff of a kept version could show one in clear.
                change = replace(change, diff=(), origin_text=f"rollback to the version replaced "
                                 f"at {st.shown(version.at)}" if version.blob else "rollback: "
                                 "render created it")
            if version is not None and version.blob is None:
                change = replace(change, kind=Change.REMOVE, reasons=(), diff=(),
                                 hash=ABSENT, before=actual)
            files.append(change)
        if not restores:
            raise ApplyError("no earlier version of any file of this service is kept",
                             path=system.state_dir / st.state_name(service.name))
    except RenderError as exc:
        return failed(service.name, exc, service.machine)
    return ServicePlan(service.name, service.machine, tuple(files), state=state,
                       restores=tuple(restores))


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


def blob(system: RealSystem, service: str, blob: str) -> bytes:
    from renderer.errors import ApplyError

    data = system.read_state(st.blob_name(service, blob))
    if data is None or st.blob_hash(data) != blob:
        raise ApplyError("kept version is missing or damaged",
                         path=system.state_dir / st.blob_name(service, blob))
    return data
