"""System: the only code that touches the disk outside the repo or runs a process.

Like chezmoi's ``System``: ``RealSystem`` does the work and ``DryRunSystem`` lets reads through and
records writes and restarts instead of doing them. ``--noop`` and a real run therefore share one
code path and cannot disagree about what would change.

Paths inside a root (a container's rootfs, or ``--host-root``) are resolved one component at a time
with directory file descriptors and ``O_NOFOLLOW``. A symlink is followed only while it stays inside
the root: an absolute target restarts at the root (as the kernel's ``RESOLVE_IN_ROOT`` does) and
``..`` never climbs above it, so ``/var/lib/machines/keystone/etc/keystone -> /etc`` cannot steer a
write onto the host. The destination itself must be a regular file: never a symlink, device or FIFO.

Writes are staged first (temp file in the target's directory, written, owned, fsynced) and renamed
into place only once every file of a service has been staged: a full disk or a permission error
leaves the service exactly as it was.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from renderer.errors import ApplyError, MissingDirectoryError, MissingRootError, UnsafePathError

TEMP_PREFIX = ".render-tmp."
HEALTH_SETTLE = 0.5  # seconds a unit must stay active after its restart to count as healthy
_MAX_LINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Actual:
    """A destination as it is on disk."""

    data: bytes
    uid: int
    gid: int
    mode: int  # permission bits only


@dataclass
class Staged:
    """A temp file written next to its target, waiting for ``commit``."""

    path: str          # display path of the target
    dirfd: int
    name: str
    temp: str | None   # None for a dry run
    data: bytes = field(repr=False)
    note: str = ""


def _oserror(exc: OSError, what: str, path: object) -> ApplyError:
    return ApplyError(f"{what}: {exc.strerror or exc}", path=path)


def _walk(root_fd: int, parts: list[str], create: bool, display: str) -> int:
    """Open the directory ``parts`` below ``root_fd`` without ever leaving the root."""
    stack = [os.dup(root_fd)]
    pending = list(parts)
    links = 0
    try:
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            try:
                st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    raise MissingDirectoryError(
                        f"directory {part!r} does not exist (set create_dirs: true in "
                        "service.yaml to create it)", path=display) from None
                os.mkdir(part, 0o755, dir_fd=stack[-1])
                st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAX_LINKS:
                    raise UnsafePathError("too many levels of symbolic links", path=display)
                target = os.readlink(part, dir_fd=stack[-1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                pending[:0] = target.split("/")
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(f"{part!r} on the way is not a directory", path=display)
            stack.append(os.open(part, _DIR_FLAGS, dir_fd=stack[-1]))
        return stack.pop()
    except OSError as exc:
        raise _oserror(exc, "cannot open directory", display) from exc
    finally:
        for fd in stack:
            os.close(fd)


class RealSystem:
    """Does the work. Every method either succeeds or raises an ApplyError naming the path."""

    writes = True

    def __init__(self, systemctl: list[str], state_dir: Path) -> None:
        self.systemctl_cmd = systemctl
        self.state_dir = state_dir
        self._ids: dict[tuple[str, str], dict[str, int]] = {}

    # --- reading ------------------------------------------------------------------------------

    def _open_root(self, root: Path) -> int:
        try:
            return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise MissingRootError("root directory does not exist", path=root) from None
        except OSError as exc:
            raise _oserror(exc, "cannot open root", root) from exc

    def open_parent(self, root: Path, dest: PurePosixPath, create: bool = False) -> int:
        """A directory fd for ``dest``'s parent, resolved inside ``root``."""
        root_fd = self._open_root(root)
        try:
            return _walk(root_fd, list(dest.parent.parts[1:]), create, f"{root}{dest}")
        finally:
            os.close(root_fd)

    def read_file(self, root: Path, dest: PurePosixPath) -> Actual | None:
        """The destination's bytes and metadata; None when it does not exist yet.

        Raises MissingDirectoryError when its directory is missing, so the plan can decide
        (create it, or fail the service before anything is written).
        """
        display = f"{root}{dest}"
        dirfd = self.open_parent(root, dest)
        try:
            return self._read_at(dirfd, dest.name, display)
        finally:
            os.close(dirfd)

    def _read_at(self, dirfd: int, name: str, display: str) -> Actual | None:
        try:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _oserror(exc, "cannot stat", display) from exc
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError("destination is a symlink; refusing to write through it",
                                  path=display)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError("destination is not a regular file", path=display)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=dirfd)
        except OSError as exc:
            raise _oserror(exc, "cannot read", display) from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafePathError("destination is not a regular file", path=display)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return Actual(b"".join(chunks), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
        finally:
            os.close(fd)

    def ids(self, root: Path, kind: str) -> dict[str, int]:
        """Name → id from the root's own ``etc/passwd`` (kind ``passwd``) or ``etc/group``.

        Container uids differ from the host's, so a container file's owner is resolved in the
        container's terms (as kolla and TripleO do).
        """
        key = (str(root), kind)
        if key not in self._ids:
            try:
                actual = self.read_file(root, PurePosixPath("/etc") / kind)
            except MissingDirectoryError:
                actual = None
            table: dict[str, int] = {}
            for line in (actual.data.decode("utf-8", "replace") if actual else "").splitlines():
                fields = line.split(":")
                if len(fields) >= 3 and fields[2].isdigit():
                    table.setdefault(fields[0], int(fields[2]))
            self._ids[key] = table
        return self._ids[key]

    # --- writing ------------------------------------------------------------------------------

    def stage(self, root: Path, dest: PurePosixPath, data: bytes, uid: int, gid: int,
              mode: int, create_dirs: bool = False) -> Staged:
        display = f"{root}{dest}"
        dirfd = self.open_parent(root, dest, create=create_dirs)
        temp = f"{TEMP_PREFIX}{dest.name}.{os.urandom(4).hex()}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=dirfd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)  # after chown, which clears set-id bits
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self._unlink_quietly(dirfd, temp)
            os.close(dirfd)
            raise _oserror(exc, "cannot write", display) from exc
        return Staged(display, dirfd, dest.name, temp, data)

    def commit(self, staged: Staged) -> None:
        """Rename the temp file over the target and make the rename durable."""
        assert staged.temp is not None
        try:
            try:
                os.rename(staged.temp, staged.name, src_dir_fd=staged.dirfd,
                          dst_dir_fd=staged.dirfd)
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                self._rewrite_in_place(staged)
            os.fsync(staged.dirfd)
        except OSError as exc:
            self._unlink_quietly(staged.dirfd, staged.temp)
            raise _oserror(exc, "cannot replace", staged.path) from exc
        finally:
            os.close(staged.dirfd)

    def _rewrite_in_place(self, staged: Staged) -> None:
        """A bind-mounted target cannot be renamed over (EBUSY): rewrite it and say so."""
        fd = os.open(staged.name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=staged.dirfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UnsafePathError("bind-mounted destination is not a regular file",
                                      path=staged.path)
            os.ftruncate(fd, 0)
            os.write(fd, staged.data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._unlink_quietly(staged.dirfd, staged.temp)
        staged.note = "bind mount: rewritten in place, not atomically"

    def discard(self, staged: Staged) -> None:
        if staged.temp:
            self._unlink_quietly(staged.dirfd, staged.temp)
        os.close(staged.dirfd)

    @staticmethod
    def _unlink_quietly(dirfd: int, name: str | None) -> None:
        if name:
            try:
                os.unlink(name, dir_fd=dirfd)
            except OSError:
                pass

    # --- systemd and state ----------------------------------------------------------------------

    def systemctl(self, args: list[str], timeout: float = 120) -> tuple[int, str]:
        """Run ``<--systemctl> args``; returns the exit status and the last line of output."""
        import subprocess  # only runs that restart something pay for it

        command = [*self.systemctl_cmd, *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 1, f"{' '.join(command)}: {exc}"
        output = (done.stderr.strip() or done.stdout.strip()).splitlines()
        return done.returncode, output[-1] if output else ""

    def read_state(self, name: str) -> bytes | None:
        try:
            return (self.state_dir / name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _oserror(exc, "cannot read state", self.state_dir / name) from exc

    def write_state(self, name: str, data: bytes, mode: int = 0o600) -> None:
        """Atomically replace a file in the state dir (it and its subdirs created 0700)."""
        parent = (self.state_dir / name).parent
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise _oserror(exc, "cannot create state dir", parent) from exc
        self.commit(self.stage(self.state_dir, PurePosixPath("/") / name, data, os.getuid(),
                               os.getgid(), mode))

    def remove_state(self, name: str) -> None:
        try:
            (self.state_dir / name).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _oserror(exc, "cannot remove state", self.state_dir / name) from exc

    def remove_file(self, root: Path, dest: PurePosixPath) -> None:
        """Remove a regular file render created (rolling back); never a link or a directory."""
        display = f"{root}{dest}"
        dirfd = self.open_parent(root, dest)
        try:
            if self._read_at(dirfd, dest.name, display) is not None:
                os.unlink(dest.name, dir_fd=dirfd)
                os.fsync(dirfd)
        except OSError as exc:
            raise _oserror(exc, "cannot remove", display) from exc
        finally:
            os.close(dirfd)

    def unit_state(self, prefix: list[str], unit: str) -> str:
        """The unit's ActiveState (``active``, ``failed``, ...); ``unknown`` if systemd cannot say
        (for a unit inside a container that is not running, for example)."""
        status, output = self.systemctl([*prefix, "show", "-p", "ActiveState", "--value", unit],
                                        timeout=30)
        return output.strip() if status == 0 and output.strip() else "unknown"

    def wait_active(self, prefix: list[str], unit: str, timeout: float) -> str:
        """Poll until the unit is ``active`` (and still is a moment later) or gives up.

        ``activating``, ``reloading`` and ``deactivating`` mean wait; ``failed`` and
        ``inactive`` end the wait at once. A unit that dies right after its start job finished
        is caught by the second look after HEALTH_SETTLE seconds.
        """
        import time

        deadline = time.monotonic() + timeout
        confirmed = False
        while True:
            state = self.unit_state(prefix, unit)
            if state in ("failed", "inactive", "unknown"):
                return state
            now = time.monotonic()
            if state == "active":
                if confirmed or now >= deadline:
                    return state
                confirmed = True
                time.sleep(min(HEALTH_SETTLE, max(deadline - now, 0)))
                continue
            confirmed = False
            if now >= deadline:
                return state
            time.sleep(min(0.2, deadline - now))

    def private_dir(self, name: str) -> Path | None:
        """A directory in the state dir that only we can write, or None (then go without).

        Caches in it hold code that will be executed (compiled templates), so a directory that
        someone else owns or can write to is never used.
        """
        directory = self.state_dir / name
        if self.writes:
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError:
                return None
        try:
            st = directory.stat()
        except OSError:
            return None
        return directory if st.st_uid == os.geteuid() and not st.st_mode & 0o022 else None


class DryRunSystem(RealSystem):
    """``--noop``: reads pass through, writes and restarts are only recorded."""

    writes = False

    def __init__(self, systemctl: list[str], state_dir: Path) -> None:
        super().__init__(systemctl, state_dir)
        self.recorded: list[str] = []

    def stage(self, root: Path, dest: PurePosixPath, data: bytes, uid: int, gid: int,
              mode: int, create_dirs: bool = False) -> Staged:
        self.recorded.append(f"write {root}{dest}")
        return Staged(f"{root}{dest}", -1, dest.name, None, data)

    def commit(self, staged: Staged) -> None:
        pass

    def discard(self, staged: Staged) -> None:
        pass

    def systemctl(self, args: list[str], timeout: float = 120) -> tuple[int, str]:
        self.recorded.append(f"systemctl {' '.join(args)}")
        return 0, ""

    def write_state(self, name: str, data: bytes, mode: int = 0o600) -> None:
        self.recorded.append(f"state {name}")

    def remove_state(self, name: str) -> None:
        self.recorded.append(f"remove state {name}")

    def remove_file(self, root: Path, dest: PurePosixPath) -> None:
        self.recorded.append(f"remove {root}{dest}")

    def unit_state(self, prefix: list[str], unit: str) -> str:
        """Not asked: a dry run assumes the unit runs, so it reports the restart it would do."""
        return "active"

    def wait_active(self, prefix: list[str], unit: str, timeout: float) -> str:
        return "active"
