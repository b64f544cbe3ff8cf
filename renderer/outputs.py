"""Outputs: what a run tells the site's monitoring, made at the report stage from the same results.

Three reports beside the text/JSON one: a Facter external fact (``--fact-file``), a Prometheus
textfile for node_exporter (``--metrics-file``) and one journald entry per service
(``--journal``, renderer.journal). Counts and states only, never diffs or values; an error is its
one masked line.

These files are render's own output, not files it manages, so they bypass the System: the
DryRunSystem drops every write, yet ``--noop`` (the drift timer) is exactly the run whose fact
must be fresh; and they are not planned, diffed, kept as versions or restarted for. They are
written by ``write_output`` alone: temp file in the same directory (a name facter and
node_exporter skip: leading dot, ``.tmp`` suffix), 0644, fsync, rename, fsync of the directory;
the directory must exist (render creates nothing outside its roots). Failing to write one is a
warning line on stderr and leaves the exit code as it is: the run's result is what it did to the
managed files, and a stale fact shows itself by its ``checked_at``. They are written before the
run's lock is released (``Runner.run(after=...)``), so the last fact is the last check's.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from renderer.options import from_env

if TYPE_CHECKING:  # the CLI imports this module for its options: the pipeline stays unloaded
    from renderer.apply import ServiceResult
    from renderer.masking import Masker
    from renderer.status import Status


def add_options(parser: argparse.ArgumentParser) -> None:
    """--fact-file, --metrics-file, --journal: off, off, auto (the package's config turns the
    files on)."""
    parser.add_argument("--fact-file", metavar="FILE", default=from_env("RENDER_FACT_FILE", None),
                        help="write a Facter external fact (JSON) after every run, --noop too, "
                        "e.g. /etc/facter/facts.d/render.json [env RENDER_FACT_FILE]")
    parser.add_argument("--metrics-file", metavar="FILE",
                        default=from_env("RENDER_METRICS_FILE", None),
                        help="write node_exporter textfile metrics after every run, --noop too, "
                        "e.g. /var/lib/prometheus/node-exporter/render.prom "
                        "[env RENDER_METRICS_FILE]")
    parser.add_argument("--journal", choices=("auto", "always", "never"),
                        default=from_env("RENDER_JOURNAL", "auto"),
                        help="send one journald entry per service: auto (default) when stderr "
                        "is the journal ($JOURNAL_STREAM) [env RENDER_JOURNAL]")


# --- Facter ------------------------------------------------------------------------------------

def fact(items: list[Status], code: int, checked_at: int, noop: bool,
         error: str | None = None) -> bytes:
    """The external fact ``render`` (schema in the README). ``error``: a run that failed before
    any service (the lock, --facts), masked."""
    document = {"render": {
        "checked_at": checked_at,
        "noop": noop,
        "in_sync": error is None and all(s.in_sync for s in items),
        "exit_code": code,
        "error": error,
        "services": {s.service: {
            "machine": s.machine,
            "in_sync": s.in_sync,
            "files_pending": s.files_pending,
            "restarts_owed": s.restarts_owed,
            "errors": s.errors,
            "last_error": s.last_error,
        } for s in items},
    }}
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


# --- Prometheus --------------------------------------------------------------------------------

METRICS = (  # name, help, per service
    ("render_service_in_sync", "1 when the service's files are as desired and no restart is owed",
     True),
    ("render_files_pending", "files not as desired after the run (with --noop: to change)", True),
    ("render_restarts_owed", "restarts decided and not made (with --noop: a real run's)", True),
    ("render_service_errors", "errors of the service in the last run", True),
    ("render_last_check_timestamp_seconds", "when the last run checked, Unix time", False),
    ("render_run_exit_code", "exit code of the last run (puppet --detailed-exitcodes)", False),
)


def label(value: str) -> str:
    """A label value as the text exposition format escapes it."""
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def metrics(items: list[Status], code: int, checked_at: int) -> bytes:
    """Every series is a gauge, base units, no client-side timestamps (node_exporter rejects a
    textfile that has one)."""
    lines: list[str] = []
    for name, text, per_service in METRICS:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
        if not per_service:
            lines.append(f"{name} {checked_at if name.endswith('_seconds') else code}")
            continue
        for s in items:
            value = {"render_service_in_sync": int(s.in_sync),
                     "render_files_pending": s.files_pending,
                     "render_restarts_owed": s.restarts_owed,
                     "render_service_errors": s.errors}[name]
            labels = f'service="{label(s.service)}",machine="{label(s.machine or "")}"'
            lines.append(f"{name}{{{labels}}} {value}")
    return ("\n".join(lines) + "\n").encode()


# --- the writer --------------------------------------------------------------------------------

def write_output(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` (a file render owns outside its roots) with ``data``, 0644.
    The directory is opened once and everything is relative to its fd; the temp file is
    created ``O_EXCL|O_NOFOLLOW`` (a planted symlink is never followed) and renamed over the
    name, which replaces a symlink there rather than writing through it."""
    import secrets

    flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
    directory = os.open(path.parent, flags)
    try:
        temp = f".{path.name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | getattr(os, "O_CLOEXEC", 0), 0o644, dir_fd=directory)
        try:
            try:
                os.fchmod(fd, 0o644)  # whatever the umask
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, path.name, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            try:
                os.unlink(temp, dir_fd=directory)
            except OSError:
                pass
            raise
        os.fsync(directory)
    finally:
        os.close(directory)


def _write(path: Path, data: bytes, what: str, err: TextIO) -> None:
    try:
        write_output(path, data)
    except OSError as exc:
        from renderer.names import printable

        reason = exc.strerror or str(exc)
        print(printable(f"render: warning: {what} {path}: not written: {reason}"), file=err)


def publish(results: list[ServiceResult], code: int, err: TextIO, *, noop: bool, pending: bool,
            masker: Masker, fact_file: str | None, metrics_file: str | None, journal: str,
            error: str | None = None, now: float | None = None) -> None:
    """Write the fact and the metrics, send the journal entries: every run, --noop included.
    ``error``: the masked line of a run that failed before any service."""
    from renderer.status import statuses

    publish_statuses(statuses(results, noop, pending, masker), code, err, noop=noop,
                     fact_file=fact_file, metrics_file=metrics_file, journal=journal,
                     error=error, now=now)


def publish_statuses(items: list[Status], code: int, err: TextIO, *, noop: bool,
                     fact_file: str | None, metrics_file: str | None, journal: str,
                     error: str | None = None, now: float | None = None) -> None:
    """``publish`` from the statuses (the fast path has no results, only what they were)."""
    import time

    checked_at = int(time.time() if now is None else now)
    if fact_file:
        _write(Path(fact_file), fact(items, code, checked_at, noop, error), "fact file", err)
    if metrics_file:
        _write(Path(metrics_file), metrics(items, code, checked_at), "metrics file", err)
    if journal == "never" or (journal == "auto" and not os.environ.get("JOURNAL_STREAM")):
        return  # renderer.journal (and socket) only when an entry may be sent
    from renderer import journal as journald

    if journald.wanted(journal):
        journald.send_all(journald.entries(items, noop, code, error), err)
