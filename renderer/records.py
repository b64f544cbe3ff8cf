"""After the writes and restarts: what render wrote (or found in sync) becomes its records.

Apart from ``apply`` so that the pipeline's last step reads on its own: a file rolled back is
recorded as it was, a file written as written, a version restored by ``--rollback`` dropped from
the kept versions once its service ended well.
"""

from __future__ import annotations

from typing import Protocol

from renderer import state as st
from renderer.plan import Change, ServicePlan


class Outcome(Protocol):
    """What ``record_files`` reads of a service's result (renderer.apply.ServiceResult)."""

    plan: ServicePlan
    written: list[str]
    rolled_back: list[str]

    @property
    def failed(self) -> bool: ...


def record_files(result: Outcome, state: st.ServiceState, at: str) -> None:
    """What render wrote (or found in sync and had no record of) is what it last wrote;
    ``render restart`` rendered nothing, so it records no file."""
    if result.plan.restart_only:
        return
    for change in result.plan.files:
        key = change.key
        if key in result.rolled_back:
            record = state.files.get(key)
            if record and record.versions and record.versions[-1].at == at:
                st.drop_versions_from(state, key, record.versions[-1])  # kept it back
            before = change.before
            if before is not None:
                st.record_file(state, key,
                               st.file_hash(before.data, before.uid, before.gid, before.mode), at)
        elif key in result.written and change.kind is not Change.REMOVE:
            # a restored version (not diffable: its secrets are unknown) keeps the names
            st.record_file(state, key, change.hash, at,
                           change.secret_names if change.diffable else None)
        elif change.kind is Change.NONE:
            record = state.files.get(key)
            if record is None or record.hash is None:
                st.record_file(state, key, change.hash, at, change.secret_names)
            elif change.diffable and set(record.secret_options) != change.secret_names:
                # e.g. after an upgrade, whose records have no names yet
                state.files[key] = record._replace(
                    secret_options=tuple(sorted(change.secret_names)))
    if not result.failed:
        keys = {c.key for c in result.plan.files}
        for key, version in result.plan.restores:
            if key in keys and key in state.files:
                st.drop_versions_from(state, key, version)
