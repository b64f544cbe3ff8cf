"""DryRunSystem: ``--noop`` as a wrapper around any System, as chezmoi's ``DryRunSystem`` is.

Reads are delegated to the wrapped system, so a dry run sees exactly what a real run sees and
raises the same errors. Mutations are recorded, in order, as one line each and not done; the
record is what the report says "would" happen, and it makes this class the recording fake that
tests wrap around a real system on a scratch tree.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from renderer.system import Actual, Staged, System
from renderer.system.statedir import Directory


class DryRunSystem:
    """Delegates reads to ``wrapped``; records every mutation in ``recorded``."""

    def __init__(self, wrapped: System) -> None:
        self.wrapped = wrapped
        self.recorded: list[str] = []

    # --- reads: delegated -----------------------------------------------------------------------

    def lock(self, timeout: float, exclusive: bool) -> None:
        self.wrapped.lock(timeout, exclusive=False)  # dry runs read side by side

    def unlock(self) -> None:
        self.wrapped.unlock()

    def uid_base(self, root: Path) -> int:
        return self.wrapped.uid_base(root)

    def read_file(self, root: Path, dest: PurePosixPath,
                  follow: bool = False) -> Actual | None:
        return self.wrapped.read_file(root, dest, follow)

    def read_link(self, root: Path, dest: PurePosixPath) -> Actual | None:
        return self.wrapped.read_link(root, dest)

    def ids(self, root: Path, kind: str) -> dict[str, int]:
        return self.wrapped.ids(root, kind)

    def stale_temps(self, root: Path, dest: PurePosixPath, follow: bool = False) -> list[str]:
        return self.wrapped.stale_temps(root, dest, follow)

    def systemctl_query(self, args: list[str], timeout: float = 30) -> tuple[int, str]:
        return self.wrapped.systemctl_query(args, timeout)

    def read_state(self, name: str) -> bytes | None:
        return self.wrapped.read_state(name)

    def state_path(self, name: str) -> Path:
        return self.wrapped.state_path(name)

    def cache_dir(self, name: str, create: bool) -> Directory | None:
        return self.wrapped.cache_dir(name, create=False)  # a dry run creates nothing

    # --- mutations: recorded ----------------------------------------------------------------------

    def remove_temps(self, root: Path, dest: PurePosixPath, names: list[str],
                     follow: bool = False) -> None:
        self.recorded.extend(f"remove {root}{dest.parent / name}" for name in names)

    def remove_state_temps(self) -> list[str]:
        self.recorded.append("remove stale temp files in the state dir")
        return []

    def stage(self, root: Path, dest: PurePosixPath, data: bytes, uid: int, gid: int,
              mode: int, create_dirs: bool = False, follow: bool = False,
              link: bool = False) -> Staged:
        self.recorded.append(f"link {root}{dest} -> {data.decode(errors='replace')} {uid}:{gid}"
                             if link else f"write {root}{dest} {uid}:{gid} {mode:04o}")
        return Staged(f"{root}{dest}", -1, dest.name, None, data, (uid, gid, mode))

    def commit(self, staged: Staged) -> str:
        return ""

    def discard(self, staged: Staged) -> None:
        pass

    def remove_file(self, root: Path, dest: PurePosixPath, follow: bool = False,
                    link: bool = False) -> None:
        self.recorded.append(f"remove {root}{dest}")

    def systemctl(self, args: list[str], timeout: float = 120) -> tuple[int, str]:
        self.recorded.append(f"systemctl {' '.join(args)}")
        return 0, ""

    def probe(self, argv: list[str], timeout: float) -> tuple[int, str]:
        self.recorded.append(f"probe {' '.join(argv)}")
        return 0, ""

    def coordinate(self, url: str, body: bytes, timeout: float) -> bytes:
        raise OSError(f"a dry run takes no lock ({url})")  # never asked: --noop restarts nothing

    def write_state(self, name: str, data: bytes, mode: int = 0o600) -> None:
        self.recorded.append(f"state {name}")

    def remove_state(self, name: str) -> None:
        self.recorded.append(f"remove state {name}")
