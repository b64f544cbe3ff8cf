"""Bad input, one golden case each, through the CLI: one exact line per error naming
file:line, key or unit, every error of a service in the same run; exit 4 (6 when the other
service changed); nothing written for a broken service; the other one runs.

Both services (``good`` and ``bad``) are in sync at v1 first, then the data moves to v2 and the
case breaks something. ``tests/data/errors/<case>/`` holds the case:

* ``tree/``: files copied over the scratch tree (paths relative to it: ``hieradata/...``,
  ``templates/...``, ``machines/...``), after ``remove``: paths removed first, one a line;
* ``args``: what to render (default ``good bad``; the path options are added);
* ``expected/stderr``: the exact lines, the tree's path written ``<tree>``, and
  ``expected/exit_code``. ``make golden-update`` (``RENDER_UPDATE_GOLDEN=1``) rewrites them.

The write faults of the same list (read-only filesystem, full disk, EACCES) are in
test_faults.py, with real mounts; a unit that fails to start is tested with the restarts.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO
from synth import tree_hash

ERRORS = REPO / "tests" / "data" / "errors"
CASES = sorted(p for p in ERRORS.iterdir() if p.is_dir())
UPDATE = os.environ.get("RENDER_UPDATE_GOLDEN") == "1"
FAILED = re.compile(r"render: ([^:]+): ")
V2 = {"good": {"etc/good/g.conf": "g 2\n"},
      "bad": {"etc/bad/a.conf": "a 2\n", "etc/bad/sub/b.conf": "b 2\n"}}


@pytest.fixture
def synth(scratch, run):
    synth = scratch({
        "good": [{"dest": "/etc/good/g.conf", "text": "g {{ lookup('v') }}\n"}],
        "bad": [{"dest": "/etc/bad/a.conf", "text": "a {{ lookup('v') }}\n"},
                {"dest": "/etc/bad/sub/b.conf", "text": "b {{ lookup('v') }}\n"}],
    }, data={"v": 1})
    assert run(*synth.options(), "--all").code == 2
    synth.set_data({"v": 2})
    return synth


def _break(synth, case: Path) -> list[str]:
    """Apply the case to the tree; returns the command line's services and options."""
    if (case / "remove").exists():
        for relative in (case / "remove").read_text().split():
            shutil.rmtree(synth.base / relative)
    if (case / "tree").is_dir():
        shutil.copytree(case / "tree", synth.base, dirs_exist_ok=True)
    args = case / "args"
    return args.read_text().split() if args.exists() else ["good", "bad"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_error_golden(synth, run, case: Path):
    args = _break(synth, case)
    rootfs = {name: synth.rootfs(name) for name in V2}
    before = {name: tree_hash(path) for name, path in rootfs.items() if path.exists()}
    result = run(*synth.options(), *args)
    stderr = result.err.replace(str(synth.base), "<tree>")
    expected = case / "expected"
    if UPDATE:
        expected.mkdir(exist_ok=True)
        (expected / "stderr").write_text(stderr)
        (expected / "exit_code").write_text(f"{result.code}\n")
    assert stderr == (expected / "stderr").read_text()
    assert result.code == int((expected / "exit_code").read_text())

    failed = [m.group(1) for m in map(FAILED.match, stderr.splitlines()) if m]
    assert len(failed) == len(stderr.splitlines()), stderr  # one line each, all a service's
    assert len(set(stderr.splitlines())) == len(failed), stderr  # none said twice
    for name, snapshot in before.items():
        if name in failed:  # nothing written, nothing new, nothing removed
            assert tree_hash(rootfs[name]) == snapshot, name
        else:  # the others run
            for path, text in V2[name].items():
                assert (rootfs[name] / path).read_text() == text, path
    # alone, the broken services exit exactly 4, with the same lines
    alone = run(*synth.options(), *failed)
    assert (alone.code, alone.err) == (4, result.err)


def test_create_dirs_creates_only_when_the_definition_says_so(synth, run):
    shutil.rmtree(synth.rootfs("bad") / "etc/bad/sub")
    definition = synth.templates / "bad" / "service.yaml"
    definition.write_text(definition.read_text().replace(
        "dest: /etc/bad/sub/b.conf", "dest: /etc/bad/sub/b.conf\n  create_dirs: true"))
    result = run(*synth.options(), "bad")
    assert result.code == 2, result.err
    assert (synth.rootfs("bad") / "etc/bad/sub/b.conf").read_text() == "b 2\n"
