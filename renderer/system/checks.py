"""Checks: whether a destination can be written, shared by observing and by writing.

``renderer.observe`` makes them while it reads the actual state, in both modes, so ``--noop``
fails where a real run would; ``RealSystem.stage`` makes them again at write time, because a
container may change its rootfs in between.
"""

from __future__ import annotations

import os
import stat

from renderer.bounds import MAX_FILE, MAX_ID, parse_id, size_text
from renderer.errors import ApplyError, UnsafePathError
from renderer.system import OVERFLOW_ID, UID_RANGE, Actual


def shift(value: int, base: int, what: str, display: str) -> int:
    """A root's id as the host stores it; ids beyond a private-users range cannot exist.

    Called while observing (both modes) and again while staging. An id the kernel cannot hold
    (2**40 in data) is refused here, before ``fchown`` would raise OverflowError."""
    if not 0 <= value < MAX_ID:
        raise ApplyError(f"{what} {value} is not a valid id (0-{MAX_ID - 1})", path=display)
    if base and not 0 <= value < UID_RANGE:
        raise ApplyError(f"{what} {value} is outside the container's private range "
                         f"(0-{UID_RANGE - 1})", path=display)
    return base + value


def refuse_special(st: os.stat_result, dirfd: int, name: str, display: str) -> None:
    """A destination must be a regular file: name the symlink's target, or what it is."""
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"destination is a symlink to {os.readlink(name, dir_fd=dirfd)!r};"
                              " refusing to write through it (follow_symlink: true in "
                              "service.yaml follows it inside the root)", path=display)
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device node"
                if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket"
                if stat.S_ISSOCK(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode)
                else "not a regular file")
        raise UnsafePathError(f"destination is {kind}, not a regular file; refusing to write "
                              "to it", path=display)


def unshift(value: int, base: int) -> int:
    return value - base if base <= value < base + UID_RANGE else OVERFLOW_ID


def parse_ids(actual: Actual | None, display: str) -> dict[str, int]:
    """Name -> id of a passwd or group file. A line whose id is not ASCII digits below MAX_ID
    is ignored (as glibc skips a malformed line); a file over MAX_FILE fails the lookup: a
    table read in part could resolve a name to the wrong id."""
    if actual is None:
        return {}
    if actual.oversize:
        raise ApplyError(f"is {size_text(actual.oversize)}, over the {size_text(MAX_FILE)} "
                         "limit: owners cannot be resolved in it", path=display)
    table: dict[str, int] = {}
    for line in actual.data.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and (value := parse_id(fields[2])) is not None:
            table.setdefault(fields[0], value)
    return table
