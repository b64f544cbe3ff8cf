"""cli: `render lookup` wherever it stands, reserved service names, and one way to fail on a bug
(exit 70, one line) for both commands; an unexpected exception in one service fails only it."""

from __future__ import annotations

import json

import pytest
from conftest import Tree

from renderer import cli
from renderer.errors import InternalError


def test_lookup_is_a_subcommand_wherever_it_stands(tree: Tree, capsys):
    before = tree.snapshot()
    code = cli.main(["--node", "controller1.example.com", "--hieradata", str(tree.hieradata),
                     "lookup", "keystone::cache::pool_maxsize", "--service", "keystone"])
    out = capsys.readouterr().out
    assert (code, out) == (0, "20\n")
    assert tree.snapshot() == before  # nothing rendered, written or restarted


@pytest.mark.parametrize("argv, words", [
    (["lookup", "k"], ["k"]),
    (["--node", "lookup", "lookup", "k"], ["--node", "lookup", "k"]),  # an option's value
    (["--diff", "x", "lookup"], ["--diff", "x"]),
    (["--", "lookup"], ["--", "lookup"]),
])
def test_subcommand_scan(argv, words):
    command, rest = cli.subcommand(argv, cli.build_parser())
    assert rest == words and command == (None if words == argv else "lookup")


def test_a_service_named_like_a_subcommand_is_refused(tree: Tree, capsys):
    (tree.templates / "lookup").mkdir()
    (tree.templates / "lookup" / "service.yaml").write_text("files: []\n")
    code = cli.main(["--noop", "--all", *tree.options()])
    err = capsys.readouterr().err
    assert code == 6 and "reserved" in err and err.count("\n") == 1, err


def test_an_unexpected_exception_fails_its_service_only(tree: Tree, capsys, monkeypatch):
    from renderer import runner

    real_validate = runner.validate

    def validate(rendered, masker=None):
        if any("glance" in str(r.spec.dest) for r in rendered):
            raise KeyError("boom")
        real_validate(rendered, masker)

    monkeypatch.setattr(runner, "validate", validate)
    code = cli.main(["--noop", "--format", "json", "glance", "keystone", *tree.options()])
    captured = capsys.readouterr()
    assert code == 6
    assert captured.err.startswith("render: glance: internal error: KeyError at ")
    assert captured.err.endswith("this is a bug in render, please report it with the "
                                 "command that ran\n") and captured.err.count("\n") == 1
    services = {s["service"]: s for s in json.loads(captured.out)["services"]}
    assert services["glance"]["status"] == "failed" and services["keystone"]["files"]


@pytest.mark.parametrize("argv", [["--noop", "keystone"], ["lookup", "keystone::x"]])
def test_a_bug_outside_a_service_is_one_line_and_exit_70(argv, tree: Tree, capsys,
                                                          monkeypatch):
    def broken(*args, **kwargs):
        raise AttributeError("nothing here")

    monkeypatch.setattr("renderer.runner.build_scope", broken)
    monkeypatch.setattr("renderer.scope.build_scope", broken)
    code = cli.main([*argv, *(tree.options() if argv[0] != "lookup" else
                              ["--hieradata", str(tree.hieradata)])])
    err = capsys.readouterr().err
    assert code == 70 and err.startswith("render: internal error: AttributeError at ")
    assert err.count("\n") == 1


def test_internal_error_names_where():
    try:
        {}["x"]
    except KeyError as exc:
        error = InternalError.from_exception(exc)
    assert error.exit_code == 70 and "test_commands.py:" in error.message
