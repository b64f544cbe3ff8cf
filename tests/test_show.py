"""``render show``: what it prints is what a real run writes and issues, secrets stay masked, a
planted value is traced to its level and line, ``--set`` tries a value, and nothing is touched.

The reference is a real run of the whole sample catalog into a provisioned scratch tree, with the
logging ``systemctl`` stand-in: show's files must be byte-equal with the same owner and mode, and
its commands the calls the run made.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, Tree, render
from test_golden import LINK_SUFFIX, actual_files

from renderer.services import list_services

SERVICES = list_services(REPO / "service_templates")
NODE_FILE = Path("data/nodes/controller1.example.com.yaml")


def source(tree: Tree) -> list[str]:
    """The source options only: show takes no machines dir, host root or state dir."""
    return ["--hieradata", str(tree.hieradata), "--templates", str(tree.templates),
            "--node", "controller1.example.com"]


def show(tree: Tree, *args: str) -> Any:
    result = render("show", *args, "--format", "json", *source(tree))
    assert (result.code, result.err) == (0, ""), result.err
    return json.loads(result.out)


def secrets() -> list[str]:
    data = yaml.safe_load((REPO / "hieradata/data/credentials.yaml").read_text())
    return [str(v) for k, v in data.items()
            if k != "lookup_options" and k.rsplit("::", 1)[-1] in ("password", "secret")]


def ids(root: Path, database: str) -> dict[str, int]:
    table = root / "etc" / database
    if not table.exists():
        return {}
    return {line.split(":")[0]: int(line.split(":")[2])
            for line in table.read_text().splitlines() if line}


def on_disk(tree: Tree, entry: dict[str, Any]) -> Path:
    kind, machine, dest = entry["target"].split(":", 2)
    root = tree.machines / machine if kind == "container" else tree.host
    return root / dest.lstrip("/")


EDITS = ("link", "line", "password")


def edited(path: Path, kind: str, argument: str) -> bool:
    """What a link, line or password entry shown with ``argument`` left at ``path``."""
    if kind == "link":
        return os.readlink(path) == argument
    lines = path.read_text().splitlines()
    if kind == "line":
        return argument.rstrip("\n") in lines
    return f"root:{argument.strip()}" in [":".join(line.split(":")[:2]) for line in lines]


def test_show_json_is_what_a_real_run_writes_and_issues(tree: Tree, systemctl):
    fake = systemctl()
    real = render(*fake.options, "--all", *tree.options())
    assert (real.code, real.err) == (2, "")
    written = set(actual_files(tree))
    shown_paths = set()
    commands: set[str] = set()
    prefix = fake.command[0] + " "
    for service in SERVICES:
        doc = show(tree, service, "--show-secrets", "--systemctl", fake.command[0])
        assert doc["service"] == service and doc["files"]
        for entry in doc["files"]:
            path = on_disk(tree, entry)
            if entry["template"] in EDITS:  # the edit's argument; owner and mode are kept
                shown_paths.add(str(path.relative_to(tree.base)) + (
                    LINK_SUFFIX if entry["template"] == "link" else ""))
                assert edited(path, entry["template"], entry["content"]), entry["path"]
                continue
            shown_paths.add(str(path.relative_to(tree.base)))
            assert path.read_bytes() == entry["content"].encode(), entry["path"]
            info = path.stat()
            assert f"{info.st_mode & 0o7777:04o}" == entry["mode"], entry["path"]
            root = tree.machines / entry["machine"] if entry["machine"] else tree.host
            assert info.st_uid == ids(root, "passwd").get(entry["owner"], 0), entry["path"]
            assert info.st_gid == ids(root, "group").get(entry["group"], 0), entry["path"]
            assert entry["path"].endswith(entry["dest"])
            for command in entry["commands"]:
                assert command.startswith(prefix)
        commands.update(c.removeprefix(prefix) for c in doc["commands"])
    assert shown_paths == written  # every file the run wrote, and no other
    # every call the run made is a command show prints, and each of show's was made or is the
    # unit restart a container restart (due for another service) absorbed
    calls = set(fake.calls())
    assert calls <= commands, calls - commands
    absorbed = {c for c in commands - calls if c.startswith("--machine=")}
    assert commands - calls == absorbed
    for command in absorbed:
        machine = command.split()[0].split("=", 1)[1]
        assert f"try-restart systemd-nspawn@{machine}.service" in calls


def test_commands_are_the_literal_systemctl_lines(tree: Tree):
    doc = show(tree, "keystone")
    by_dest = {f["dest"]: f for f in doc["files"]}
    assert by_dest["/etc/httpd/conf.d/wsgi-keystone.conf"]["commands"] == [
        "systemctl --machine=keystone try-restart httpd.service"]
    assert by_dest["/etc/keystone/keystone.conf"]["commands"] == [
        "systemctl try-restart systemd-nspawn@keystone.service"]
    assert by_dest["/etc/keystone/keystone.conf"]["path"] == \
        "/var/lib/machines/keystone/etc/keystone/keystone.conf"
    assert by_dest["/etc/systemd/nspawn/keystone.nspawn"]["path"] == \
        "/etc/systemd/nspawn/keystone.nspawn"
    # the container restart absorbs httpd's: a run issues it alone
    assert doc["commands"] == ["systemctl try-restart systemd-nspawn@keystone.service"]
    neutron = show(tree, "neutron")
    agent = "systemctl --machine=neutron-agents try-restart neutron-metadata-agent.service"
    assert agent not in neutron["commands"]  # absorbed by the container restart, as the run does
    assert any(agent in f["commands"] for f in neutron["files"])


@pytest.mark.parametrize("fmt", ["text", "json", "yaml"])
def test_no_secret_without_show_secrets(tree: Tree, fmt: str):
    hidden = secrets()
    assert len(hidden) > 10
    seen = ""
    for service in SERVICES:
        masked = render("show", service, "--format", fmt, *source(tree))
        assert masked.code == 0, masked.err
        leaked = [s for s in hidden if s in masked.out + masked.err]
        assert not leaked, (service, leaked)
        if service in ("keystone", "nova", "glance"):
            assert "<redacted>#" in masked.out, service
        clear = render("show", service, "--format", fmt, "--show-secrets", *source(tree))
        assert clear.code == 0, clear.err
        seen += clear.out
    assert [s for s in hidden if s in seen]  # root with --show-secrets sees them
    assert "Kst0ne-db-S3cret" in seen


def test_show_secrets_is_for_root_only(tree: Tree, tmp_path_factory: pytest.TempPathFactory):
    """Run as the real user nobody, from a copy of the package nobody can read (a fresh clone
    lives in a 0700 directory), with Debian's python3 (the venv's may live under /root)."""
    import shutil
    import tempfile

    public = Path(tempfile.mkdtemp(prefix="render-show-", dir="/tmp"))
    try:
        public.chmod(0o755)
        shutil.copytree(REPO / "renderer", public / "renderer",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for path in public.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                   "/usr/bin/python3", "-m", "renderer", "show", "keystone", "--show-secrets",
                   *source(tree)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=public, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(public),
                                   "PYTHONDONTWRITEBYTECODE": "1"})
    finally:
        shutil.rmtree(public)
    assert done.returncode == 64 and done.stdout == "", done.stderr
    assert done.stderr == "render: --show-secrets is for root only\n"


def test_a_planted_value_is_traced_to_its_level_and_line(tree: Tree):
    node = tree.hieradata / NODE_FILE
    text = node.read_text()
    line = text.count("\n") + 1
    node.write_text(text + "keystone::token::expiration: 7\n"
                    "glance::config::glance-api.conf:\n  DEFAULT:\n    image_tag_quota: 3\n")
    doc = show(tree, "keystone")
    entry = next(k for k in doc["keys"] if k["key"] == "keystone::token::expiration")
    assert (entry["value"], entry["level"], entry["file"], entry["line"], entry["merge"]) == \
        (7, "Per node", str(node), line, "first")
    conf = next(f for f in doc["files"] if f["dest"] == "/etc/keystone/keystone.conf")
    assert "\nexpiration=7\n" in conf["content"]
    assert conf["commands"] == ["systemctl try-restart systemd-nspawn@keystone.service"]
    # a deep-merged override: which level set each option, at which line
    override = next(k for k in doc["keys"] if k["key"] == '"keystone::config::keystone.conf"')
    assert override["merge"] == "deep" and override["via"] == "override"
    options = {(o["section"], o["option"]): o for o in override["options"]}
    assert options[("DEFAULT", "max_token_size")]["level"] == "Per node"
    assert options[("DEFAULT", "max_token_size")]["line"] == \
        text.splitlines().index("    max_token_size: 300") + 1
    service_file = tree.hieradata / "data/services/keystone.yaml"
    policy = options[("oslo_policy", "policy_file")]
    assert (policy["level"], policy["file"]) == ("Per service", str(service_file))
    assert policy["line"] == service_file.read_text().splitlines().index(
        "    policy_file: policy.yaml") + 1
    glance = show(tree, "glance")
    workers = next(o for k in glance["keys"] for o in k.get("options", ())
                   if o["option"] == "image_tag_quota")
    assert (workers["value"], workers["level"], workers["line"]) == (3, "Per node", line + 3)


def test_set_changes_the_file_and_is_shown_as_the_source(tree: Tree):
    doc = show(tree, "keystone", "--set", "keystone::token::expiration=42",
               "--set", 'keystone::config::keystone.conf={"DEFAULT": {"debug": true}}',
               "--set", "keystone::token::provider=jws")
    conf = next(f for f in doc["files"] if f["dest"] == "/etc/keystone/keystone.conf")["content"]
    assert "\nexpiration=42\n" in conf and "\nprovider=jws\n" in conf
    assert "\ndebug=True\n" in conf and "\nmax_token_size=300\n" in conf  # merged on top
    keys = {k["key"]: k for k in doc["keys"]}
    assert (keys["keystone::token::expiration"]["level"],
            keys["keystone::token::expiration"]["value"]) == ("--set", 42)
    options = {(o["section"], o["option"]): o["level"]
               for o in keys['"keystone::config::keystone.conf"']["options"]}
    assert options[("DEFAULT", "debug")] == "--set"
    assert options[("DEFAULT", "max_token_size")] == "Per node"
    # a dotted lookup digs into a --set value (network::networks.mgmt from network::networks)
    net = show(tree, "keystone", "--set", 'network::networks={"mgmt": {"cidr": "10.0.0.0/8"}}',
               "--file", "/etc/systemd/network/10-mv-mv-mgmt.network")
    assert "\nAddress=192.0.2.11/8\n" in net["files"][0]["content"]
    assert {k["key"]: k["level"] for k in net["keys"]}["network::networks.mgmt"] == "--set"
    # a secret set on the command line is masked like one from the data
    masked = render("show", "keystone", "--set", "keystone::database::password=Tr1ed-s3cret",
                    *source(tree))
    assert masked.code == 0 and "Tr1ed-s3cret" not in masked.out
    bad = render("show", "keystone", "--set", "novalue", *source(tree))
    assert (bad.code, bad.err) == (64, "render: --set: expected KEY=VALUE, not 'novalue'\n")


def test_file_shows_one_file(tree: Tree):
    doc = show(tree, "keystone", "--file", "/etc/httpd/conf.d/wsgi-keystone.conf")
    assert [f["dest"] for f in doc["files"]] == ["/etc/httpd/conf.d/wsgi-keystone.conf"]
    missing = render("show", "keystone", "--file", "/etc/nope.conf", *source(tree))
    assert missing.code == 4 and missing.out == "" and missing.err.count("\n") == 1
    assert "renders no file /etc/nope.conf (its files: /etc/keystone/keystone.conf" \
        in missing.err


def test_yaml_and_text_formats(tree: Tree, tmp_path: Path):
    seed = tmp_path / "seed"
    seed.write_bytes(b"a host secret")
    seed.chmod(0o600)  # masks derived from it are the same on every show (a random key is not)
    doc = show(tree, "keystone", "--key-source", str(seed))
    as_yaml = render("show", "keystone", "--format", "yaml", "--key-source", str(seed),
                     *source(tree))
    assert as_yaml.code == 0
    assert yaml.safe_load(as_yaml.out) == doc
    text = render("show", "keystone", *source(tree))
    assert text.code == 0 and text.err == ""
    node = tree.hieradata / NODE_FILE
    assert "## file /var/lib/machines/keystone/etc/keystone/keystone.conf\n" in text.out
    assert "#  owner keystone  group keystone  mode 0640\n" in text.out
    assert "#  on change: systemctl --machine=keystone try-restart httpd.service\n" in text.out
    line = node.read_text().splitlines().index("keystone::cache::pool_maxsize: 20") + 1
    assert f"keystone::cache::pool_maxsize  [first, template]  20  Per node {node}:{line}\n" \
        in text.out
    assert f"    [DEFAULT] max_token_size = 300  Per node {node}:" in text.out
    assert text.out.endswith("## commands (a run that changes every file)\n"
                             "systemctl try-restart systemd-nspawn@keystone.service\n")


def test_show_touches_nothing(tree: Tree, tmp_path: Path):
    state = tmp_path / "state"
    before = tree.snapshot(state=True)
    stamps = {p: p.stat().st_mtime_ns for p in tree.base.rglob("*")}
    for service in SERVICES:
        assert render("show", service, *source(tree)).code == 0
    assert render("show", "keystone", "--state-dir", str(state), *source(tree)).code == 0
    assert not state.exists()  # no key, no lock, no cache written
    assert tree.snapshot(state=True) == before
    assert {p: p.stat().st_mtime_ns for p in tree.base.rglob("*")} == stamps
    # no machines dir nor host root needed
    for top in (tree.machines, tree.host):
        subprocess.run(["rm", "-rf", str(top)], check=True)
    assert render("show", "keystone", *source(tree)).code == 0
    assert not tree.machines.exists() and not tree.host.exists()


def test_errors_are_one_line_exit_4(tree: Tree):
    unknown = render("show", "nosuch", *source(tree))
    assert unknown.code == 4 and unknown.out == "" and unknown.err.count("\n") == 1
    assert unknown.err.startswith("render: ")
    (tree.hieradata / "data/services/keystone.yaml").write_text(
        "\n".join(line for line in (tree.hieradata / "data/services/keystone.yaml")
                  .read_text().splitlines() if not line.startswith("keystone::token::provider")))
    missing = render("show", "keystone", *source(tree))
    assert missing.code == 4 and missing.out == "" and missing.err.count("\n") == 1
    assert "keystone::token::provider" in missing.err and "Traceback" not in missing.err


def test_every_missing_key_in_one_show_as_in_one_run(tree: Tree):
    data = tree.hieradata / "data/services/keystone.yaml"
    gone = ("keystone::token::provider", "keystone::token::expiration")
    data.write_text("\n".join(line for line in data.read_text().splitlines()
                              if not line.startswith(gone)) + "\n")
    shown = render("show", "keystone", *source(tree))
    run = render("--noop", "keystone", *tree.options())
    assert (shown.code, run.code) == (4, 4) and shown.out == ""
    assert shown.err.count("\n") == 2 and all(key in shown.err for key in gone)
    assert all(line in run.err for line in shown.err.splitlines())


def test_a_bad_override_fails_show_as_it_fails_a_run(tree: Tree):
    node = tree.hieradata / NODE_FILE
    node.write_text(node.read_text() + "glance::config::glance-api.conf:\n  nosuch:\n    x: 1\n")
    shown = render("show", "glance", *source(tree))
    run = render("--noop", "glance", *tree.options())
    assert (shown.code, run.code) == (4, 4) and shown.out == ""
    line = node.read_text().splitlines().index("  nosuch:") + 1
    assert shown.err == f"render: glance: {node}:{line}: glance::config::glance-api.conf: " \
        "section [nosuch] is not in /etc/glance/glance-api.conf: its template does not render " \
        "it nor does any oslo.config namespace of it\n"
    assert shown.err in run.err


def test_state_dir_key_gives_the_masks_of_run_reports(tree: Tree, systemctl):
    fake = systemctl()
    assert render(*fake.options, "keystone", *tree.options()).code == 2
    key = tree.state / "hmac.key"
    assert key.exists()
    before = tree.snapshot(state=True)
    credentials = tree.hieradata / "data/credentials.yaml"
    credentials.write_text(credentials.read_text().replace("Kst0ne-db-S3cret", "N3w-db-S3cret"))
    diff = render("--noop", "--diff", "keystone", *tree.options())
    tags = {line.split("keystone:", 1)[1].split("@")[0] for line in diff.out.splitlines()
            if line.startswith("+connection=")}
    assert len(tags) == 1 and "<redacted>#" in next(iter(tags)), diff.out
    doc = show(tree, "keystone", "--state-dir", str(tree.state))
    conf = next(f for f in doc["files"] if f["dest"] == "/etc/keystone/keystone.conf")
    assert f"\nconnection=mysql+pymysql://keystone:{next(iter(tags))}@" in conf["content"]
    assert "N3w-db-S3cret" not in json.dumps(doc)
    assert tree.snapshot(state=True) == before  # the state dir read, never written
