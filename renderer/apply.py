"""Apply: run plans against a System. Writes first, then each restart once, after all writes.

Per service the writes are all-or-nothing as far as the filesystem allows: every changed file is
staged (temp file written, owned and fsynced next to its target) before the first rename, so a full
disk, a read-only mount or EACCES on any file leaves the whole service untouched and unrestarted.
Restarts are collected from the services that were written, de-duplicated (two services sharing a
container restart it once) and all run even when one fails, as consul-template does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from renderer.errors import RenderError, RestartError
from renderer.plan import ServicePlan
from renderer.services import Action
from renderer.system import RealSystem, Staged


@dataclass
class ServiceResult:
    plan: ServicePlan
    written: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    restarted: list[Action] = field(default_factory=list)
    errors: list[RenderError] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.plan.error is not None:
            self.errors.append(self.plan.error)

    @property
    def changed(self) -> bool:
        return bool(self.written or self.restarted)

    @property
    def failed(self) -> bool:
        return bool(self.errors)


def _write_service(plan: ServicePlan, system: RealSystem, result: ServiceResult) -> bool:
    """Stage every changed file, then rename them all; on any error drop what is not renamed."""
    staged: list[Staged] = []
    handed = 0  # staged items given to commit(), which releases them whether it succeeds or not
    try:
        for change in plan.changes:
            staged.append(system.stage(change.root, change.spec.dest, change.data, change.uid,
                                       change.gid, change.mode, change.spec.create_dirs))
        for item in staged:
            handed += 1
            system.commit(item)
            result.written.append(item.path)
            if item.note:
                result.notes.append(f"{item.path}: {item.note}")
    except RenderError as exc:
        for item in staged[handed:]:
            system.discard(item)
        exc.service = plan.service
        result.errors.append(exc)
        return False
    return True


def apply(plans: list[ServicePlan], system: RealSystem, restart: bool = True
          ) -> list[ServiceResult]:
    results = [ServiceResult(plan) for plan in plans]
    pending: dict[Action, list[ServiceResult]] = {}
    for result in results:
        plan = result.plan
        if plan.error is not None or not plan.changes:
            continue
        if _write_service(plan, system, result) and restart:
            for action in plan.actions:
                pending.setdefault(action, []).append(result)
    for action, owners in pending.items():
        status, output = system.systemctl(action.systemctl_args())
        for owner in owners:
            if status == 0:
                owner.restarted.append(action)
            else:
                owner.errors.append(RestartError(
                    f"systemctl {' '.join(action.systemctl_args())} failed (exit {status})"
                    + (f": {output}" if output else ""), path=action.describe(),
                    service=owner.plan.service))
    return results


def exit_code(results: list[ServiceResult]) -> int:
    """Puppet's --detailed-exitcodes: 2 for changes, 4 for failures, 6 for both."""
    changes = any(r.changed for r in results)
    failures = any(r.failed for r in results)
    return (2 if changes else 0) | (4 if failures else 0)

