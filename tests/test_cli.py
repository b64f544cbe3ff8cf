"""render from start to finish on a real tree: in process (``renderer.cli.main``, output
captured), and a few smoke tests in a fresh process as Puppet and cron run it
(``python -m renderer``: exit codes, a real run, --version, an error, the environment)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import Tree, render, render_process

SECRETS = ("Kst0ne-db-S3cret", "Kst0ne-rabbit-S3cret")
CONF = Path("keystone/etc/keystone/keystone.conf")


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def set_data(tree: Tree, relpath: str, key: str, value: object) -> None:
    path = tree.hieradata / "data" / relpath
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_first_run_creates_second_run_is_in_sync(tree: Tree):
    first = render("--diff", "--no-restart", "keystone", *tree.options())
    assert first.code == 2, first.err
    conf = tree.machines / CONF
    text = conf.read_text()
    assert "memcache_servers=192.0.2.21:11211,192.0.2.22:11211,inet6:[fd00::21]:11211\n" in text
    assert "memcache_pool_maxsize=20\n" in text  # the node level wins
    assert "driver=messagingv2\ndriver=log\n" in text
    assert "connection=mysql+pymysql://keystone:Kst0ne-db-S3cret@192.0.2.40/keystone" in text
    st = conf.stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o640, 201, 201)
    nspawn = (tree.host / "etc/systemd/nspawn/keystone.nspawn").read_text()
    assert "PrivateUsers=no\n" in nspawn and "Port=35357:35357\nPort=5000:5000\n" in nspawn
    assert "+memcache_servers=" in first.out and "+++ " in first.out
    assert_no_secret(first.out, first.err)
    assert "<redacted>#" in first.out

    second = render("--diff", "--no-restart", "keystone", *tree.options())
    assert (second.code, second.err) == (0, "")
    assert "---" not in second.out
    # --no-restart left the restarts owed, and the report says so
    assert second.out.endswith("render: files in sync (1 service(s)); 2 restart(s) owed\n")
    third = render("--diff", "--systemctl", "true", "keystone", *tree.options())  # units down
    assert third.code == 0 and "left stopped; it reads the new files when started" in third.out
    assert third.out.endswith("render: everything in sync (1 service(s), 8 file(s))\n")


def test_noop_reports_and_leaves_tree_byte_identical(tree: Tree):
    before = tree.snapshot()
    result = render("--noop", "--diff", "keystone", *tree.options())
    assert result.code == 2, result.err
    assert "would create" in result.out and "would restart" in result.out
    assert tree.snapshot() == before
    assert not tree.state.exists()
    assert_no_secret(result.out, result.err)
    assert render("--check", "keystone", *tree.options()).code == 2


def test_hand_edit_is_reported_by_noop_with_its_diff(tree: Tree):
    assert render("--no-restart", "keystone", *tree.options()).code == 2
    conf = tree.machines / CONF
    conf.write_text(conf.read_text().replace("expiration=3600", "expiration=7200"))
    before = tree.snapshot()
    result = render("--noop", "--diff", "keystone", *tree.options())
    assert result.code == 2
    assert "-expiration=7200\n" in result.out and "+expiration=3600\n" in result.out
    assert tree.snapshot() == before
    assert render("--no-restart", "keystone", *tree.options()).code == 2
    assert "expiration=3600" in conf.read_text()


def test_secrets_never_printed_in_any_format(tree: Tree):
    for options in (["--diff"], ["--format", "json"], ["--noop", "--diff"]):
        result = render(*options, "--no-restart", "keystone", *tree.options())
        assert_no_secret(result.out, result.err)
    set_data(tree, "services/keystone.yaml", "keystone::database::password", "N3w-db-S3cret!")
    result = render("--diff", "--no-restart", "keystone", *tree.options())
    assert result.code == 2
    assert "N3w-db-S3cret!" not in result.out
    changed = [line for line in result.out.splitlines() if line.startswith(("-conn", "+conn"))]
    assert len(changed) == 2 and changed[0][1:] != changed[1][1:]  # the HMAC tells them apart
    key = (tree.state / "hmac.key")
    assert key.stat().st_mode & 0o777 == 0o600


def test_json_report(tree: Tree):
    result = render("--format", "json", "--noop", "keystone", *tree.options())
    document = json.loads(result.out)
    assert document["exit_code"] == result.code == 2
    service = document["services"][0]
    assert service["service"] == "keystone" and service["status"] == "changed"
    assert {f["change"] for f in service["files"]} == {"create", "update"}  # update: edits
    assert {f["path"].rsplit("/", 1)[1] for f in service["files"] if f["change"] == "update"} \
        == {"securetty", "shadow"}
    # --noop says what would happen, never what was done
    assert [(p["machine"], p["unit"]) for p in service["pending"]] == [
        (None, "systemd-nspawn@keystone.service"), ("keystone", "httpd.service")]
    assert "restarts" not in service and "restart_details" not in service
    assert all(f["would_write"] and "written" not in f for f in service["files"])


def test_undefined_variable_names_template_line_and_writes_nothing(tree: Tree):
    template = tree.templates / "keystone" / "keystone.conf.j2"
    lines = template.read_text().splitlines(keepends=True)
    lines.insert(4, "verbose={{ no_such_variable }}\n")
    template.write_text("".join(lines))
    before = tree.snapshot()
    result = render("--diff", "keystone", *tree.options())
    assert result.code == 4
    assert re.fullmatch(r"render: keystone: \S+/keystone\.conf\.j2:5: undefined variable: "
                        r"'no_such_variable' is undefined\n", result.err), result.err
    assert tree.snapshot() == before


def test_missing_hiera_key_names_key_and_template_line(tree: Tree):
    template = tree.templates / "keystone" / "keystone.conf.j2"
    template.write_text(template.read_text().replace(
        "lookup('keystone::token::expiration')", "lookup('keystone::token::expiry')"))
    result = render("keystone", *tree.options())
    assert result.code == 4
    assert "keystone.conf.j2:" in result.err and "'keystone::token::expiry'" in result.err
    assert len(result.err.splitlines()) == 1


def test_one_broken_service_does_not_stop_the_others(tree: Tree):
    other = tree.templates / "cache"
    other.mkdir()
    (other / "service.yaml").write_text(
        "files:\n  - template: memcached.conf.j2\n    dest: /etc/memcached.conf\n")
    (other / "memcached.conf.j2").write_text("-p {{ lookup('openstack::memcached::port') }}\n")
    (tree.machines / "cache" / "etc").mkdir(parents=True)
    broken = tree.templates / "keystone" / "wsgi-keystone.conf.j2"
    broken.write_text("{% for x in %}\n")
    result = render("--no-restart", "keystone", "cache", "nosuch", *tree.options())
    assert result.code == 6
    errors = result.err.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith("render: keystone: ") and "wsgi-keystone.conf.j2:1:" in errors[0]
    assert errors[1].startswith("render: nosuch: ") and "unknown service 'nosuch'" in errors[1]
    assert (tree.machines / "cache/etc/memcached.conf").read_text() == "-p 11211\n"
    assert not (tree.machines / CONF).exists()


def test_missing_container_rootfs(tree: Tree):
    import shutil

    shutil.rmtree(tree.machines / "keystone")
    result = render("keystone", *tree.options())
    assert result.code == 4
    assert "machines/keystone: container rootfs does not exist: machine 'keystone' is not " \
        "provisioned yet" in result.err
    assert not (tree.host / "etc/systemd/nspawn/keystone.nspawn").exists()


def test_bad_hiera_yaml_and_bad_data(tree: Tree):
    data = tree.hieradata / "data" / "common.yaml"
    data.write_text(data.read_text() + "broken: [\n")
    result = render("keystone", *tree.options())
    assert result.code == 4
    assert "common.yaml:" in result.err and result.err.count("\n") == 1


def test_broken_hiera_yaml_fails_every_service_by_name(tree: Tree):
    (tree.hieradata / "hiera.yaml").write_text("version: 4\n")
    other = tree.templates / "other"
    other.mkdir()
    (other / "service.yaml").write_text("files:\n  - {template: t.j2, dest: /etc/t}\n")
    (other / "t.j2").write_text("x\n")
    result = render("keystone", "other", *tree.options())
    assert result.code == 4
    lines = result.err.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["keystone", "other"]
    assert all("hiera.yaml" in line for line in lines)


def test_usage_errors_exit_64(tree: Tree):
    assert render().code == 64
    assert render("--frobnicate", "keystone").code == 64
    assert render("--all", "keystone", *tree.options()).code == 64
    assert render("--format", "xml", "keystone").code == 64


def test_version_and_help():
    assert re.match(r"render \d+\.\d+", render("--version").out)
    helptext = render("--help").out
    for env in ("RENDER_HIERADATA", "RENDER_MACHINES_DIR", "RENDER_HOST_ROOT",
                "RENDER_STATE_DIR", "RENDER_TEMPLATES", "RENDER_SYSTEMCTL"):
        assert env in helptext


def roots_environment(tree: Tree) -> dict[str, str]:
    return {"RENDER_HIERADATA": str(tree.hieradata), "RENDER_TEMPLATES": str(tree.templates),
            "RENDER_MACHINES_DIR": str(tree.machines), "RENDER_HOST_ROOT": str(tree.host),
            "RENDER_STATE_DIR": str(tree.state)}


def test_path_roots_from_environment(tree: Tree, monkeypatch: pytest.MonkeyPatch):
    for name, value in roots_environment(tree).items():
        monkeypatch.setenv(name, value)  # read when render builds its parser
    result = render("--no-restart", "--all")
    assert result.code == 2, result.err
    assert (tree.machines / CONF).exists()


def test_facts_file_and_var(tree: Tree, tmp_path: Path):
    (tree.hieradata / "data" / "os").mkdir()
    (tree.hieradata / "data" / "os" / "RedHat.yaml").write_text("openstack::memcached::port: 1\n")
    facts = tmp_path / "facts.yaml"
    facts.write_text("name: controller1\nvalues:\n  os:\n    family: RedHat\n")
    render("--no-restart", "keystone", "--facts", str(facts), *tree.options())
    assert "memcache_servers=192.0.2.21:1," in (tree.machines / CONF).read_text()
    render("--no-restart", "keystone", "--var", "os.family=Debian", *tree.options())
    assert "memcache_servers=192.0.2.21:11211," in (tree.machines / CONF).read_text()


def test_shared_memcached_change_reaches_the_service(tree: Tree):
    render("--no-restart", "--all", *tree.options())
    set_data(tree, "common.yaml", "openstack::memcached::servers", ["192.0.2.99"])
    result = render("--noop", "--diff", "--all", *tree.options())
    assert result.code == 2
    assert "+memcache_servers=192.0.2.99:11211\n" in result.out
    assert "keystone.nspawn" not in result.out


# --- smoke tests: a fresh process, as Puppet's exec and cron run it ------------------------------

def test_process_real_run_then_in_sync_then_noop_of_a_hand_edit(tree: Tree, systemctl):
    fake = systemctl()
    first = render_process(*fake.options, "keystone", *tree.options())
    assert (first.code, first.err) == (2, "")
    assert "keystone: create " in first.out
    assert "keystone: restart systemd-nspawn@keystone.service (files changed)" in first.out
    assert (tree.machines / CONF).stat().st_mode & 0o7777 == 0o640
    second = render_process(*fake.options, "keystone", *tree.options())
    assert (second.code, second.err) == (0, "") and "everything in sync" in second.out
    conf = tree.machines / CONF
    conf.write_text(conf.read_text().replace("expiration=3600", "expiration=7200"))
    before = tree.snapshot(state=True)
    noop = render_process("--noop", "--diff", "keystone", *tree.options())
    assert noop.code == 2 and "+expiration=3600\n" in noop.out
    assert tree.snapshot(state=True) == before


def test_process_error_is_one_line_and_exit_4(tree: Tree):
    template = tree.templates / "keystone" / "keystone.conf.j2"
    template.write_text("{{ no_such_variable }}\n")
    result = render_process("keystone", *tree.options())
    assert result.code == 4
    assert result.err == (f"render: keystone: {template}:1: undefined variable: "
                          "'no_such_variable' is undefined\n")


def test_process_version_and_usage_error():
    version = render_process("--version")
    assert version.code == 0 and re.fullmatch(r"render \d+\.\d+\.\d+\n", version.out)
    usage = render_process("--format", "xml", "keystone")
    assert usage.code == 64 and usage.out == "" and "render: argument --format" in usage.err
    assert render_process().code == 64


def test_process_path_roots_from_environment(tree: Tree):
    result = render_process("--no-restart", "--all", env=roots_environment(tree))
    assert result.code == 2, result.err
    assert (tree.machines / CONF).exists()
