"""StateDir: render's state dir, checked as sshd's StrictModes checks a home, used through one fd.

render runs as root and its state dir holds code it executes (compiled templates), the masking
key and kept versions of config files. So before a run reads anything there:

- **Strict modes.** The state dir and every directory above it, up to ``/``, must be owned by
  the running user or root and writable by nobody else. One exception, decided on purpose: a
  root-owned sticky directory (``/tmp``) may be world-writable, but then everything below it
  must be owned by the running user itself (in a sticky dir anyone can create an entry, and
  only the owner of an entry can rename or remove it). Anything else refuses the run with one
  line (exit 4). A symlink on the way is followed only when it sits in a checked directory
  and is owned by us (or root, outside a sticky dir). A state dir that does not exist is fine
  for ``--noop`` (nothing to read); a real run creates it 0700.
- **One descriptor.** The walk opens each component with ``O_DIRECTORY|O_NOFOLLOW`` from the
  fd of the checked parent, so swapping a component after it was checked cannot redirect the
  run; the state dir's fd is kept, and every state file is read, written, renamed and removed
  relative to it (subdirectories opened and checked the same way). A state file must be a
  regular file (``O_NOFOLLOW|O_NONBLOCK``: a symlink or FIFO is refused, never followed or
  waited on), owned by the running user, private (no group/other bits: they hold secrets), and
  below a size bound checked with ``fstat`` before reading.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from renderer import confine
from renderer.errors import ApplyError

TEMP_PREFIX = ".render-tmp."  # temp files of atomic writes, here and next to every target
MAX_STATE_FILE = 64 << 20  # bytes; a state file larger than this is refused before reading
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class StateDirError(ApplyError):
    """The state dir, one of its parents or a state file cannot be trusted: render refuses."""


def _fail(exc: OSError, what: str, path: object) -> ApplyError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return StateDirError(f"{what}: is a symlink or not a directory", path=path)
    return confine.oserror(exc, what, path)


def _check_dir(st: os.stat_result, path: object, *, last: bool, below_sticky: bool) -> None:
    uid = os.geteuid()
    owners = (uid,) if below_sticky else (uid, 0)
    if st.st_uid not in owners:
        whose = "the running user" if below_sticky else "the running user or root"
        raise StateDirError(f"state dir{'' if last else ' parent'} is owned by uid "
                            f"{st.st_uid}, not {whose}; refusing to run (strict modes)",
                            path=path)
    if st.st_mode & 0o022 and (last or not _sticky_root(st)):
        raise StateDirError(f"state dir{'' if last else ' parent'} is writable by group or "
                            f"others (mode {stat.S_IMODE(st.st_mode):04o}); refusing to run "
                            "(strict modes)", path=path)


def _sticky_root(st: os.stat_result) -> bool:
    return bool(st.st_mode & stat.S_ISVTX) and st.st_uid == 0


def open_checked(path: Path, create: bool) -> int | None:
    """The state dir's fd after the strict-modes walk; None if it is missing and not ``create``.

    Walked from ``/`` one component at a time. A symlink on the way is read from a directory
    that was checked already and followed (at most 40, as the kernel does), so every directory
    that decides where the walk goes is checked, and none is reopened by path after its check.
    """
    pending = list(reversed(Path(os.path.abspath(path)).parts[1:]))
    trail: list[tuple[int, Path, bool]] = []  # (fd, shown, below a sticky dir) from / down
    links = 0
    try:
        trail.append((os.open("/", _DIR), Path("/"), False))
        _check_dir(os.fstat(trail[0][0]), "/", last=not pending, below_sticky=False)
        while pending:
            part = pending.pop()
            fd, shown, below_sticky = trail[-1]
            if part in ("", "."):
                continue
            if part == "..":
                if len(trail) > 1:
                    os.close(trail.pop()[0])
                continue
            below_sticky = below_sticky or _sticky_root(os.fstat(fd))
            try:
                target = os.readlink(part, dir_fd=fd)
            except OSError:
                target = None  # not a symlink (or missing): opened below, without following
            if target is not None:
                owner = os.stat(part, dir_fd=fd, follow_symlinks=False).st_uid
                if owner not in ((os.geteuid(),) if below_sticky else (os.geteuid(), 0)):
                    raise StateDirError(f"symlink on the way to the state dir is owned by uid "
                                        f"{owner}; refusing to follow it (strict modes)",
                                        path=shown / part)
                links += 1
                if links > 40:
                    raise StateDirError("too many symlinks on the way to the state dir",
                                        path=path)
                pending.extend(reversed(target.split("/")))
                if target.startswith("/"):
                    while len(trail) > 1:
                        os.close(trail.pop()[0])
                continue
            child = _open_dir(fd, part, shown / part, create)
            if child is None:
                return None
            trail.append((child, shown / part, below_sticky))
            _check_dir(os.fstat(child), shown / part,
                       last=not any(p not in ("", ".") for p in pending),
                       below_sticky=below_sticky)
        top, shown, below_sticky = trail.pop()
        try:  # again as the state dir itself: the walk may have ended on a ``..``
            _check_dir(os.fstat(top), shown, last=True, below_sticky=below_sticky)
        except BaseException:
            os.close(top)
            raise
    finally:
        for fd, _, _ in trail:
            os.close(fd)
    return top


def _open_dir(parent: int, name: str, shown: object, create: bool) -> int | None:
    """``name`` in ``parent`` as a directory fd, never through a symlink; made 0700 if missing."""
    try:
        return os.open(name, _DIR, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            return None
    except OSError as exc:
        raise _fail(exc, "cannot open state dir", shown) from exc
    try:
        os.mkdir(name, 0o700, dir_fd=parent)
    except FileExistsError:
        pass
    except OSError as exc:
        raise confine.oserror(exc, "cannot create state dir", shown) from exc
    try:
        return os.open(name, _DIR, dir_fd=parent)
    except OSError as exc:
        raise _fail(exc, "cannot open state dir", shown) from exc


def _parts(name: str, where: object) -> list[str]:
    parts = name.split("/")
    if any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise StateDirError(f"state file name {name!r} is not a plain relative path", path=where)
    return parts


class Directory:
    """An open, checked directory of the state dir (the top, ``services/``, ``cache/jinja``)."""

    __slots__ = ("fd", "path")

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    def __repr__(self) -> str:
        return f"Directory({str(self.path)!r})"

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()

    def subdir(self, names: list[str], create: bool) -> Directory | None:
        """A checked subdirectory (each level a dir owned by us, writable by nobody else)."""
        fd, path = self.fd, self.path
        try:
            for name in names:
                path = path / name
                child = _open_dir(fd, name, path, create)
                if fd != self.fd:
                    os.close(fd)
                if child is None:
                    return None
                fd = child
                st = os.fstat(fd)
                if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                    raise StateDirError(f"state subdirectory is owned by uid {st.st_uid} or "
                                        f"writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
                                        "; refusing to use it", path=path)
        except BaseException:
            if fd != self.fd:
                os.close(fd)
            raise
        return Directory(fd, path) if fd != self.fd else Directory(os.dup(fd), path)

    def read(self, name: str, limit: int = MAX_STATE_FILE) -> bytes | None:
        """A regular, private file of ours in this directory, or None when there is none."""
        path = self.path / name
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
                         | os.O_CLOEXEC, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StateDirError("state file is a symlink; refusing to read it",
                                    path=path) from None
            raise confine.oserror(exc, "cannot read state", path) from exc
        try:
            st = os.fstat(fd)
            check_file(st, path)
            if st.st_size > limit:
                raise StateDirError(f"state file is {st.st_size} bytes, more than the "
                                    f"{limit} allowed; refusing to read it", path=path)
            chunks, size = [], 0
            while size <= limit and (chunk := os.read(fd, 1 << 20)):
                chunks.append(chunk)
                size += len(chunk)
            if size > limit:
                raise StateDirError("state file grew while being read", path=path)
            return b"".join(chunks)
        except OSError as exc:
            raise confine.oserror(exc, "cannot read state", path) from exc
        finally:
            os.close(fd)

    def write(self, name: str, data: bytes, mode: int = 0o600, durable: bool = True) -> None:
        """Atomically replace ``name``: a temp file here, written, fsynced, renamed over it.
        A cache entry is not ``durable``: one a crash leaves empty fails its MAC and is made
        again, so it costs no fsync (a first run would make thousands)."""
        path = self.path / name
        temp = f"{TEMP_PREFIX}{name}.{os.urandom(4).hex()}"
        try:
            try:
                st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    raise StateDirError("state file is a directory; refusing to replace it",
                                        path=path)
            except FileNotFoundError:
                pass
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=self.fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fchmod(fd, mode)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            if durable:
                os.fsync(self.fd)
        except OSError as exc:
            self._unlink_quietly(temp)
            raise confine.oserror(exc, "cannot write state", path) from exc
        except ApplyError:
            self._unlink_quietly(temp)
            raise

    def remove(self, name: str) -> None:
        """Remove a state file of ours; gone already is fine; anything else is refused."""
        path = self.path / name
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise confine.oserror(exc, "cannot remove state", path) from exc
        check_file(st, path)
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise confine.oserror(exc, "cannot remove state", path) from exc

    def remove_temps(self) -> list[str]:
        """Remove the temp files a killed write left here; their paths."""
        try:
            names = confine.temps(self.fd, TEMP_PREFIX)
            confine.remove(self.fd, names)
        except OSError as exc:
            raise confine.oserror(exc, "cannot remove stale temp files in", self.path) from exc
        return [str(self.path / name) for name in names]

    def _unlink_quietly(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.fd)
        except OSError:
            pass


def check_file(st: os.stat_result, path: object) -> None:
    """A state file must be a regular file, ours, and private."""
    if not stat.S_ISREG(st.st_mode):
        raise StateDirError("state file is not a regular file; refusing to use it", path=path)
    if st.st_uid != os.geteuid():
        raise StateDirError(f"state file is owned by uid {st.st_uid}, not the running user; "
                            "refusing to use it", path=path)
    if st.st_mode & 0o077:
        raise StateDirError(f"state file is readable or writable by group or others (mode "
                            f"{stat.S_IMODE(st.st_mode):04o}); refusing to use it", path=path)


class StateDir:
    """The state dir of one RealSystem: checked and opened on first use, then used by fd."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._top: Directory | None = None

    def top(self, create: bool) -> Directory | None:
        """The state dir itself (None: it does not exist and ``create`` is false)."""
        if self._top is None:
            fd = open_checked(self.path, create)
            if fd is None:
                return None
            self._top = Directory(fd, self.path)
        return self._top

    def _locate(self, name: str, create: bool) -> tuple[Directory, str] | None:
        *dirs, base = _parts(name, self.path / name)
        top = self.top(create)
        if top is None:
            return None
        directory = top.subdir(dirs, create) if dirs else top
        return None if directory is None else (directory, base)

    def read(self, name: str) -> bytes | None:
        found = self._locate(name, create=False)
        return None if found is None else found[0].read(found[1])

    def write(self, name: str, data: bytes, mode: int = 0o600) -> None:
        found = self._locate(name, create=True)
        assert found is not None
        found[0].write(found[1], data, mode)

    def remove(self, name: str) -> None:
        found = self._locate(name, create=False)
        if found is not None:
            found[0].remove(found[1])

    def cache(self, name: str, create: bool) -> Directory | None:
        """A checked cache directory, opened once: its fd is what the cache reads and writes."""
        top = self.top(create)
        return None if top is None else top.subdir(_parts(name, self.path / name), create)

    def remove_temps(self) -> list[str]:
        """Temp files of state writes a killed run left (the top, ``services/``,
        ``versions/*/``); only ever called under the exclusive lock."""
        top = self.top(create=False)
        if top is None:
            return []
        removed = top.remove_temps()
        for sub in (["services"], ["versions"]):
            directory = top.subdir(sub, create=False)
            if directory is None:
                continue
            removed.extend(directory.remove_temps())
            if sub == ["versions"]:
                with os.scandir(directory.fd) as entries:
                    names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
                for name in names:
                    kept = directory.subdir([name], create=False)
                    if kept is not None:
                        removed.extend(kept.remove_temps())
        return removed
