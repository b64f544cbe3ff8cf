"""Shared fixtures: a copy of the sample tree with provisioned demo containers, and a CLI runner.

Every path root (machines folder, host root, state dir) points into pytest's tmp_path: tests never
touch the machine's /var/lib/machines, /etc or services.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "contrib"))

from demo_machines import provision  # noqa: E402
from synth import Layout  # noqa: E402


class Tree(Layout):
    """A sample deployment under tmp_path, and the options that point render at it."""

    TEMPLATES = "service_templates"

    def options(self) -> list[str]:
        return self.roots("controller1.example.com")

    def snapshot(self) -> dict[str, tuple[str, int, int, int]]:
        """Every file under machines/ and host/: content hash, mode, uid, gid."""
        result = {}
        for top in (self.machines, self.host):
            for path in sorted(top.rglob("*")):
                st = path.lstat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
                result[str(path)] = (digest, st.st_mode, st.st_uid, st.st_gid)
        return result


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    tree = Tree(tmp_path)
    shutil.copytree(REPO / "hieradata", tree.hieradata)
    shutil.copytree(REPO / "service_templates", tree.templates)
    provision(tree.templates, tree.machines, tree.hieradata)
    tree.host.mkdir()
    return tree


@dataclass
class Result:
    code: int
    out: str
    err: str


def render(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
    """Run the real CLI in a fresh process, as Puppet and cron do."""
    done = subprocess.run([sys.executable, "-m", "renderer", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def run():
    return render


# --- Puppet ---------------------------------------------------------------------------------------

PUPPET_DIRS = ("confdir", "vardir", "codedir", "rundir", "logdir", "ssldir", "publicdir",
               "cadir", "vendormoduledir")


def puppet_dirs(root: Path) -> list[str]:
    """Options that put every directory a real Puppet reads or writes inside ``root`` (created
    here): Debian's defaults are absolute (/etc/puppet, /var/cache/puppet, /run/puppet,
    /var/log/puppet, /var/lib/puppet/ssl, /var/cache/puppet/public), not under --vardir, and
    parallel Puppet processes race to create them. The caller adds ``--hiera_config``."""
    options = []
    for name in PUPPET_DIRS:
        path = root / name
        path.mkdir(parents=True, exist_ok=True)
        options.append(f"--{name}={path}")
    return options
