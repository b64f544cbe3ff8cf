"""RealSystem: the implementation of ``renderer.system.System`` that does the work.

Paths inside a root (a container's rootfs, or ``--host-root``) are resolved by ``renderer.confine``
one component at a time with directory file descriptors and ``O_NOFOLLOW``. A symlink is followed
only while it stays inside the root: an absolute target restarts at the root (as the kernel's
``RESOLVE_IN_ROOT`` does) and ``..`` never climbs above it, so
``/var/lib/machines/keystone/etc/keystone -> /etc`` cannot steer a write onto the host. The
destination itself must be a regular file: never a device or FIFO, and a symlink only with
``follow_symlink: true`` (then resolved inside the root as well).

Writes are staged first (temp file in the target's directory, written, owned, fsynced) and renamed
into place only once every file of a service has been staged: a full disk or a permission error
leaves the service exactly as it was. Temp files are named ``.render-tmp.<name>.<hex>``; the
runner asks for the ones a killed run left (``stale_temps``) and removes them under the exclusive
lock (``remove_temps``), as an explicit step: reading never removes anything.

Owners are given in the root's own terms. For a container with private users (its rootfs owned by
a shifted id base, as ``systemd-nspawn --private-users`` sets it up) ids are shifted on write and
unshifted on read, so the plan and the report never see host-side ids.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from renderer import confine, manifest
from renderer.bounds import MAX_FILE, read_bounded
from renderer.confine import oserror as _oserror
from renderer.errors import ApplyError, MissingDirectoryError, MissingRootError, UnsafePathError
from renderer.lock import acquire, release
from renderer.system import TEMP_PREFIX, UID_RANGE, Actual, Staged, links, outside
from renderer.system.checks import parse_ids, refuse_special, shift, unshift
from renderer.system.statedir import Directory, StateDir

BIND_MOUNT_NOTE = "bind mount: rewritten in place, not atomically"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class RealSystem:
    """Does the work. Every method either succeeds or raises an ApplyError naming the path."""

    def __init__(self, systemctl: list[str], state_dir: Path) -> None:
        self.systemctl_cmd = systemctl
        self.state_dir = state_dir
        self.state = StateDir(state_dir)  # checked (strict modes) and opened on first use
        self._ids: dict[tuple[str, str], dict[str, int]] = {}
        self._bases: dict[str, int] = {}
        self._listings: confine.Listings = {}
        self._lock: tuple[int, int | None] | None = None

    # --- the run lock ---------------------------------------------------------------------------

    def lock(self, timeout: float, exclusive: bool) -> None:
        """Check the state dir (strict modes), then hold its lock until ``unlock``
        (renderer.lock). A dry run without a state dir has nothing to lock."""
        top = self.state.top(create=exclusive)
        if top is not None:
            self._lock = (top.fd, acquire(top.fd, self.state_dir, timeout, exclusive=exclusive))

    def unlock(self) -> None:
        if self._lock is not None:
            release(*self._lock)
            self._lock = None

    # --- reading ------------------------------------------------------------------------------

    def _open_root(self, root: Path) -> int:
        try:
            return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise MissingRootError("root directory does not exist", path=root) from None
        except OSError as exc:
            raise _oserror(exc, "cannot open root", root) from exc

    def uid_base(self, root: Path) -> int:
        """The uid/gid shift of a root, as systemd-nspawn derives it for ``--private-users``.

        nspawn takes the owner of the rootfs directory, masked to a multiple of 65536, as the
        base of the container's 65536 ids. A root owned by 0 (the host root, containers without
        private users) has base 0: nothing is shifted.
        """
        key = str(root)
        if key not in self._bases:
            try:
                st = os.stat(root)
            except FileNotFoundError:
                raise MissingRootError("root directory does not exist", path=root) from None
            except OSError as exc:
                raise _oserror(exc, "cannot stat root", root) from exc
            base = st.st_uid & ~(UID_RANGE - 1)
            if base != st.st_gid & ~(UID_RANGE - 1):
                raise ApplyError(f"UID base {base} and GID base {st.st_gid & ~(UID_RANGE - 1)} "
                                 "of the rootfs do not match (private users)", path=root)
            self._bases[key] = base
        return self._bases[key]

    def open_parent(self, root: Path, dest: PurePosixPath, create: bool = False,
                    follow: bool = False) -> tuple[int, str]:
        """A directory fd and a name in it for ``dest``, resolved inside ``root``."""
        display = f"{root}{dest}"
        manifest.note_chain(root, str(dest), follow)  # the file, its directories, the root
        root_fd = self._open_root(root)
        try:
            base = self.uid_base(root)
            dirfd, name = confine.open_parent(root_fd, dest, display, create=create,
                                              follow=follow, owner=(base, base) if base else None)
        finally:
            os.close(root_fd)
        return dirfd, name

    def stale_temps(self, root: Path, dest: PurePosixPath, follow: bool = False) -> list[str]:
        """Temp files of ``dest`` (``.render-tmp.<name>.*``) in its directory; [] without one."""
        try:
            dirfd, name = self.open_parent(root, dest, follow=follow)
        except ApplyError:
            return []  # a missing or unsafe directory is reported when the file is read
        try:
            return confine.temps(dirfd, f"{TEMP_PREFIX}{name}.", self._listings)
        except OSError:
            return []  # a directory we cannot list is reported when we write to it
        finally:
            os.close(dirfd)

    def remove_temps(self, root: Path, dest: PurePosixPath, names: list[str],
                     follow: bool = False) -> None:
        dirfd, _ = self.open_parent(root, dest, follow=follow)
        try:
            confine.remove(dirfd, names)
        except OSError as exc:
            raise _oserror(exc, "cannot remove stale temp files next to", f"{root}{dest}") \
                from exc
        finally:
            os.close(dirfd)

    def read_link(self, root: Path, dest: PurePosixPath) -> Actual | None:
        """A symlink destination: its target as bytes, its owner in the root's terms."""
        return self._read_in(root, dest, self._link_at)

    @staticmethod
    def _link_at(dirfd: int, name: str, display: str) -> Actual | None:
        try:
            return links.read_at(dirfd, name, display)
        except OSError as exc:
            raise _oserror(exc, "cannot read link", display) from exc

    def read_file(self, root: Path, dest: PurePosixPath, follow: bool = False) -> Actual | None:
        """The destination's bytes and metadata; None when it does not exist yet.

        Raises MissingDirectoryError when its directory is missing, so the plan can decide
        (create it, or fail the service before anything is written). The owner is given in the
        root's terms: a private-users shift is undone, an id outside the range reads as 65534.
        """
        return self._read_in(root, dest, self._read_at, follow)

    def _read_in(self, root: Path, dest: PurePosixPath,
                 read: Callable[[int, str, str], Actual | None], follow: bool = False
                 ) -> Actual | None:
        """``read`` in the destination's directory; the owner in the root's terms."""
        display = f"{root}{dest}"
        dirfd, name = self.open_parent(root, dest, follow=follow)
        try:
            actual = read(dirfd, name, display)
        finally:
            os.close(dirfd)
        base = self.uid_base(root)
        if actual is None or not base:
            return actual
        return actual._replace(uid=unshift(actual.uid, base), gid=unshift(actual.gid, base))

    def _read_at(self, dirfd: int, name: str, display: str) -> Actual | None:
        try:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _oserror(exc, "cannot stat", display) from exc
        refuse_special(st, dirfd, name, display)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=dirfd)
        except OSError as exc:
            raise _oserror(exc, "cannot read", display) from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafePathError("destination is not a regular file", path=display)
            data = read_bounded(fd, st.st_size)  # fstat first: a sparse 64 MiB file costs nothing
            return Actual(data or b"", st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode),
                          0 if data is not None else max(st.st_size, MAX_FILE + 1))
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
                actual = self.read_file(root, PurePosixPath("/etc") / kind, follow=True)
            except MissingDirectoryError:
                actual = None
            self._ids[key] = parse_ids(actual, f"{root}/etc/{kind}")
        return self._ids[key]

    # --- writing ------------------------------------------------------------------------------

    def stage(self, root: Path, dest: PurePosixPath, data: bytes, uid: int, gid: int,
              mode: int, create_dirs: bool = False, follow: bool = False,
              link: bool = False) -> Staged:
        """Write ``data`` to a temp file next to the target: owned, moded, fsynced (``link``:
        a symlink to ``data`` under the temp name, owned; renderer.system.links).

        ``uid``/``gid`` are in the root's terms and shifted here for a private-users container.
        """
        display = f"{root}{dest}"
        base = self.uid_base(root)
        owner = (shift(uid, base, "uid", display), shift(gid, base, "gid", display), mode)
        dirfd, name = self.open_parent(root, dest, create=create_dirs, follow=follow)
        temp = f"{TEMP_PREFIX}{name}.{os.urandom(4).hex()}"
        try:
            if link:
                links.check_target(dirfd, name, display)
                links.make(dirfd, temp, data, owner[0], owner[1])
                return Staged(display, dirfd, name, temp, data, owner=owner)
            self._check_target(dirfd, name, display)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=dirfd)
            try:
                _write_all(fd, data)
                os.fchown(fd, owner[0], owner[1])
                os.fchmod(fd, mode)  # after chown, which clears set-id bits
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException as exc:  # never leave a temp file, whatever failed
            self._unlink_quietly(dirfd, temp)
            os.close(dirfd)
            if not isinstance(exc, OSError):
                raise
            raise _oserror(exc, "cannot write", display) from exc
        return Staged(display, dirfd, name, temp, data, owner=owner)

    @staticmethod
    def _check_target(dirfd: int, name: str, display: str) -> None:
        """Refuse, at write time too, a target that became a symlink, device or FIFO.

        The rename would not write through it, but it would destroy a container's device node
        (Ansible turned /dev/null into a file this way).
        """
        try:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        refuse_special(st, dirfd, name, display)

    def commit(self, staged: Staged) -> str:
        """Rename the temp file over the target and make the rename durable."""
        assert staged.temp is not None
        note = ""
        try:
            try:
                os.rename(staged.temp, staged.name, src_dir_fd=staged.dirfd,
                          dst_dir_fd=staged.dirfd)
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                self._rewrite_in_place(staged)
                note = BIND_MOUNT_NOTE
            os.fsync(staged.dirfd)
        except (OSError, ApplyError) as exc:
            self._unlink_quietly(staged.dirfd, staged.temp)
            if isinstance(exc, ApplyError):
                raise
            raise _oserror(exc, "cannot replace", staged.path) from exc
        finally:
            os.close(staged.dirfd)
        return note

    def _rewrite_in_place(self, staged: Staged) -> None:
        """A bind-mounted target cannot be renamed over (EBUSY): rewrite it and say so.

        Opened non-blocking and checked by fd before truncating, so a FIFO or device mounted
        there is refused without side effects.
        """
        fd = os.open(staged.name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
                     | os.O_CLOEXEC, dir_fd=staged.dirfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UnsafePathError("bind-mounted destination is not a regular file",
                                      path=staged.path)
            os.ftruncate(fd, 0)
            _write_all(fd, staged.data)
            os.fchown(fd, staged.owner[0], staged.owner[1])
            os.fchmod(fd, staged.owner[2])
            os.fsync(fd)
        finally:
            os.close(fd)
        self._unlink_quietly(staged.dirfd, staged.temp)

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

        manifest.taint("systemctl")  # what systemd says has no lstat: such a run records none

        command = [*self.systemctl_cmd, *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 1, f"{' '.join(command)}: {exc}"
        output = (done.stderr.strip() or done.stdout.strip()).splitlines()
        return done.returncode, output[-1] if output else ""

    def systemctl_query(self, args: list[str], timeout: float = 30) -> tuple[int, str]:
        return self.systemctl(args, timeout)

    def probe(self, argv: list[str], timeout: float) -> tuple[int, str]:
        manifest.taint("probe")
        return outside.probe(argv, timeout)

    def coordinate(self, url: str, body: bytes, timeout: float) -> bytes:
        return outside.post_json(url, body, timeout)

    def state_path(self, name: str) -> Path:
        return self.state_dir / name

    def read_state(self, name: str) -> bytes | None:
        return self.state.read(name)

    def write_state(self, name: str, data: bytes, mode: int = 0o600) -> None:
        """Atomically replace a file in the state dir (it and its subdirs created 0700)."""
        self.state.write(name, data, mode)

    def remove_state(self, name: str) -> None:
        self.state.remove(name)

    def remove_state_temps(self) -> list[str]:
        return self.state.remove_temps()

    def remove_file(self, root: Path, dest: PurePosixPath, follow: bool = False,
                    link: bool = False) -> None:
        """Remove a regular file render created (rolling back); never a directory, and a
        symlink only when it is one render made (``link``)."""
        display = f"{root}{dest}"
        dirfd, name = self.open_parent(root, dest, follow=follow)
        try:
            read = links.read_at if link else self._read_at
            if read(dirfd, name, display) is not None:
                os.unlink(name, dir_fd=dirfd)
                os.fsync(dirfd)
        except OSError as exc:
            raise _oserror(exc, "cannot remove", display) from exc
        finally:
            os.close(dirfd)

    def cache_dir(self, name: str, create: bool) -> Directory | None:
        """A checked directory in the state dir, opened once (None: there is none yet).

        Caches in it hold code that will be executed (compiled templates): they read and write
        only through its fd, and load only what they can authenticate (renderer.bccache).
        """
        return self.state.cache(name, create)
