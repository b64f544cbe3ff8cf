"""Targets: a destination's identity, apart from how its root directory happens to be spelled.

A target is (root kind, machine, path inside the root). State records and restart hashes are
keyed on it, so ``--machines-dir build/machines`` and the absolute spelling of the same directory
are the same files, and moving ``/var/lib/machines`` restarts nothing. The path shown to people
is derived from the target and the current roots.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from renderer.services import FileSpec, Root


class Target(NamedTuple):
    """One destination: ``machine`` is set for container files only."""

    root: Root
    machine: str | None
    dest: PurePosixPath

    @property
    def key(self) -> str:
        """The identity in state files: ``container:keystone:/etc/keystone/keystone.conf``."""
        return f"{self.root.value}:{self.machine or '-'}:{self.dest}"


class Roots(NamedTuple):
    """Every path root is a parameter, so tests never touch /var/lib/machines or /etc."""

    machines_dir: Path
    host_root: Path

    def target(self, spec: FileSpec, machine: str) -> Target:
        """``machine``: the service's; a file the data puts in another machine says so."""
        if spec.root is not Root.CONTAINER:
            return Target(Root.HOST, None, spec.dest)
        return Target(Root.CONTAINER, spec.machine or machine, spec.dest)

    def root_of(self, target: Target) -> Path:
        if target.root is Root.HOST:
            return self.host_root
        assert target.machine is not None
        return self.machines_dir / target.machine

    def display(self, target: Target) -> str:
        root = str(self.root_of(target))
        return f"{'' if root == '/' else root}{target.dest}"

    def spellings(self, target: Target) -> list[str]:
        """Display paths an earlier release may have used as this target's key (state format 1
        keyed files on ``f"{root}{dest}"``): the roots as given, absolute, symlinks resolved."""
        root = self.root_of(target)
        variants = (root, Path(os.path.abspath(root)), Path(os.path.realpath(root)))
        return [f"{v}{target.dest}" for v in variants]  # by position: the same for every root
