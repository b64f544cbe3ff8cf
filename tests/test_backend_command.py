"""Command backends (renderer.hiera.command): ``--backend 'LEVEL=command:PROG [ARGS]'`` reads a
level render cannot run (a Vault lookup_key function, a site's own data_hash) from a real
program: per key for lookup_key, the whole hash for data_hash; every value a secret; failures in
one line; and a run that used one is never answered by the fast path."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from conftest import REPO, Tree, render

from renderer import bounds, fastpath
from renderer import lookup as lookup_command
from renderer.hiera import command

NODE = "node1.example.com"
SECRET = "Vault-S3cret-"

VAULT = f"""#!{sys.executable}
import json, os, sys
key = sys.argv[-1]
scope = json.load(open(os.environ["RENDER_HIERA_SCOPE"]))
with open(sys.argv[1], "a") as log:
    log.write(key + "\\n")
if key == "db_password":
    print(json.dumps("{SECRET}" + scope["trusted"]["certname"]))
elif key == "seen":
    print(json.dumps({{"options": json.loads(os.environ["RENDER_HIERA_OPTIONS"]),
                      "level": os.environ["RENDER_HIERA_LEVEL"],
                      "function": os.environ["RENDER_HIERA_FUNCTION"],
                      "os": scope["facts"]["os"]["family"],
                      "mode": oct(os.stat(os.environ["RENDER_HIERA_SCOPE"]).st_mode & 0o777)}}))
elif key == "fail":
    print("{SECRET}in-stdout")
    print("vault: permission denied", file=sys.stderr)
    sys.exit(2)
elif key == "json":
    print("{SECRET}not-json")
elif key == "big":
    print(json.dumps("x" * 5000))
elif key == "slow":
    import time
    time.sleep(60)
else:
    sys.exit(3)
"""

CMDB = """#!/bin/sh
echo "$RENDER_HIERA_OPTIONS" >> "$1"
printf '%s' '{"cmdb::host": "%{trusted.certname}", "cmdb::list": [1, "two"], "plain": "cmdb"}'
"""

HIERA = """version: 5
hierarchy:
  - name: vault
    lookup_key: hiera_vault
    options:
      mount: "secret/%{trusted.certname}"
  - name: cmdb
    data_hash: cmdb_data
    path: "cmdb/%{trusted.certname}.conf"
  - name: common
    data_hash: yaml_data
    path: common.yaml
"""


def _site(root: Path) -> tuple[Path, list[str]]:
    (root / "data" / "cmdb").mkdir(parents=True)
    (root / "hiera.yaml").write_text(HIERA)
    (root / "data" / "cmdb" / f"{NODE}.conf").write_text("kept by the cmdb\n")
    (root / "data" / "common.yaml").write_text(
        "plain: common\nurl: \"db://%{lookup('db_password')}@h\"\n"
        "fail_too: \"%{lookup('fail')}\"\n")
    vault, cmdb = root / "vault.py", root / "cmdb.sh"
    vault.write_text(VAULT)
    cmdb.write_text(CMDB)
    vault.chmod(0o755)
    backends = ["--backend", f"vault=command:{vault} {root / 'vault.log'}",
                "--backend", f"cmdb=command:sh {cmdb} {root / 'cmdb.log'}"]
    return root, ["--hieradata", str(root), "--node", NODE, *backends]


def _lookup(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = lookup_command.main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_a_lookup_key_command_answers_per_key_and_a_data_hash_command_once(tmp_path: Path):
    root, options = _site(tmp_path)
    assert _lookup(*options, "db_password") == (0, f'"{SECRET}{NODE}"\n', "")
    code, out, err = _lookup(*options, "seen")
    assert code == 0, err
    seen = json.loads(out)
    assert seen["options"] == {"mount": f"secret/{NODE}"}  # interpolated, no path: none
    assert seen["level"] == "vault" and seen["function"] == "hiera_vault"
    assert seen["mode"] == "0o600" and seen["os"]
    # not found in vault (exit 3): the data_hash command's hash, its values interpolated
    assert _lookup(*options, "cmdb::host") == (0, f'"{NODE}"\n', "")
    assert _lookup(*options, "plain", "--merge", "unique") == (0, '["cmdb","common"]\n', "")
    assert _lookup(*options, "cmdb::list.1") == (0, '"two"\n', "")
    assert _lookup(*options, "nothing")[0] == 1
    calls = (root / "vault.log").read_text().splitlines()
    assert calls.count("lookup_options") == 6 and calls.count("plain") == 1  # once per run
    cmdb = [json.loads(line) for line in (root / "cmdb.log").read_text().splitlines()]
    assert cmdb[0] == {"path": str(root / "data" / "cmdb" / f"{NODE}.conf")}  # Puppet's path
    assert len(cmdb) == 6  # once per run: each run's lookup_options read every level


def test_answers_are_kept_for_the_run(tmp_path: Path):
    from renderer import sources
    from renderer.scope import build_scope

    root, options = _site(tmp_path)
    args = lookup_command.build_parser().parse_args([*options, "x"])
    hiera = sources.from_args(args).load()
    scope = build_scope(NODE, None, [])
    for _ in range(3):
        assert hiera.lookup("url", scope) == f"db://{SECRET}{NODE}@h"
        assert hiera.lookup("cmdb::host", scope.with_variables(service="s")) == NODE
    assert (root / "vault.log").read_text().splitlines() == ["lookup_options", "url",
                                                             "db_password", "cmdb::host"]
    assert len((root / "cmdb.log").read_text().splitlines()) == 1
    assert f"{SECRET}{NODE}" in hiera.secrets and NODE not in hiera.secrets


def test_a_data_hash_command_is_not_run_for_a_location_that_does_not_exist(tmp_path: Path):
    root, options = _site(tmp_path)
    (root / "data" / "cmdb" / f"{NODE}.conf").unlink()
    assert _lookup(*options, "plain") == (0, '"common"\n', "")
    assert not (root / "cmdb.log").exists()


@pytest.mark.parametrize(("key", "expected"), [
    ("fail", "key 'fail': the command failed (exit status 2): vault: permission denied"),
    ("json", "key 'json': the command printed no JSON value (line 1 column 1)"),
    ("big", "key 'big': the command printed more than 4.0 KiB"),
    ("slow", "key 'slow': the command gave no answer in 0.5 s"),
    ("fail_too", "key 'fail': the command failed (exit status 2)"),
])
def test_a_failing_command_is_one_line_naming_level_and_key_never_a_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, expected: str):
    monkeypatch.setattr(bounds, "MAX_FILE", 4096)
    monkeypatch.setattr(command, "COMMAND_SECONDS", 0.5)
    _, options = _site(tmp_path)
    code, out, err = _lookup(*options, key)
    assert (code, out) == (4, "")
    assert err.startswith("render: hierarchy 'vault' (--backend vault=command:")
    assert expected in err and err.count("\n") == 1, err
    assert SECRET not in err


def test_explain_masks_every_value_a_command_gave(tmp_path: Path):
    _, options = _site(tmp_path)
    code, out, err = _lookup(*options, "--explain", "url")
    assert code == 0, err
    assert 'Hierarchy entry "vault"\n      Found key: "db_password" value: "Sensitive [value ' \
        'redacted]"' in out, out  # no path: a level without locations
    assert 'Path ""' not in out
    assert SECRET not in out + err
    code, out, _ = _lookup(*options, "--explain", "cmdb::host")
    assert 'Found key: "cmdb::host" value: "Sensitive [value redacted]"' in out, out
    assert f'Result for "cmdb::host": "{NODE}"' not in out


def test_bad_backend_choices_are_usage_errors(tmp_path: Path):
    root, options = _site(tmp_path)
    for choice, expected in (("vault=command:", "the command is empty"),
                             ("vault=command:'a", "No closing quotation"),
                             ("vault=vault", "expected LEVEL=skip or LEVEL=command:PROG")):
        code, _, err = _lookup("--hieradata", str(root), "--backend", choice, "plain")
        assert code == 64 and expected in err, err
    code, _, err = _lookup("--hieradata", str(root), "plain")
    assert code == 4 and "--backend 'vault=command:PROG' reads it from a command" in err
    (root / "hiera.yaml").write_text(HIERA.replace("lookup_key: hiera_vault",
                                                   "data_dig: vault_dig"))
    code, _, err = _lookup(*options, "plain")
    assert code == 4 and "reads data_hash and lookup_key levels only" in err, err


# --- render itself --------------------------------------------------------------------------------

DRIVERS = """#!/bin/sh
echo "$1" >> "$0.log"
case "$1" in
  keystone::notification_drivers) echo '["messagingv2", "Vault-Driver-S3cret"]';;
  *) exit 3;;
esac
"""


def _vault_tree(base: Path) -> str:
    """A vault lookup_key level at the top of the sample hierarchy; the --backend value."""
    hiera = base / "hieradata" / "hiera.yaml"
    hiera.write_text(hiera.read_text().replace(
        "hierarchy:\n", "hierarchy:\n  - name: vault\n    lookup_key: hiera_vault\n"
        "    options: {mount: openstack}\n", 1))
    script = base / "drivers.sh"
    script.write_text(DRIVERS)
    return f"vault=command:sh {script}"


def test_render_masks_command_values_in_diffs_and_json(tree: Tree,
                                                       monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RENDER_BACKEND", _vault_tree(tree.base))  # the same option, by env
    result = render("keystone", "--diff", *tree.options(), "--no-restart")
    assert result.code == 2, result.err
    conf = tree.machines / "keystone" / "etc" / "keystone" / "keystone.conf"
    assert "driver=Vault-Driver-S3cret\n" in conf.read_text()
    assert "+driver=<redacted>#" in result.out and "Vault-Driver-S3cret" not in result.out
    conf.write_text(conf.read_text().replace("driver=Vault-Driver-S3cret", "driver=old"))
    json_run = render("keystone", "--diff", "--format", "json", "--noop", *tree.options())
    assert json_run.code == 2 and "<redacted>#" in json_run.out, json_run.err
    assert "Vault-Driver-S3cret" not in json_run.out + json_run.err
    assert "keystone::notification_drivers" in (tree.base / "drivers.sh.log").read_text()


def test_render_bundle_keeps_command_values_sensitive(tree: Tree, tmp_path: Path):
    from renderer import bundle
    from renderer.scope import Scope

    choice = _vault_tree(tree.base)
    out = tmp_path / "b.json"
    made = render("bundle", "keystone", "--hieradata", str(tree.hieradata), "--templates",
                  str(tree.templates), "--node", "controller1.example.com", "--backend",
                  choice, "--output", str(out))
    assert made.code == 0, made.err
    answers = json.loads(out.read_text())["services"]["keystone"]["answers"]
    key = bundle.answer_key("lookup", "keystone::notification_drivers", None,
                            Scope({}, {}, {"service": "keystone", "machine": "keystone"}))
    assert answers[key] == {"found": True,
                            "value": {"a": [{"s": "messagingv2"},
                                            {"s": "Vault-Driver-S3cret"}]}}
    plain = bundle.answer_key("lookup", "keystone::debug", None,
                              Scope({}, {}, {"service": "keystone", "machine": "keystone"}))
    assert answers[plain] == {"found": True, "value": False}


@pytest.mark.slow
def test_a_run_that_used_a_command_is_never_answered_by_the_fast_path(tree: Tree):
    choice = _vault_tree(tree.base)
    marker = tree.base / "marker"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RENDER_DEBUG_FASTPATH": str(marker),
           "RENDER_CONFIG": str(tree.base / "none.conf"), "RENDER_BACKEND": choice}
    (tree.base / "none.conf").write_text("[render]\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "renderer", "keystone", *args,
                               *tree.options(), "--state-dir", str(tree.base / "state")],
                              capture_output=True, text=True, timeout=120, env=env,
                              check=False)

    log = tree.base / "drivers.sh.log"
    assert run("--systemctl", "true").returncode == 2
    time.sleep(fastpath.GRANULARITY_NS / 1e9 + 0.1)  # out of the racy window
    assert run("--systemctl", "true").returncode == 0
    asked = log.read_text().count("keystone::notification_drivers")
    done = run("--noop")
    assert done.returncode == 0, done.stdout + done.stderr
    assert marker.read_text().splitlines()[-1] != "hit"
    assert log.read_text().count("keystone::notification_drivers") == asked + 1  # asked again


def test_lookup_options_from_a_command_are_never_shared_between_scopes(tmp_path: Path):
    """A command level's lookup_options are its answer, not its path file's (valid YAML here,
    without any): two scopes whose variables its values interpolate differently never share
    one compiled set (renderer.hiera.options.shared_key)."""
    from renderer.hiera import Hiera
    from renderer.scope import build_scope

    prog = tmp_path / "options.py"
    prog.write_text(f"""#!{sys.executable}
import json
print(json.dumps({{"lookup_options": {{"k": {{"merge": "%{{how}}"}}}}}}))
""")
    prog.chmod(0o755)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "site.yaml").write_text("{}\n")
    (tmp_path / "data" / "common.yaml").write_text("k: [2]\n")
    (tmp_path / "data" / "first.yaml").write_text("k: [1]\n")
    (tmp_path / "hiera.yaml").write_text(
        "version: 5\nhierarchy:\n  - {name: site, data_hash: site_data, path: site.yaml}\n"
        "  - {name: first, path: first.yaml}\n  - {name: common, path: common.yaml}\n")
    hiera = Hiera.load(tmp_path / "hiera.yaml", backends={"site": f"command:{prog}"})
    scope = build_scope(NODE, None, [])
    assert hiera.lookup("k", scope.with_variables(how="unique")) == [1, 2]
    assert hiera.lookup("k", scope.with_variables(how="first")) == [1]
