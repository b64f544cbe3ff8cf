"""Confined path resolution: reach a file inside a root without ever leaving the root.

A container's rootfs is controlled by the container. Its root user can plant any symlink, FIFO or
device node, so a host-side writer that follows ``/var/lib/machines/keystone/etc/keystone -> /etc``
with plain ``open()`` writes onto the host. Here every path is resolved one component at a time
from a directory fd with ``O_NOFOLLOW``, and symlinks are interpreted as the kernel's
``openat2(RESOLVE_IN_ROOT)`` does: an absolute target restarts at the root, ``..`` never climbs
above it. Directories are opened by fd and never re-resolved by name, so a symlink swapped in after
the check cannot redirect the open (``O_NOFOLLOW | O_DIRECTORY`` fails instead).

The final component is not followed unless the service definition says ``follow_symlink: true``;
then it is resolved the same way, still inside the root.
"""

from __future__ import annotations

import bisect
import os
import stat
from pathlib import PurePosixPath

from renderer.errors import ApplyError, MissingDirectoryError, UnsafePathError

MAX_LINKS = 40
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def oserror(exc: OSError, what: str, path: object) -> ApplyError:
    return ApplyError(f"{what}: {exc.strerror or exc}", path=path)


class _Links:
    """Counts symlinks over one whole resolution, like the kernel's ELOOP limit."""

    def __init__(self, display: str) -> None:
        self.count = 0
        self.display = display

    def read(self, dirfd: int, name: str) -> str:
        self.count += 1
        if self.count > MAX_LINKS:
            raise UnsafePathError("too many levels of symbolic links", path=self.display)
        return os.readlink(name, dir_fd=dirfd)


def _walk(root_fd: int, parts: list[str], create: bool, owner: tuple[int, int] | None,
          links: _Links) -> tuple[int, list[str]]:
    """Open directory ``parts`` below ``root_fd``; returns its fd and its canonical parts.

    Missing directories are created (0755, chowned to ``owner`` when given) only with ``create``.
    """
    display = links.display
    stack = [os.dup(root_fd)]
    names: list[str] = []
    pending = list(parts)
    try:
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                    names.pop()
                continue
            try:
                st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    raise MissingDirectoryError(
                        f"directory {'/' + '/'.join([*names, part])!r} does not exist (set "
                        "create_dirs: true in service.yaml to create it)", path=display) from None
                os.mkdir(part, 0o755, dir_fd=stack[-1])
                if owner is not None:
                    os.chown(part, *owner, dir_fd=stack[-1], follow_symlinks=False)
                st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                target = links.read(stack[-1], part)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                    names.clear()
                pending[:0] = target.split("/")
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(f"{part!r} on the way is not a directory", path=display)
            stack.append(os.open(part, DIR_FLAGS, dir_fd=stack[-1]))
            names.append(part)
        return stack.pop(), names
    except OSError as exc:
        raise oserror(exc, "cannot open directory", display) from exc
    finally:
        for fd in stack:
            os.close(fd)


def open_parent(root_fd: int, dest: PurePosixPath, display: str, *, create: bool = False,
                follow: bool = False, owner: tuple[int, int] | None = None) -> tuple[int, str]:
    """A directory fd and the name in it that ``dest`` stands for, resolved inside the root.

    Without ``follow`` the name is ``dest``'s own last component, whatever it is (the caller
    refuses a symlink there). With ``follow``, a symlink in the last place is resolved inside the
    root too, as many times as it takes (within MAX_LINKS), so the caller gets the real file.
    """
    links = _Links(display)
    dirfd, names = _walk(root_fd, list(dest.parent.parts[1:]), create, owner, links)
    name = dest.name
    while follow:
        try:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                break
            target = links.read(dirfd, name)
        except FileNotFoundError:
            break
        except OSError as exc:
            os.close(dirfd)
            raise oserror(exc, "cannot resolve symlink", display) from exc
        except ApplyError:
            os.close(dirfd)
            raise
        parts = [p for p in ([] if target.startswith("/") else names) + target.split("/")
                 if p not in ("", ".")]
        os.close(dirfd)
        if not parts or parts[-1] == "..":
            raise UnsafePathError(f"symlink target {target!r} does not name a file",
                                  path=display)
        dirfd, names = _walk(root_fd, parts[:-1], create, owner, links)
        name = parts[-1]
    return dirfd, name


Listings = dict[tuple[int, int, int, int], list[str]]


def temps(dirfd: int, prefix: str, listings: Listings | None = None) -> list[str]:
    """Names of entries ``prefix*`` that are not directories (temp files a killed run left).

    ``listings`` keeps each directory's sorted names for the run, keyed by its identity and its
    mtime and ctime (any entry added or removed changes them): 1,000 services writing into one
    directory (``/etc/systemd/nspawn``) then list it once, not once per service."""
    st = os.fstat(dirfd)
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    names = None if listings is None else listings.get(key)
    if names is None:
        with os.scandir(dirfd) as entries:
            names = sorted(e.name for e in entries if not e.is_dir(follow_symlinks=False))
        if listings is not None:
            listings[key] = names
    start = end = bisect.bisect_left(names, prefix)
    while end < len(names) and names[end].startswith(prefix):
        end += 1
    return names[start:end]


def remove(dirfd: int, names: list[str]) -> None:
    """Unlink ``names`` in ``dirfd``; ``unlink`` never follows a symlink. Gone already is fine.

    Only called while holding the exclusive run lock, so no other render is writing them.
    """
    for name in names:
        try:
            os.unlink(name, dir_fd=dirfd)
        except FileNotFoundError:
            continue
