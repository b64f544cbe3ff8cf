"""Golden cases: tests/data/golden/<case>/ holds inputs, the expected tree and the expected stdout.

A case folder may hold ``hieradata/`` and ``service_templates/`` (default: the repo's sample),
``before/`` (a tree copied over the provisioned machines and host root first), ``args`` (one
command line, ``{tree}`` options appended), ``expected/`` (every file under machines/ and host/
after the run) and ``stdout`` (with the tree's path replaced by ``<tree>``). The state dir holds a
fixed HMAC key, so masked values are stable. After the run the same command runs again with
``--noop``, which must leave the tree (machines/, host/ and the state dir: every file's bytes,
mode and owner) exactly as it was. ``make golden-update`` (``RENDER_UPDATE_GOLDEN=1``) rewrites the
expectations.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import pytest
from conftest import REPO, Result, Tree, render
from demo_machines import provision

CASES = sorted(p for p in (REPO / "tests" / "data" / "golden").iterdir() if p.is_dir())
UPDATE = os.environ.get("RENDER_UPDATE_GOLDEN") == "1"
LINK_SUFFIX = ".symlink"  # a golden symlink is a file <name>.symlink holding its target
PACKAGE_FILES = ("shadow", "securetty")  # the container's files render edits (renderer.edits)
PROVISIONED: dict[Path, dict[Path, bytes]] = {}  # ... as provisioned, per tree: not in goldens


def build(case: Path, base: Path) -> Tree:
    tree = Tree(base)
    for name, default in (("hieradata", REPO / "hieradata"),
                          ("service_templates", REPO / "service_templates")):
        source = case / name if (case / name).is_dir() else default
        shutil.copytree(source, base / name)
    provision(tree.templates, tree.machines, tree.hieradata)
    PROVISIONED[base] = {p: p.read_bytes() for name in PACKAGE_FILES
                         for p in tree.machines.glob(f"*/etc/{name}")}
    tree.host.mkdir()
    if (case / "before").is_dir():
        shutil.copytree(case / "before", base, dirs_exist_ok=True)
    tree.state.mkdir(mode=0o700)
    (tree.state / "hmac.key").write_bytes(b"golden-test-key-" * 2)
    (tree.state / "hmac.key").chmod(0o600)  # as render writes it: a readable key is refused
    return tree




def actual_files(tree: Tree) -> dict[str, bytes]:
    """Every file render wrote, a symlink as its target (never followed: an absolute target
    names a file of the container, not of the machine running the tests)."""
    files = {}
    for top in (tree.machines, tree.host):
        for p in sorted(top.rglob("*")):
            if p.is_symlink():
                files[f"{p.relative_to(tree.base)}{LINK_SUFFIX}"] = os.fsencode(os.readlink(p))
            elif p.is_file() and p.name not in ("passwd", "group") \
                    and PROVISIONED.get(tree.base, {}).get(p) != p.read_bytes():
                files[str(p.relative_to(tree.base))] = p.read_bytes()
    return files


def noop_changes_nothing(tree: Tree, *args: str) -> Result:
    """Run ``--noop`` with ``args`` and assert the whole tree, state dir included, is unchanged:
    every file's bytes, mode and owner."""
    before = tree.snapshot(state=True)
    result = render("--noop", *args, *tree.options())
    after = tree.snapshot(state=True)
    assert after == before, {path: (before.get(path), after.get(path))
                             for path in set(before) | set(after)
                             if before.get(path) != after.get(path)}
    return result


def compare_or_update(case: Path, files: dict[str, bytes], stdout: str) -> None:
    """Assert the tree and stdout match ``case``; with ``make golden-update``, rewrite them."""
    if UPDATE:
        shutil.rmtree(case / "expected", ignore_errors=True)
        for name, data in files.items():
            (case / "expected" / name).parent.mkdir(parents=True, exist_ok=True)
            (case / "expected" / name).write_bytes(data)
        (case / "stdout").write_text(stdout)
        return
    expected = {str(p.relative_to(case / "expected")): p.read_bytes()
                for p in sorted((case / "expected").rglob("*")) if p.is_file()}
    assert files == expected
    assert stdout == (case / "stdout").read_text()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Path, tmp_path: Path):
    tree = build(case, tmp_path / "t")
    args = shlex.split((case / "args").read_text())
    result = render(*args, *tree.options())
    stdout = result.out.replace(str(tree.base), "<tree>")
    stdout += f"[exit {result.code}]\n" + result.err.replace(str(tree.base), "<tree>")
    compare_or_update(case, actual_files(tree), stdout)
    noop_changes_nothing(tree, *args)
