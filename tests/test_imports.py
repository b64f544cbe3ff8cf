"""Start-up: what ``render --version`` and ``--help`` import, and how the command leaves.

Puppet and cron run render constantly, so its start-up must not pay for Jinja2, YAML or
oslo.config before it knows it needs them. The command (``renderer.fastpath.console``) flushes and
leaves with ``os._exit``: nothing it printed may be lost on a pipe, and its exit code stays.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO, Tree, render

HEAVY = ("jinja2", "yaml", "oslo_config", "markupsafe")


def _process(*args: str, python: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *python, "-m", "renderer", *args],
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def _unmasked(text: str) -> str:
    return re.sub(r"<redacted>#[0-9a-f]{8}", "<redacted>", text)


def _imported(importtime: str) -> set[str]:
    """Module names from ``-X importtime`` lines (``import time: self | cumulative | name``)."""
    names = set()
    for line in importtime.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_start_up_imports_no_heavy_module(option: str) -> None:
    done = _process(option, python=("-X", "importtime"))
    assert done.returncode == 0, done.stderr[-500:]
    assert "render" in done.stdout
    names = _imported(done.stderr)
    assert "renderer.cli" in names  # the probe itself works
    heavy = sorted(n for n in names if n.split(".")[0] in HEAVY)
    assert heavy == [], f"render {option} imports {heavy}"


def test_full_render_imports_jinja2() -> None:
    """The other side of the probe: a module the full path needs shows up in it."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import renderer.runner"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr[-500:]
    assert "jinja2" in _imported(done.stderr)


@pytest.mark.slow  # two renders of every sample service
def test_console_keeps_every_byte_on_a_pipe(tree: Tree) -> None:
    """A long --diff of every service through a pipe equals what main() prints in process
    (but for the masks: without a state dir each process masks under a key of its own)."""
    expected = render("--noop", "--diff", "--all", *tree.options())
    done = _process("--noop", "--diff", "--all", *tree.options())
    assert expected.code == 2 and len(expected.out) > 10_000
    assert (done.returncode, _unmasked(done.stdout), done.stderr) == \
        (expected.code, _unmasked(expected.out), expected.err)


@pytest.mark.slow
def test_console_keeps_the_exit_code_of_a_failure(tree: Tree) -> None:
    expected = render("--noop", "no-such-service", *tree.options())
    done = _process("--noop", "no-such-service", *tree.options())
    assert expected.code not in (0, 2)
    assert (done.returncode, done.stdout, done.stderr) == \
        (expected.code, expected.out, expected.err)


def test_console_keeps_a_usage_error() -> None:
    """argparse leaves with SystemExit, which the console turns into the same exit."""
    expected = render("--no-such-option")
    done = _process("--no-such-option")
    assert expected.code != 0 and "--no-such-option" in expected.err
    assert (done.returncode, done.stdout, done.stderr) == \
        (expected.code, expected.out, expected.err)
