"""Report: what a run did (or, with --noop, would do), as text for people or JSON for tools.

Errors always go to stderr as one line, ``render: <service>: <path>:<line>: <message>``, so a
Puppet ``exec`` log or a cron mail shows exactly what to fix. The counts are of what was done
(written, restarted), never of what was planned; with ``--noop`` of what would be done. Diffs
are made here, masked, and only when they are printed. The exit code policy lives here too.

The text report is live (``Live``): a service's lines are printed (and flushed) as soon as its
files are written, a restart's as soon as its health check is over, with its result and how long
it took; what is left (restarts owed, late notes) and the summary come at the end. On a terminal
only, one progress line, rewritten in place, says what a restart waits for, and is cleared once it
is over. JSON is one document at the end.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from renderer.apply import Listener, RestartDone, ServiceResult
from renderer.errors import error_line
from renderer.masking import Masker
from renderer.names import printable
from renderer.plan import Change, FileChange
from renderer.restarts import Outcome
from renderer.services import Action, Kind

VERBS = {Change.CREATE: "create", Change.UPDATE: "update", Change.METADATA: "fix",
         Change.REMOVE: "remove"}


def exit_code(results: list[ServiceResult], pending: bool) -> int:
    """Puppet's --detailed-exitcodes: 2 for changes, 4 for failures, 6 for both. ``pending``
    (--noop without --no-restart): the restarts a real run would make count as changes;
    restarts that --no-restart leaves owed do not (that run would make none)."""
    changes = any(r.changed or (pending and r.owed) for r in results)
    failures = any(r.failed for r in results)
    return (2 if changes else 0) | (4 if failures else 0)


def why(change: FileChange) -> str:
    """``content, mode 0644 -> 0640; edited outside render since <time>``."""
    return "; ".join(part for part in (", ".join(change.reasons), change.origin_text) if part)


def diff_lines(change: FileChange, masker: Masker, context: int = 3) -> tuple[str, ...]:
    """A unified diff of a content change, secrets masked on both sides: an option secret in
    the new file, in the last run's record or declared secret (``secret: true``: every value)
    is masked in the old file too, whose values the masker does not know."""
    if not change.diffable or change.kind not in (Change.CREATE, Change.UPDATE) \
            or (change.kind is Change.UPDATE and "content" not in change.reasons):
        return ()
    import difflib  # only a run that prints a difference pays for it

    path = printable(change.path)
    if change.spec.kind is Kind.PASSWORD:  # the whole of shadow is secret: say only what
        return (f"--- {path}\n", f"+++ {path}\n",
                f"# password of {change.spec.account} changed (not shown)\n")
    old = change.before.data if change.before is not None else None
    if change.spec.kind is Kind.LINK:
        old = None if old is None else b"link -> " + old + b"\n"
        change = change._replace(data=b"link -> " + change.data + b"\n")
    names, whole = change.masked_names, change.spec.secret
    old_text = masker.mask_lines(old.decode("utf-8", "replace").splitlines(keepends=True),
                                 names=names, whole=whole) if old is not None else []
    new_text = masker.mask_lines(change.data.decode("utf-8", "replace").splitlines(keepends=True),
                                 names=names, whole=whole)
    lines = difflib.unified_diff(old_text, new_text, "/dev/null" if old is None else path, path,
                                 n=context)
    return tuple(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                 for line in lines)


def _say(line: str, out: TextIO) -> None:
    """Print one report line; names in it (paths from a container) cannot break it."""
    print(printable(line), file=out)


def _print_errors(results: list[ServiceResult], err: TextIO, masker: Masker) -> None:
    for result in results:
        for error in result.errors:
            print(masker.mask_text(error_line(error)), file=err)


def _file_lines(result: ServiceResult, out: TextIO, would: str, diff: bool,
                masker: Masker, context: int = 3) -> None:
    for change in result.plan.changes:
        if diff:
            out.writelines(diff_lines(change, masker, context))
        if result.failed and change.key not in result.written and not would:
            verb = "not written"
        else:
            verb = would + VERBS[change.kind]
        _say(masker.mask_text(f"{result.plan.service}: {verb} {change.path} ({why(change)})"),
             out)


def restart_line(service: str, done: RestartDone, again: bool = False) -> str:
    """``keystone: restart systemd-nspawn@keystone.service (files changed): active after 1.2 s``."""
    unit, attempt = done.action.describe(), done.attempt
    if attempt.outcome is Outcome.NOT_RUNNING:
        return (f"{service}: {unit} is not running ({attempt.state}): "
                "left stopped; it reads the new files when started")
    why = "with the rolled-back files" if again else done.reason
    also = "; with its container" if done.absorbed else ""
    state = attempt.state or ("done" if attempt.outcome is Outcome.RESTARTED else "failed")
    return f"{service}: restart {unit} ({why}{also}): {state} after {done.seconds:.1f} s"


def _owed_lines(result: ServiceResult, out: TextIO, pending: bool) -> None:
    for item in result.owed:
        verb = "would restart" if pending else "restart owed:"
        _say(f"{result.plan.service}: {verb} {item.action.describe()} ({item.reason})", out)


class Live(Listener):
    """The text report as the run goes (see the module docstring). ``masker`` is asked for at
    each line: the runner makes its own once the run holds the lock. ``progress``: the terminal
    the progress line goes to (the stream under ``out``'s colours), None when not one."""

    def __init__(self, out: TextIO, masker: Callable[[], Masker], *, diff: bool, noop: bool,
                 pending: bool, context: int = 3, progress: TextIO | None = None) -> None:
        self.out, self.masker, self.diff, self.noop = out, masker, diff, noop
        self.pending, self.context, self.progress = pending, context, progress
        self.lock = threading.Lock()  # restarts report from their threads
        self.notes: dict[int, int] = {}   # id(result) -> its notes printed so far
        self.rolled: set[int] = set()     # id(result) of those whose rollback is printed
        self.waits: dict[str, tuple[str, float, float]] = {}  # unit -> state, since, timeout
        self.ticker: threading.Thread | None = None
        self.shown = 0                    # width of the progress line on the terminal

    def _emit(self, write: Callable[[], None]) -> None:
        with self.lock:
            self._clear()
            write()
            self.out.flush()
            self._draw()
            if self.progress is not None:
                self.progress.flush()

    def _new_notes(self, result: ServiceResult) -> None:
        masker = self.masker()
        for note in result.notes[self.notes.get(id(result), 0):]:
            _say(masker.mask_text(f"{result.plan.service}: note: {note}"), self.out)
        self.notes[id(result)] = len(result.notes)

    def service(self, result: ServiceResult) -> None:
        def write() -> None:
            _file_lines(result, self.out, "would " if self.noop else "", self.diff,
                        self.masker(), self.context)
            self._new_notes(result)
        self._emit(write)

    def restarted(self, result: ServiceResult, done: RestartDone, again: bool) -> None:
        self._emit(lambda: _say(restart_line(result.plan.service, done, again), self.out))

    def rolled_back(self, result: ServiceResult) -> None:
        def write() -> None:
            paths = {c.key: c.path for c in result.plan.files}
            for key in result.rolled_back:
                _say(f"{result.plan.service}: rolled back {paths[key]}", self.out)
            self.rolled.add(id(result))
            self._new_notes(result)
        self._emit(write)

    def waiting(self, unit: str, state: str, waited: float, timeout: float) -> None:
        if self.progress is None:
            return
        with self.lock:
            since = self.waits[unit][1] if unit in self.waits else time.monotonic() - waited
            self.waits[unit] = (state, since, timeout)  # counted from the restart's start
            self._redraw()
            if self.ticker is None:  # a systemctl call blocks for as long as the start job
                self.ticker = threading.Thread(target=self._tick, daemon=True)
                self.ticker.start()

    def done(self, action: Action) -> None:
        if self.progress is None:
            return
        with self.lock:
            for unit in action.systemctl_args()[1:]:
                self.waits.pop(unit, None)
            self._redraw()

    def _tick(self) -> None:
        """Counts the seconds on while something is waited for; ends when nothing is."""
        while True:
            time.sleep(1)
            with self.lock:
                if not self.waits:
                    self.ticker = None
                    return
                self._redraw()

    def _redraw(self) -> None:
        assert self.progress is not None
        self._clear()
        self._draw()
        self.progress.flush()

    def _draw(self) -> None:
        """``waiting for systemd-nspawn@keystone.service (activating, 4 s of 30 s)``, for the
        unit waited on longest, and how many others wait with it."""
        if not self.waits or self.progress is None:
            return
        unit, (state, since, timeout) = min(self.waits.items(), key=lambda item: item[1][1])
        others = f" and {len(self.waits) - 1} other unit(s)" if len(self.waits) > 1 else ""
        waited = time.monotonic() - since
        line = printable(f"waiting for {unit} ({state}, {waited:.0f} s of {timeout:.0f} s)"
                         f"{others}")
        self.progress.write(line + "\r")
        self.shown = len(line)

    def _clear(self) -> None:
        if self.shown and self.progress is not None:
            self.out.flush()
            self.progress.write(" " * self.shown + "\r")
            self.shown = 0

    def finish(self, results: list[ServiceResult]) -> None:
        """What was not told as it happened: late notes, a rollback not told, restarts owed."""
        def write() -> None:
            for result in results:
                if result.rolled_back and id(result) not in self.rolled:
                    self.rolled.add(id(result))
                    paths = {c.key: c.path for c in result.plan.files}
                    for key in result.rolled_back:
                        _say(f"{result.plan.service}: rolled back {paths[key]}", self.out)
                self._new_notes(result)
                _owed_lines(result, self.out, self.pending)
        self._emit(write)

    def replay(self, result: ServiceResult) -> None:
        """A result the run did not tell as it went (a report made afterwards), in the same
        lines."""
        self.service(result)
        for done in result.restarts:
            self.restarted(result, done, False)
        self.finish([result])


def _summary(results: list[ServiceResult], noop: bool, pending: bool) -> str:
    changed = sum(len(set(r.written) - set(r.rolled_back)) for r in results)
    restarts = sum(1 for r in results for d in r.restarts
                   if d.attempt.outcome is Outcome.RESTARTED and not d.absorbed)
    owed = sum(len(r.owed) for r in results)
    failed = sum(1 for r in results if r.failed)
    if noop and (changed or (pending and owed)):
        summary = f"{changed} file(s) to change, {owed if pending else 0} restart(s) pending"
    elif changed or restarts:
        summary = f"{changed} file(s) changed, {restarts} restart(s)"
    elif failed:
        summary = "nothing changed"
    elif owed:
        summary = f"files in sync ({len(results)} service(s))"
    else:
        files = sum(len(r.plan.files) for r in results)
        summary = f"everything in sync ({len(results)} service(s), {files} file(s))"
    if owed and not pending:
        summary += f"; {owed} restart(s) owed"
    if failed:
        summary += f"; {failed} of {len(results)} service(s) failed"
    return f"render: {summary}{' (noop)' if noop else ''}"


def text(results: list[ServiceResult], out: TextIO, err: TextIO, *, diff: bool, noop: bool,
         pending: bool, quiet: bool, masker: Masker, context: int = 3,
         live: Live | None = None) -> None:
    """The errors, what ``live`` did not print as the run went (all of it without one), and
    the summary line."""
    _print_errors(results, err, masker)
    if quiet:
        return
    if live is None:
        replay = Live(out, lambda: masker, diff=diff, noop=noop, pending=pending,
                      context=context)
        for result in results:
            replay.replay(result)
    else:
        live.finish(results)
    _say(_summary(results, noop, pending), out)
    out.flush()


def _file_json(change: FileChange, result: ServiceResult, noop: bool,
               masker: Masker, context: int = 3) -> dict[str, Any]:
    return {
        "path": change.path,
        "target": change.key,
        "change": change.kind.value,
        "reasons": list(change.reasons),
        "origin": change.origin.value,
        "origin_text": change.origin_text,
        "owner": f"{change.uid}:{change.gid}",
        "mode": f"{change.mode:04o}",
        ("would_write" if noop else "written"): change.key in result.written,
        "diff": "".join(diff_lines(change, masker, context)),
    }


def _service_json(r: ServiceResult, noop: bool, pending: bool,
                  masker: Masker, context: int = 3) -> dict[str, Any]:
    paths = {c.key: c.path for c in r.plan.files}
    document: dict[str, Any] = {
        "service": r.plan.service,
        "machine": r.plan.machine,
        "status": "failed" if r.failed else
        ("changed" if r.changed or (pending and r.owed) else "unchanged"),
        "files": [_file_json(f, r, noop, masker, context) for f in r.plan.files],
    }
    owed = [{"kind": p.action.kind.value, "machine": p.action.machine, "unit": p.action.unit,
             "reason": p.reason} for p in r.owed]
    if pending:
        document["pending"] = owed
    else:
        document.update({
            "restarts": [a.unit if a.machine is None else f"{a.machine}:{a.unit}"
                         for a in r.restarted],
            "restart_details": [{
                "kind": d.action.kind.value, "machine": d.action.machine, "unit": d.action.unit,
                "reason": d.reason, "result": d.attempt.outcome.value, "state": d.attempt.state,
                "with_container": d.absorbed,
            } for d in r.restarts],
            "owed": owed,
        })
    if not noop:
        document["rolled_back"] = [paths[key] for key in r.rolled_back]
        document["kept"] = [paths[key] for key in r.kept]  # confining files a failure kept
    document["notes"] = [masker.mask_text(note) for note in r.notes]
    document["errors"] = [{"message": masker.mask_text(e.message),
                           "path": e.path and masker.mask_text(str(e.path)), "line": e.line,
                           "via": e.via, "kind": type(e).__name__} for e in r.errors]
    return document


def as_json(results: list[ServiceResult], out: TextIO, err: TextIO, *, noop: bool,
            pending: bool, masker: Masker, context: int = 3) -> None:
    _print_errors(results, err, masker)
    document = {
        "noop": noop,
        "exit_code": exit_code(results, pending),
        "restarts_owed": sum(len(r.owed) for r in results),
        "services": [_service_json(r, noop, pending, masker, context) for r in results],
    }
    json.dump(document, out, indent=2)
    out.write("\n")
