"""One run at a time: ``flock`` on the state dir and on ``<state-dir>/lock``.

A real run takes the lock exclusively before it reads anything, so its plan, its writes, the
removal of stale temp files and its restarts cannot interleave with another run's. ``--noop``
takes it shared: any number of dry runs read side by side, but none reads a tree that a real run
is half-way through (it would report a half-applied run as drift). A dry run never creates the
lock file (``--noop`` writes nothing); before the first real run there is nothing to wait for.

``flock`` locks die with their process, so a killed run never leaves a stale lock. The holder's
PID is read from ``/proc/locks`` (exact, also for shared holders) and, failing that, from the PID
the exclusive holder writes into the file. Both locks are taken through the state dir's checked
fd (renderer.system.statedir), never by path.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time
from pathlib import Path

from renderer.errors import LockError

LOCK_NAME = "lock"


def acquire(dirfd: int, state_dir: Path, timeout: float, exclusive: bool) -> int | None:
    """Lock and return the lock file's fd (close it, then unlock ``dirfd``, to unlock); None
    when a dry run finds no lock file (it then holds only the directory's lock).

    The state dir's own fd (``dirfd``, see renderer.system.statedir) is locked first: a
    directory cannot be deleted from under its holder, so a lock file removed while a run holds
    it cannot let a second run start beside the first. Then ``lock`` is opened relative to it
    and locked, and its inode checked against the name after locking; if the file was deleted or
    replaced meanwhile, it is opened again (as a well-behaved pidfile lock does). Releases before
    this one lock only the file, so both are taken.
    """
    path = state_dir / LOCK_NAME
    operation = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    deadline = time.monotonic() + timeout
    _wait(dirfd, operation, deadline, timeout, path)
    try:
        while True:
            fd = _open(dirfd, path, exclusive)
            if fd is None:
                return None
            try:
                _wait(fd, operation, deadline, timeout, path)
                if _same_file(dirfd, fd):
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # deleted or replaced while we waited: lock the one there now
    except BaseException:
        fcntl.flock(dirfd, fcntl.LOCK_UN)
        raise
    if exclusive:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release(dirfd: int, fd: int | None) -> None:
    if fd is not None:
        os.close(fd)
    fcntl.flock(dirfd, fcntl.LOCK_UN)


def _open(dirfd: int, path: Path, exclusive: bool) -> int | None:
    flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        if exclusive:
            fd = os.open(LOCK_NAME, os.O_RDWR | os.O_CREAT | flags, 0o600, dir_fd=dirfd)
        else:
            fd = os.open(LOCK_NAME, os.O_RDONLY | flags, dir_fd=dirfd)
    except FileNotFoundError:
        if exclusive:
            raise LockError("cannot create the lock file", path=path) from None
        return None
    except OSError as exc:
        raise LockError(f"cannot open the lock file: {exc.strerror}", path=path) from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise LockError("the lock file is not a regular file owned by the running user",
                        path=path)
    return fd


def _same_file(dirfd: int, fd: int) -> bool:
    try:
        there = os.stat(LOCK_NAME, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _wait(fd: int, operation: int, deadline: float, timeout: float, path: Path) -> None:
    delay = 0.01
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockError(f"another render run holds the lock ({_holders(fd)}); gave up "
                                f"after {timeout:g} s (--lock-timeout)", path=path) from None
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.2)


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
    if not pids and stat.S_ISREG(st.st_mode):
        written = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        pids.append(f"PID {written}" if written.isdigit() else "PID unknown")
    return ", ".join(dict.fromkeys(pids)) or "PID unknown"
