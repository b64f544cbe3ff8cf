"""report: counts what was done (written, restarted), says what --noop would do, owes what
--no-restart leaves, and owns the exit code. Driven with plans built in memory (pure)."""

from __future__ import annotations

import io
from pathlib import PurePosixPath

from renderer import restarts as rs
from renderer.apply import RestartDone, ServiceResult
from renderer.errors import ApplyError
from renderer.masking import Masker
from renderer.observe import Observed
from renderer.plan import Change, plan_file, plan_service
from renderer.report import diff_lines, exit_code, text
from renderer.services import Action, ActionKind, FileSpec, Root
from renderer.state import ServiceState
from renderer.system import Actual
from renderer.targets import Target

UNIT = Action(ActionKind.CONTAINER, "systemd-nspawn@m.service")
SPEC = FileSpec("t.j2", PurePosixPath("/etc/a.conf"), Root.CONTAINER, None, None, 0o644,
                (UNIT,), False, False, "none", 1)


def result(actual: bytes | None, new: bytes = b"password = s3cret\n") -> ServiceResult:
    target = Target(Root.CONTAINER, "m", SPEC.dest)
    observed = Observed(target, "/m/etc/a.conf",
                        None if actual is None else Actual(actual, 0, 0, 0o644), 0, 0)
    change = plan_file(SPEC, new, observed, None, False)
    return ServiceResult(plan_service("svc", "m", [change], ServiceState()))


def printed(results: list[ServiceResult], **kwargs: bool) -> str:
    out, err = io.StringIO(), io.StringIO()
    options = {"diff": False, "noop": False, "pending": False, "quiet": False, **kwargs}
    text(results, out, err, masker=Masker(b"k" * 16), **options)  # type: ignore[arg-type]
    return out.getvalue() + err.getvalue()


def test_a_failed_service_counts_nothing_it_did_not_write():
    failed = result(None)
    failed.fail(ApplyError("cannot write: disk full", path="/m/etc/a.conf"))
    assert printed([failed]) == (
        "svc: not written /m/etc/a.conf (new file)\n"
        "render: nothing changed; 1 of 1 service(s) failed\n"
        "render: svc: /m/etc/a.conf: cannot write: disk full\n")
    assert exit_code([failed], pending=False) == 4


def test_written_and_restarted_are_counted_as_done():
    done = result(b"old\n")
    done.written.append(done.plan.files[0].key)
    done.restarts.append(RestartDone(UNIT, "files changed",
                                     rs.Attempt(rs.Outcome.RESTARTED, "active", "")))
    assert printed([done]).endswith("render: 1 file(s) changed, 1 restart(s)\n")
    assert exit_code([done], pending=False) == 2


def test_owed_restarts_are_said_and_pending_only_for_noop():
    owed = result(b"password = s3cret\n")  # in sync, but the unit's restart is owed
    assert owed.plan.files[0].kind is Change.NONE
    owed.owed.append(rs.Pending(UNIT, "restart pending", False))
    assert printed([owed]) == (
        "svc: restart owed: systemd-nspawn@m.service (restart pending)\n"
        "render: files in sync (1 service(s)); 1 restart(s) owed\n")
    assert exit_code([owed], pending=False) == 0
    assert printed([owed], noop=True, pending=True) == (
        "svc: would restart systemd-nspawn@m.service (restart pending)\n"
        "render: 0 file(s) to change, 1 restart(s) pending (noop)\n")
    assert exit_code([owed], pending=True) == 2


def test_diffs_are_made_only_when_printed_and_masked():
    change = result(b"password = old\n").plan.files[0]
    assert "--- " not in printed([result(b"password = old\n")])
    diff = "".join(diff_lines(change, Masker(b"k" * 16)))
    assert "s3cret" not in diff and "old" not in diff and "<redacted>#" in diff
