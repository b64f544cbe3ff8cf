"""journald: one structured entry per service outcome, over journald's native protocol.

Sent when ``--journal always``, or ``auto`` (the default) when stderr is the journal:
``$JOURNAL_STREAM`` names the device and inode of the stream systemd connected, and it must be
stderr's own (a child whose stderr was redirected inherits the variable, not the journal). A
cron or terminal run stays as it was. The text report still goes to stdout; these entries add
fields a reader can select on: ``journalctl SYSLOG_IDENTIFIER=render RENDER_SERVICE=keystone``.

The protocol (systemd's ``sd_journal_sendv``): one datagram per entry to
``/run/systemd/journal/socket``, ``KEY=value`` lines, a value holding a newline sent as ``KEY``,
newline, its 64-bit little-endian length, the bytes; an entry too large for a datagram goes in
a sealed memfd whose descriptor is the datagram. ``RENDER_JOURNAL_SOCKET`` moves the socket, for
tests only (a journald in a private namespace): never for a real deployment.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from renderer.status import Status

SOCKET = "/run/systemd/journal/socket"
PRIORITY_ERR, PRIORITY_NOTICE, PRIORITY_INFO = 3, 5, 6


def wanted(mode: str, environ: dict[str, str] | None = None) -> bool:
    if mode != "auto":
        return mode == "always"
    stream = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = stream.partition(":")
    try:
        stat = os.fstat(2)
        return (int(device), int(inode)) == (stat.st_dev, stat.st_ino)
    except (ValueError, OSError):
        return False


def summary(s: Status, noop: bool) -> str:
    """The MESSAGE: masked, one line, what a ``journalctl -t render`` reader needs."""
    if s.last_error is not None:
        more = f" (and {s.errors - 1} more error(s))" if s.errors > 1 else ""
        return f"{s.last_error}{more}"
    where = f" on {s.machine}" if s.machine else ""
    if s.in_sync and not s.exit_code:
        return f"render: {s.service}{where}: in sync"
    if noop:
        return (f"render: {s.service}{where}: drifted: {s.files_pending} file(s) to change, "
                f"{s.restarts_owed} restart(s) pending (noop)")
    owed = f", {s.restarts_owed} restart(s) owed" if s.restarts_owed else ""
    return (f"render: {s.service}{where}: {s.changed} file(s) changed, {s.restarted} "
            f"restart(s){owed}")


def priority(s: Status) -> int:
    if s.errors:
        return PRIORITY_ERR
    return PRIORITY_INFO if s.in_sync and not s.exit_code else PRIORITY_NOTICE


def entries(items: list[Status], noop: bool, code: int,
            error: str | None = None) -> list[dict[str, str]]:
    common = {"SYSLOG_IDENTIFIER": "render", "RENDER_NOOP": str(int(noop))}
    out = [{"MESSAGE": summary(s, noop), "PRIORITY": str(priority(s)),
            "RENDER_SERVICE": s.service, "RENDER_MACHINE": s.machine or "",
            "RENDER_EXIT": str(s.exit_code), "RENDER_FILES_PENDING": str(s.files_pending),
            "RENDER_RESTARTS_OWED": str(s.restarts_owed), "RENDER_ERRORS": str(s.errors),
            **common} for s in items]
    if error is not None:  # the run failed before any service: the lock, --facts
        out.append({"MESSAGE": error, "PRIORITY": str(PRIORITY_ERR), "RENDER_EXIT": str(code),
                    **common})
    return out


def encode(fields: dict[str, str]) -> bytes:
    parts = []
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            parts.append(key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            parts.append(key.encode() + b"=" + data + b"\n")
    return b"".join(parts)


def _send_memfd(sock: socket.socket, payload: bytes, path: str) -> None:
    """journald's way for an entry larger than a datagram: a sealed memfd passed as the only
    content of the datagram."""
    import fcntl

    fd = os.memfd_create("render-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
                    | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL)
        sock.sendmsg([], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))], 0, path)
    finally:
        os.close(fd)


def send_all(items: list[dict[str, str]], err: TextIO) -> None:
    """Every entry; the first failure is one warning line and ends the sending (the exit code
    stays the run's)."""
    path = os.environ.get("RENDER_JOURNAL_SOCKET") or SOCKET
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            for fields in items:
                payload = encode(fields)
                try:
                    sock.sendto(payload, path)
                except OSError as exc:
                    if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                        raise
                    _send_memfd(sock, payload, path)
    except OSError as exc:
        from renderer.names import printable

        print(printable(f"render: warning: journal {path}: not sent: "
                        f"{exc.strerror or exc}"), file=err)
