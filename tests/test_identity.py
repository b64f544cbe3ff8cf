"""File identity: a target is (root kind, machine, path inside the root), never the spelling of
the roots; and an upgrade from the previous release's state files (format 1, keyed on display
paths) restarts nothing that is in sync."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from conftest import REPO, Tree, render

UPGRADE = REPO / "tests" / "data" / "upgrade" / "format-1"


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


def test_upgrade_from_format_1_restarts_nothing_in_sync(tree: Tree, tmp_path: Path, systemctl):
    """tests/data/upgrade: the previous release's records of keystone and glance, as it wrote
    them after restarting both (see its README)."""
    fake = systemctl()
    scratch = ["--state-dir", str(tmp_path / "scratch-state")]  # today's render writes the files
    assert render("--no-restart", "keystone", "glance", *relative(tree), *scratch,
                  cwd=tree.base).code == 2
    (tree.state / "services").mkdir(parents=True)
    for name in ("keystone", "glance"):
        shutil.copy(UPGRADE / "services" / f"{name}.json", tree.state / "services")
        (tree.state / "services" / f"{name}.json").chmod(0o600)  # as the old release wrote it
    state = tree.state / "services" / "keystone.json"
    assert json.loads(state.read_text())["format"] == 1
    # glance's files are in sync, but its container restart was never recorded as done: the
    # old release leaves it owed, and so must the upgrade
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
    assert fake.calls() == ["try-restart systemd-nspawn@glance.service"]
    upgraded = json.loads(state.read_text())
    assert upgraded["format"] == 2
    assert "container:keystone:/etc/keystone/keystone.conf" in upgraded["files"]
    assert all(u["hash"].startswith("v2:") for u in upgraded["units"].values())
    again = render("--noop", "keystone", "glance", *tree.options())  # and spelled absolute
    assert (again.code, again.err) == (0, "") and "everything in sync" in again.out
