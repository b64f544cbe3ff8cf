"""One run at a time: ``flock`` on ``<state-dir>/lock``.

A real run takes the lock exclusively before it reads anything, so its plan, its writes, the
removal of stale temp files and its restarts cannot interleave with another run's. ``--noop``
takes it shared: any number of dry runs read side by side, but none reads a tree that a real run
is half-way through (it would report a half-applied run as drift). A dry run never creates the
lock file (``--noop`` writes nothing); before the first real run there is nothing to wait for.

``flock`` locks die with their process, so a killed run never leaves a stale lock. The holder's
PID is read from ``/proc/locks`` (exact, also for shared holders) and, failing that, from the PID
the exclusive holder writes into the file.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from renderer.errors import LockError

LOCK_NAME = "lock"


def acquire(state_dir: Path, timeout: float, exclusive: bool) -> int | None:
    """Lock and return the fd (close it to unlock); None when a dry run finds no lock file."""
    path = state_dir / LOCK_NAME
    try:
        if exclusive:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        else:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        if exclusive:
            raise LockError("cannot create the lock file", path=path) from None
        return None
    except OSError as exc:
        raise LockError(f"cannot open the lock file: {exc.strerror}", path=path) from exc
    operation = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            fcntl.flock(fd, operation)
            break
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                holders = _holders(fd)
                os.close(fd)
                raise LockError(f"another render run holds the lock ({holders}); gave up "
                                f"after {timeout:g} s (--lock-timeout)", path=path) from None
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.2)
    if exclusive:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _holders(fd: int) -> str:
    """PIDs holding a flock on ``fd``'s file, from /proc/locks; else the PID in the file."""
    st = os.fstat(fd)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = []
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            for line in locks:
                fields = line.split()
                # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5481922 0 EOF"; waiters have "->"
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode:
                    pids.append(f"PID {fields[4]}" + ("" if fields[3] == "WRITE" else " (--noop)"))
    except OSError:
        pass
    if not pids:
        written = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        pids.append(f"PID {written}" if written.isdigit() else "PID unknown")
    return ", ".join(dict.fromkeys(pids))
