"""The Puppet module's exec resources, applied by real ``puppet apply`` (Debian's puppet)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, Tree, puppet_dirs

pytestmark = [pytest.mark.puppet, pytest.mark.slow]
RENDER = Path(sys.executable).with_name("render")


def apply(manifest: str, work: Path) -> subprocess.CompletedProcess:
    puppet = shutil.which("puppet")
    assert puppet, "Debian's puppet is not installed: run the suite through 'make test'"
    assert RENDER.exists(), f"{RENDER} missing: run the suite through 'make test'"
    work.mkdir(parents=True, exist_ok=True)
    (work / "hiera.yaml").write_text("version: 5\nhierarchy: []\n")
    command = [puppet, "apply", "--detailed-exitcodes", "--color=false",
               *puppet_dirs(work),
               f"--hiera_config={work / 'hiera.yaml'}",
               f"--modulepath={REPO / 'contrib' / 'puppet'}", "-e", manifest]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def manifest(tree: Tree, service: str = "keystone") -> str:
    options = ", ".join(f"'{o}'" for o in (*tree.options(), "--no-restart"))
    return f"render::service {{ '{service}': command => '{RENDER}', options => [{options}] }}"


def test_puppet_apply_runs_render_only_when_out_of_sync(tree: Tree, tmp_path: Path):
    first = apply(manifest(tree), tmp_path / "puppet")
    assert first.returncode == 2, first.stdout + first.stderr
    assert (tree.machines / "keystone/etc/keystone/keystone.conf").exists()
    assert "+memcache_servers=" in first.stdout  # the diff is in Puppet's log
    assert "Kst0ne-db-S3cret" not in first.stdout + first.stderr

    second = apply(manifest(tree), tmp_path / "puppet")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "render keystone" not in second.stdout

    conf = tree.machines / "keystone/etc/keystone/keystone.conf"
    conf.write_text(conf.read_text().replace("caching=True", "caching=False"))
    third = apply(manifest(tree), tmp_path / "puppet")
    assert third.returncode == 2
    assert "caching=True" in conf.read_text()


def test_puppet_apply_fails_the_resource_on_render_failure(tree: Tree, tmp_path: Path):
    result = apply(manifest(tree, "nosuch"), tmp_path / "puppet")
    assert result.returncode in (4, 6), result.stdout + result.stderr
    assert "unknown service 'nosuch'" in result.stdout + result.stderr


def test_puppet_dirs_leave_puppet_no_directory_of_the_machine(tmp_path: Path):
    """Every setting naming a path points inside the test's directory, as Puppet resolves it
    with puppet_dirs(); the module path is set by each caller (--modulepath, --basemodulepath)."""
    puppet = shutil.which("puppet")
    assert puppet, "Debian's puppet is not installed: run the suite through 'make test'"
    done = subprocess.run([puppet, "config", "print", "all", *puppet_dirs(tmp_path),
                           f"--hiera_config={tmp_path / 'hiera.yaml'}"],
                          capture_output=True, text=True, timeout=120, check=True)
    outside = {}
    for line in done.stdout.splitlines():
        name, _, value = line.partition(" = ")
        if "://" in value:  # URLs: puppet:///plugins, https://forgeapi...
            continue
        paths = [p for p in value.split(":") if p.startswith("/")]  # also path lists
        if any(not p.startswith(f"{tmp_path}/") for p in paths):
            outside[name] = value
    assert set(outside) <= {"modulepath", "basemodulepath"}, outside
