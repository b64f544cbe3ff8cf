"""File identity: a target is (root kind, machine, path inside the root), never the spelling of
the roots; and an upgrade from the previous release's state files (format 1, keyed on display
paths) restarts nothing that is in sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from conftest import REPO, Tree, render

PREVIOUS_RELEASE = "dbdfc51"  # the last commit whose state files are format 1


def relative(tree: Tree) -> list[str]:
    """The tree's options with the roots spelled relative to tree.base (run with cwd there)."""
    options = tree.options()
    for option in ("--machines-dir", "--host-root", "--state-dir"):
        index = options.index(option)
        options[index + 1] = os.path.relpath(options[index + 1], tree.base)
    return options


def test_one_tree_three_spellings(tree: Tree, tmp_path: Path, systemctl):
    fake = systemctl()
    first = render(*fake.options, "keystone", *relative(tree), cwd=tree.base)
    assert first.code == 2, first.err
    restarts = fake.calls()
    link = tmp_path / "link"
    link.symlink_to(tree.base)
    absolute = tree.options()
    through_link = [str(link / os.path.relpath(o, tree.base)) if o.startswith(str(tree.base))
                    else o for o in absolute]
    for options in (relative(tree), absolute, through_link):
        noop = render("--noop", "keystone", *options, cwd=tree.base)
        assert (noop.code, noop.err) == (0, ""), noop.out
        assert "everything in sync" in noop.out
    (tree.machines / "keystone/etc/keystone/keystone.conf").write_text("edited\n")
    noop = render("--noop", "keystone", *through_link)
    assert "(content; edited outside render since " in noop.out, noop.out
    assert fake.calls() == restarts


def previous_release(tmp_path: Path) -> Path:
    """The previous release's renderer package and its service templates (which render the
    same bytes as today's), from this repository's own history."""
    archive = tmp_path / "previous.tar"
    done = subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive),
                           PREVIOUS_RELEASE, "renderer", "service_templates"],
                          capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, f"the previous release is not in this clone: {done.stderr}"
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "previous", filter="data")
    return tmp_path / "previous"


def test_upgrade_from_format_1_restarts_nothing_in_sync(tree: Tree, tmp_path: Path, systemctl):
    old = previous_release(tmp_path)
    fake = systemctl()
    done = subprocess.run([sys.executable, "-m", "renderer", *fake.options, "keystone", "glance",
                           *relative(tree), "--templates", str(old / "service_templates")],
                          cwd=tree.base, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(old)}, check=False, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    state = tree.state / "services" / "keystone.json"
    assert json.loads(state.read_text())["format"] == 1
    restarted = fake.calls()
    assert "try-restart systemd-nspawn@keystone.service" in restarted
    # glance's files are in sync, but its container restart failed to be recorded: the old
    # release leaves it owed, and so must the upgrade
    glance = tree.state / "services" / "glance.json"
    document = json.loads(glance.read_text())
    document["units"]["container:-:systemd-nspawn@glance.service"]["hash"] = "v1:" + "0" * 64
    glance.write_text(json.dumps(document))

    noop = render("--noop", "keystone", "glance", *relative(tree), cwd=tree.base)
    assert noop.code == 2, noop.out + noop.err
    assert "keystone:" not in noop.out  # in sync: no restart, no "edited outside render"
    assert "glance: would restart systemd-nspawn@glance.service (restart pending" in noop.out
    real = render(*fake.options, "keystone", "glance", *relative(tree), cwd=tree.base)
    assert real.code == 2 and "keystone:" not in real.out, real.out
    assert fake.calls() == [*restarted, "try-restart systemd-nspawn@glance.service"]
    upgraded = json.loads(state.read_text())
    assert upgraded["format"] == 2
    assert "container:keystone:/etc/keystone/keystone.conf" in upgraded["files"]
    assert all(u["hash"].startswith("v2:") for u in upgraded["units"].values())
    again = render("--noop", "keystone", "glance", *tree.options())  # and spelled absolute
    assert (again.code, again.err) == (0, "") and "everything in sync" in again.out
