"""CLI habits: ``render --list``, "did you mean" for an unknown service, colour on a terminal
only (a real pty; NO_COLOR; --color always|never), --diff-context N, and --help naming the
subcommands."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from conftest import REPO, Tree, render

KEYSTONE = Path("keystone/etc/keystone/keystone.conf")
ESC = "\033["


def test_list_prints_service_and_machine(tree: Tree):
    result = render("--list", *tree.options())
    assert result.code == 0, result.err
    rows = dict(line.split("\t") for line in result.out.splitlines())
    assert sorted(rows) == sorted(p.parent.name for p in tree.templates.glob("*/service.yaml")
                                  if not p.parent.name.startswith("_"))
    assert rows["memcached"] == "memcached"
    assert rows["neutron"] == "neutron-server"  # the data decides it, and is there
    assert result.err == ""


def test_list_without_data_prints_a_dash(tree: Tree, tmp_path: Path):
    result = render("--list", "--templates", str(tree.templates),
                    "--hieradata", str(tmp_path / "absent"))
    assert result.code == 0, result.err
    rows = dict(line.split("\t") for line in result.out.splitlines())
    assert (rows["neutron"], rows["keystone"]) == ("-", "keystone")


def test_list_names_a_broken_definition_and_exits_4(tree: Tree):
    (tree.templates / "memcached/service.yaml").write_text("files: nope\n")
    result = render("--list", *tree.options())
    assert result.code == 4
    assert "memcached\t-\n" in result.out and "keystone\tkeystone\n" in result.out
    assert result.err.startswith("render: memcached: ") and result.err.count("\n") == 1


def test_list_refuses_services(tree: Tree):
    result = render("--list", "keystone", *tree.options())
    assert result.code == 64 and "--list takes no SERVICE" in result.err


def test_unknown_service_did_you_mean(tree: Tree):
    result = render("--no-restart", "memcachd", *tree.options())
    assert result.code == 4
    line, = result.err.splitlines()
    assert "unknown service 'memcachd'; did you mean 'memcached'?" in line
    far = render("--no-restart", "zzzz", *tree.options())
    assert "did you mean" not in far.err and "unknown service 'zzzz'" in far.err


def test_help_mentions_the_subcommands():
    result = render("--help")
    assert result.code == 0
    text = " ".join(result.out.split())
    assert "render lookup KEY" in text and "render show SERVICE" in text
    assert "--color" in text and "--diff-context" in text and "--list" in text
    assert "--config" in text and "RENDER_NODE" in text


def in_pty(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """``python -m renderer`` with stdout and stderr on a real terminal; what it showed."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "renderer", *args], stdin=subprocess.DEVNULL, stdout=slave,
        stderr=slave, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm",
                                     **(env or {})})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return process.wait(timeout=60), b"".join(chunks).decode().replace("\r\n", "\n")


def hand_edit(tree: Tree) -> None:
    assert render("--no-restart", "keystone", *tree.options()).code == 2
    conf = tree.machines / KEYSTONE
    lines = conf.read_text().splitlines(keepends=True)
    middle = len(lines) // 2
    lines[middle] = "# edited by hand\n"
    conf.write_text("".join(lines))


def test_colour_on_a_terminal_only(tree: Tree):
    hand_edit(tree)
    args = ("--noop", "--diff", "keystone", *tree.options())
    code, shown = in_pty(*args)
    assert code == 2, shown
    assert f"{ESC}31m-# edited by hand{ESC}0m\n" in shown
    assert any(line.startswith(f"{ESC}32m+") for line in shown.splitlines())
    assert f"{ESC}36m@@" in shown
    assert "\nkeystone: would update" in shown  # report lines stay plain
    code, plain = in_pty(*args, env={"NO_COLOR": "1"})
    assert code == 2 and ESC not in plain and "-# edited by hand\n" in plain
    code, never = in_pty(*args, "--color", "never")
    assert ESC not in never
    code, forced = in_pty(*args, "--color", "always", env={"NO_COLOR": "1"})
    assert f"{ESC}31m-# edited by hand" in forced
    piped = subprocess.run([sys.executable, "-m", "renderer", *args], capture_output=True,
                           text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert piped.returncode == 2 and ESC not in piped.stdout + piped.stderr
    forced_pipe = render(*args, "--color", "always")
    assert f"{ESC}31m-# edited by hand{ESC}0m\n" in forced_pipe.out
    as_json = render(*args, "--color", "always", "--format", "json")
    assert ESC not in as_json.out and json.loads(as_json.out)["exit_code"] == 2


def test_errors_are_coloured_on_a_terminal(tree: Tree):
    code, shown = in_pty("--no-restart", "memcachd", *tree.options())
    assert code == 4
    assert shown.startswith(f"{ESC}1;31mrender: memcachd: ") and shown.count(ESC + "0m") >= 1
    code, plain = in_pty("--no-restart", "memcachd", *tree.options(), env={"NO_COLOR": "x"})
    assert code == 4 and ESC not in plain


def test_diff_context(tree: Tree):
    hand_edit(tree)

    def context_lines(*extra: str) -> list[str]:
        result = render("--noop", "--diff", "keystone", *tree.options(), *extra)
        assert result.code == 2, result.err
        return [line for line in result.out.splitlines() if line.startswith(" ")]

    assert len(context_lines()) == 6  # one changed line, three either side
    assert len(context_lines("--diff-context", "1")) == 2
    assert context_lines("--diff-context", "0") == []
    result = render("--noop", "--format", "json", "--diff-context", "0", "keystone",
                    *tree.options())
    diff, = [f["diff"] for s in json.loads(result.out)["services"] for f in s["files"]
             if f["diff"]]
    assert "-# edited by hand\n" in diff
    assert not [line for line in diff.splitlines() if line.startswith(" ")]
    bad = render("--diff-context", "-1", "keystone", *tree.options())
    assert bad.code == 64


def test_subcommand_errors_are_coloured_on_a_terminal(tree: Tree):
    args = ("lookup", "--hieradata", str(tree.hieradata), "--templates", str(tree.templates),
            "--service", "memcachd", "memcached::memory_mb")
    code, shown = in_pty(*args)
    assert code != 0 and shown.startswith(f"{ESC}1;31mrender: ") and "did you mean" in shown
    code, plain = in_pty(*args, env={"NO_COLOR": "1"})
    assert ESC not in plain and "did you mean 'memcached'" in plain
