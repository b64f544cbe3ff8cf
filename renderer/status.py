"""Status: one service after a run, as monitoring sees it: counts and states, never values.

The fact, the metrics (renderer.outputs) and the journal entries (renderer.journal) are three
views of these, made from the same ServiceResult list the report prints.
"""

from __future__ import annotations

from typing import NamedTuple

from renderer.apply import ServiceResult
from renderer.errors import error_line
from renderer.masking import Masker
from renderer.report import exit_code


class Status(NamedTuple):
    """One service after a run (with --noop: as found), as the monitoring sees it."""

    service: str
    machine: str | None
    in_sync: bool
    files_pending: int
    restarts_owed: int
    errors: int
    last_error: str | None      # the run's first error of the service, one masked line
    exit_code: int              # this service alone, as report.exit_code
    changed: int = 0            # files written (with --noop: that would be)
    restarted: int = 0          # restarts made


def status(result: ServiceResult, noop: bool, pending: bool, masker: Masker) -> Status:
    """``files_pending``: changes not on disk after the run (all of them with --noop; in a real
    run the ones a failure left unwritten or rolled back). A plan that failed before observing
    has no changes to count: 0 with ``in_sync`` false and its error."""
    changes = result.plan.changes
    if noop:
        files = len(changes)
    else:
        done = set(result.written) - set(result.rolled_back)
        files = sum(1 for change in changes if change.key not in done)
    owed = len(result.owed)
    last = masker.mask_text(error_line(result.errors[0])) if result.errors else None
    return Status(result.plan.service, result.plan.machine,
                  not result.failed and not files and not owed, files, owed,
                  len(result.errors), last, exit_code([result], pending),
                  len(set(result.written) - set(result.rolled_back)), len(result.restarted))


def statuses(results: list[ServiceResult], noop: bool, pending: bool,
             masker: Masker) -> list[Status]:
    return [status(r, noop, pending, masker) for r in results]
