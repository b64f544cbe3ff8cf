"""Symlink destinations (``link:`` entries): read, made and replaced without ever following one.

A unit is enabled at boot by a symlink in the container's rootfs
(``multi-user.target.wants/x.service -> /lib/systemd/system/x.service``). Its directory is
reached as every destination's is (renderer.confine, inside the root); the link itself is only
``lstat``-ed and ``readlink``-ed, never opened, so a link the container planted pointing at the
host's files is read as text and replaced, not written through. A new link is made under a temp
name, owned with ``lchown``, and renamed over the old one (``RealSystem.commit``): the switch is
atomic. Anything but a symlink in that place (a regular file, a directory) is refused.
"""

from __future__ import annotations

import os
import stat

from renderer.errors import UnsafePathError
from renderer.system import Actual

LINK_MODE = 0o777  # what lstat reports for every symlink on Linux


def read_at(dirfd: int, name: str, display: str) -> Actual | None:
    """The link's target (as bytes) and owner, or None; refuses anything but a symlink."""
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    refuse_other(st, display)
    target = os.readlink(name, dir_fd=dirfd)
    return Actual(os.fsencode(target), st.st_uid, st.st_gid, LINK_MODE)


def refuse_other(st: os.stat_result, display: str) -> None:
    if not stat.S_ISLNK(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a regular file" \
            if stat.S_ISREG(st.st_mode) else "not a symlink"
        raise UnsafePathError(f"destination is {kind}, not a symlink; a link entry replaces "
                              "only a symlink", path=display)


def check_target(dirfd: int, name: str, display: str) -> None:
    """At write time too: the place holds a symlink or nothing."""
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    refuse_other(st, display)


def make(dirfd: int, temp: str, target: bytes, uid: int, gid: int) -> None:
    """The new link under its temp name, owned (host ids) without following it."""
    os.symlink(os.fsdecode(target), temp, dir_fd=dirfd)
    os.chown(temp, uid, gid, dir_fd=dirfd, follow_symlinks=False)
