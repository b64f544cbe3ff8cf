"""System: the one interface through which render touches anything outside its own memory.

Like chezmoi's ``System``, it is a small set of operations, and two implementations satisfy it:
``RealSystem`` (``renderer.system.real``) does the work, ``DryRunSystem``
(``renderer.system.dryrun``) wraps any System, lets every read through and records every
mutation instead of doing it. ``--noop`` is the same pipeline with the real system wrapped, so
it reads the same files, runs the same checks and fails where a real run would fail.

Checks that decide whether a file *can* be written (the target's type, its directory, an owner
inside a private-users range) run while the actual state is observed (``renderer.observe``),
through read operations only, so both modes make them. ``stage`` checks again at write time,
because a container may change its rootfs between the two.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import NamedTuple, Protocol

from renderer.system.statedir import TEMP_PREFIX as TEMP_PREFIX
from renderer.system.statedir import Directory

UID_RANGE = 0x10000   # what nspawn gives a container with private users
OVERFLOW_ID = 65534   # how a container sees an id outside its range


class Actual(NamedTuple):
    """A destination as it is on disk, owner in the root's own terms (shift undone)."""

    data: bytes
    uid: int
    gid: int
    mode: int  # permission bits only
    oversize: int = 0  # > 0: the file's size, over renderer.bounds.MAX_FILE; ``data`` unread


class Staged:
    """A temp file written next to its target, waiting for ``commit`` or ``discard``.

    A plain slotted class: a dataclass costs about 0.7 ms to create at import, and ``data``
    (which may hold secrets) stays out of its repr."""

    __slots__ = ("path", "dirfd", "name", "temp", "data", "owner")

    def __init__(self, path: str, dirfd: int, name: str, temp: str | None, data: bytes,
                 owner: tuple[int, int, int] = (0, 0, 0o644)) -> None:
        self.path = path      # display path of the target
        self.dirfd = dirfd    # -1 for a dry run
        self.name = name
        self.temp = temp      # None for a dry run
        self.data = data
        self.owner = owner    # host uid, gid and mode, for an in-place rewrite

    def __repr__(self) -> str:
        return f"Staged({self.path!r}, temp={self.temp!r})"


class System(Protocol):
    """Every side effect of a run. Reads never mutate; mutations are the methods marked so."""

    def lock(self, timeout: float, exclusive: bool) -> None:
        """Hold the run lock until ``unlock`` (exclusive for a real run, shared for --noop)."""

    def unlock(self) -> None: ...

    def uid_base(self, root: Path) -> int:
        """The private-users id shift of a root (0: none)."""

    def read_file(self, root: Path, dest: PurePosixPath,
                  follow: bool = False) -> Actual | None:
        """The destination as it is, or None; raises MissingDirectoryError, UnsafePathError."""

    def read_link(self, root: Path, dest: PurePosixPath) -> Actual | None:
        """A symlink destination (target as bytes), or None; raises UnsafePathError for
        anything else in its place. Never follows it."""

    def ids(self, root: Path, kind: str) -> dict[str, int]:
        """Name -> id from the root's own etc/passwd or etc/group."""

    def stale_temps(self, root: Path, dest: PurePosixPath, follow: bool = False) -> list[str]:
        """Temp files a killed run left next to ``dest`` (names in its directory)."""

    def remove_temps(self, root: Path, dest: PurePosixPath, names: list[str],
                     follow: bool = False) -> None:
        """Mutation: remove those temp files (only ever under the exclusive lock)."""

    def remove_state_temps(self) -> list[str]:
        """Mutation: remove the temp files a killed run left in the state dir; their names."""

    def stage(self, root: Path, dest: PurePosixPath, data: bytes, uid: int, gid: int,
              mode: int, create_dirs: bool = False, follow: bool = False,
              link: bool = False) -> Staged:
        """Mutation: write a temp file next to the target, owned, moded and fsynced (``link``:
        a symlink to ``data``, owned)."""

    def commit(self, staged: Staged) -> str:
        """Mutation: rename the temp file into place; returns a note ('' or how it was done)."""

    def discard(self, staged: Staged) -> None:
        """Mutation: drop a staged temp file."""

    def remove_file(self, root: Path, dest: PurePosixPath, follow: bool = False,
                    link: bool = False) -> None:
        """Mutation: remove a regular file (``link``: a symlink) render created (rolling back)."""

    def systemctl(self, args: list[str], timeout: float = 120) -> tuple[int, str]:
        """Mutation: run ``<systemctl> args``; exit status and the last line of output."""

    def systemctl_query(self, args: list[str], timeout: float = 30) -> tuple[int, str]:
        """A read-only systemctl call (``show``): a dry run lets it through."""

    def probe(self, argv: list[str], timeout: float) -> tuple[int, str]:
        """Mutation (a probe may do anything): run ``argv`` without a shell; exit status (124
        when it timed out, 127 when it cannot run) and its output, bounded."""

    def coordinate(self, url: str, body: bytes, timeout: float) -> bytes:
        """Mutation: POST ``body`` to the coordinator (etcd's JSON gateway); the response body.
        Raises OSError when it cannot be reached or answers with an error."""

    def read_state(self, name: str) -> bytes | None: ...

    def write_state(self, name: str, data: bytes, mode: int = 0o600) -> None:
        """Mutation: atomically replace a file in the state dir."""

    def remove_state(self, name: str) -> None:
        """Mutation."""

    def state_path(self, name: str) -> Path:
        """Where a state file lives, for messages."""

    def cache_dir(self, name: str, create: bool) -> Directory | None:
        """A checked directory in the state dir, by fd (renderer.system.statedir), or None."""
