"""One side of a preview: the hieradata and templates of a git revision, read with ``git archive``.

The revision's trees (the hieradata directory and each templates directory, paths inside the
repository) are unpacked into a private temp dir, never checked out: the working tree, its
uncommitted edits and its ignored files play no part unless ``--worktree`` asks for them. Error
lines name ``REF:path`` instead of the temp dir (``shown``).
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path
from typing import NamedTuple

from renderer.errors import PreviewError

WORKTREE = "working tree"


class Revision(NamedTuple):
    label: str                   # the ref as given, or "working tree"
    commit: str | None           # None: the working tree
    root: Path                   # the unpacked tree (the repository itself for the worktree)
    hieradata: Path
    templates: tuple[Path, ...]

    def shown(self, text: str) -> str:
        """``text`` with the unpacked tree's paths spelled ``REF:path``."""
        if self.commit is None:
            return text
        return text.replace(f"{self.root}/", f"{self.label}:")


def git(repo: Path, *args: str, stdout: int | None = subprocess.PIPE) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["git", "-C", str(repo), *args], stdout=stdout,
                            stderr=subprocess.PIPE)


def resolve(repo: Path, ref: str) -> str:
    """The commit ``ref`` names; an unknown ref is one error line."""
    if ref.startswith("-"):
        raise PreviewError(f"{ref!r} is not a git revision")
    try:
        done = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet",
                               f"{ref}^{{commit}}"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise PreviewError("git is not installed") from None
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()
        raise PreviewError(f"{repo}: {ref!r} names no commit" + (f" ({why[-1]})" if why else ""))
    return done.stdout.strip()


def extract(repo: Path, ref: str, hieradata: str, templates: tuple[str, ...],
            into: Path) -> Revision:
    """``ref``'s trees under ``into`` (which must be empty and private)."""
    commit = resolve(repo, ref)
    paths = [hieradata, *templates]
    for path in paths:
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise PreviewError(f"{path}: a path inside the repository is expected")
    process = git(repo, "archive", "--format=tar", commit, "--", *paths)
    assert process.stdout is not None
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            archive.extractall(into, filter="data")  # no links out, no devices, no setuid
    except tarfile.TarError as exc:
        process.kill()
        raise PreviewError(f"git archive {ref}: {exc}") from None
    finally:
        process.stdout.close()
        stderr = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
        process.wait()
    if process.returncode != 0:
        lines = stderr.strip().splitlines()
        raise PreviewError(f"git archive {ref}: " + (lines[-1] if lines else
                                                      f"exit status {process.returncode}"))
    return Revision(ref, commit, into, into / hieradata, tuple(into / t for t in templates))


def worktree(repo: Path, hieradata: str, templates: tuple[str, ...]) -> Revision:
    """The repository's files as they are on disk (``--worktree``), uncommitted edits included."""
    root = repo.resolve()
    return Revision(WORKTREE, None, root, root / hieradata, tuple(root / t for t in templates))
