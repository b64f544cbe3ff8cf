"""Report: what a run did (or, with --noop, would do), as text for people or JSON for tools.

Errors always go to stderr as one line, ``render: <service>: <path>:<line>: <message>``, so a
Puppet ``exec`` log or a cron mail shows exactly what to fix. Diffs were masked when the plan was
built; nothing here sees a secret in clear.
"""

from __future__ import annotations

import json
from typing import TextIO

from renderer.apply import ServiceResult
from renderer.errors import RenderError
from renderer.plan import Change, FileChange
from renderer.restarts import Outcome

VERBS = {Change.CREATE: "create", Change.UPDATE: "update", Change.METADATA: "fix",
         Change.REMOVE: "remove"}


def why(change: FileChange) -> str:
    """``content, mode 0644 -> 0640; edited outside render since <time>``."""
    return "; ".join(part for part in (", ".join(change.reasons), change.origin_text) if part)


def error_line(error: RenderError) -> str:
    service = f"{error.service}: " if error.service else ""
    return f"render: {service}{error}"


def _print_errors(results: list[ServiceResult], err: TextIO) -> None:
    for result in results:
        for error in result.errors:
            print(error_line(error), file=err)


def text(results: list[ServiceResult], out: TextIO, err: TextIO, *, diff: bool, noop: bool,
         quiet: bool) -> None:
    _print_errors(results, err)
    would = "would " if noop else ""
    files = changed = restarts = 0
    for result in results:
        for change in result.plan.files:
            files += 1
            if change.kind is Change.NONE:
                continue
            changed += change.path not in result.rolled_back
            if quiet:
                continue
            if diff and change.diff:
                out.writelines(change.diff)
            if result.failed and change.path not in result.written and not noop:
                verb = "not written"
            else:
                verb = would + VERBS[change.kind]
            print(f"{result.plan.service}: {verb} {change.path} ({why(change)})", file=out)
        if quiet:
            continue
        for path in result.rolled_back:
            print(f"{result.plan.service}: rolled back {path}", file=out)
        for note in result.notes:
            print(f"{result.plan.service}: note: {note}", file=out)
        for done in result.restarts:
            unit = done.action.describe()
            if done.attempt.outcome is Outcome.RESTARTED:
                restarts += 1
                print(f"{result.plan.service}: {would}restart {unit} ({done.reason})", file=out)
            elif done.attempt.outcome is Outcome.NOT_RUNNING:
                print(f"{result.plan.service}: {unit} is not running ({done.attempt.state}): "
                      "left stopped; it reads the new files when started", file=out)
    if quiet:
        return
    failed = sum(1 for r in results if r.failed)
    if changed or restarts:
        summary = f"{changed} file(s) {'to change' if noop else 'changed'}, {restarts} " \
                  f"restart(s){' pending' if noop else ''}"
    elif failed:
        summary = "nothing changed"
    else:
        summary = f"everything in sync ({len(results)} service(s), {files} file(s))"
    if failed:
        summary += f"; {failed} of {len(results)} service(s) failed"
    print(f"render: {summary}{' (noop)' if noop else ''}", file=out)


def as_json(results: list[ServiceResult], out: TextIO, err: TextIO, *, noop: bool,
            exit_status: int) -> None:
    _print_errors(results, err)
    document = {
        "noop": noop,
        "exit_code": exit_status,
        "services": [{
            "service": r.plan.service,
            "machine": r.plan.machine,
            "status": "failed" if r.failed else ("changed" if r.changed else "unchanged"),
            "files": [{
                "path": f.path,
                "change": f.kind.value,
                "reasons": list(f.reasons),
                "origin": f.origin.value,
                "origin_text": f.origin_text,
                "owner": f"{f.uid}:{f.gid}",
                "mode": f"{f.mode:04o}",
                "written": f.path in r.written,
                "diff": "".join(f.diff),
            } for f in r.plan.files],
            "restarts": [a.unit if a.machine is None else f"{a.machine}:{a.unit}"
                         for a in r.restarted],
            "restart_details": [{
                "kind": d.action.kind.value,
                "machine": d.action.machine,
                "unit": d.action.unit,
                "reason": d.reason,
                "result": d.attempt.outcome.value,
                "state": d.attempt.state,
            } for d in r.restarts],
            "rolled_back": r.rolled_back,
            "notes": r.notes,
            "errors": [{"message": e.message, "path": e.path, "line": e.line,
                        "kind": type(e).__name__} for e in r.errors],
        } for r in results],
    }
    json.dump(document, out, indent=2)
    out.write("\n")
