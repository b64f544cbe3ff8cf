"""Restarts against a real systemd, booted as PID 1 in a private PID+mount namespace.

The stand-in ``systemd-nspawn@.service`` counts its starts in /run/render-test/starts-<machine>
(inside the namespace), so "restarted exactly once" is counted, not inferred.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import Tree, render
from demo_machines import provision
from systemd_ns import NamespacedSystemd, boot, fail_once_unit, failing_unit

pytestmark = [pytest.mark.systemd, pytest.mark.slow]

UNIT = "systemd-nspawn@keystone.service"
COUNTING_NSPAWN = """\
[Unit]
Description=stand-in for systemd-nspawn container %i
DefaultDependencies=no

[Service]
ExecStartPre=/bin/sh -c 'echo start >> /run/render-test/starts-%i'
ExecStart=/bin/sleep infinity
"""


@pytest.fixture
def tree(tree: Tree) -> Tree:
    """keystone without its httpd vhost: ``systemctl --machine=keystone`` needs a container
    registered with machined, which the namespaced systemd has not; these tests count container
    restarts (in-container units are counted by tests/test_catalog.py)."""
    path = tree.templates / "keystone" / "service.yaml"
    definition = yaml.safe_load(path.read_text())
    definition["files"] = [f for f in definition["files"]
                           if f["template"] != "wsgi-keystone.conf.j2"]
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return tree


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[NamespacedSystemd]:
    ns = boot(tmp_path / "systemd", {"systemd-nspawn@.service": COUNTING_NSPAWN})
    try:
        yield ns
    finally:
        ns.stop()


def starts(ns: NamespacedSystemd) -> int:
    path = ns.run_path("starts-keystone")
    return len(path.read_text().splitlines()) if path.exists() else 0


def render_with(ns: NamespacedSystemd, tree: Tree, *args: str):
    return render("--systemctl", ns.systemctl_prefix, *args, "keystone", *tree.options())


def edit(tree: Tree, **values: object) -> None:
    path = tree.hieradata / "data" / "services" / "keystone.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(values)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_restart_once_per_run_only_when_changed(systemd: NamespacedSystemd, tree: Tree):
    systemd.systemctl("start", UNIT)
    assert starts(systemd) == 1
    first_pid = systemd.main_pid(UNIT)

    result = render_with(systemd, tree)  # creates three files, all restart the container
    assert result.code == 2, result.err
    assert "restart systemd-nspawn@keystone.service" in result.out
    assert starts(systemd) == 2
    second_pid = systemd.main_pid(UNIT)
    assert second_pid not in (0, first_pid)

    # two files of the service change (keystone.conf and keystone.nspawn): one restart
    edit(tree, **{"keystone::token::expiration": 7200,
                  "network::container_defaults": {"private_users": True, "private_network": True,
                                                  "binds": [], "networks": {}, "ports": []}})
    result = render_with(systemd, tree)
    assert result.code == 2, result.err
    assert result.out.count("update ") == 2
    assert starts(systemd) == 3
    assert systemd.main_pid(UNIT) not in (0, second_pid)

    # nothing changed: nothing restarts
    third_pid = systemd.main_pid(UNIT)
    result = render_with(systemd, tree)
    assert (result.code, result.err) == (0, "")
    assert starts(systemd) == 3 and systemd.main_pid(UNIT) == third_pid


def test_stopped_container_stays_stopped(systemd: NamespacedSystemd, tree: Tree):
    result = render_with(systemd, tree)
    assert result.code == 2, result.err
    assert systemd.active_state(UNIT) == "inactive"
    edit(tree, **{"keystone::token::expiration": 60})
    assert render_with(systemd, tree).code == 2
    assert systemd.active_state(UNIT) == "inactive"
    assert starts(systemd) == 0


def test_noop_and_no_restart_restart_nothing(systemd: NamespacedSystemd, tree: Tree):
    systemd.systemctl("start", UNIT)
    assert render_with(systemd, tree, "--noop").code == 2
    assert render_with(systemd, tree, "--no-restart").code == 2
    assert starts(systemd) == 1


CONF = "machines/keystone/etc/keystone/keystone.conf"
COUNT = "ExecStartPre=/bin/sh -c 'echo start >> /run/render-test/starts-%i'\n"
FAIL_ONCE = fail_once_unit("fail-next-%i").replace("[Service]\n", "[Service]\n" + COUNT)


def state_files(tree: Tree) -> dict[str, bytes]:
    return {str(p.relative_to(tree.state)): p.read_bytes()
            for p in sorted(tree.state.rglob("*")) if p.is_file()}


def unit_record(tree: Tree) -> dict:
    document = json.loads((tree.state / "services" / "keystone.json").read_text())
    return document["units"][f"container:-:{UNIT}"]


def test_failing_restart_rolls_back_then_fixed_unit_restarts(systemd: NamespacedSystemd,
                                                             tree: Tree):
    systemd.systemctl("start", UNIT)
    assert render_with(systemd, tree).code == 2
    good = (tree.base / CONF).read_bytes()
    recorded = unit_record(tree)

    systemd.add_unit("systemd-nspawn@.service", failing_unit())  # exits 1 on every start
    edit(tree, **{"keystone::token::expiration": 60})
    result = render_with(systemd, tree)
    assert result.code == 4, (result.out, result.err)
    assert result.err.startswith(f"render: keystone: {UNIT}: restart failed: unit is failed; "
                                 "rolled back 1 file(s)"), result.err
    assert len(result.err.splitlines()) == 1
    assert (tree.base / CONF).read_bytes() == good           # rolled back, by content
    assert f"rolled back {tree.base / CONF}" in result.out
    assert unit_record(tree)["hash"] == recorded["hash"]     # the new config is not recorded
    assert unit_record(tree)["down"] is True
    assert systemd.active_state(UNIT) == "failed"

    systemd.add_unit("systemd-nspawn@.service", COUNTING_NSPAWN)  # the fix
    before = starts(systemd)
    result = render_with(systemd, tree)
    assert result.code == 2, (result.out, result.err)
    assert b"expiration=60" in (tree.base / CONF).read_bytes()
    assert systemd.active_state(UNIT) == "active" and starts(systemd) == before + 1
    assert "down" not in unit_record(tree)
    assert render_with(systemd, tree).code == 0


def test_fail_once_after_a_write_restores_and_next_run_restarts(systemd: NamespacedSystemd,
                                                                tree: Tree):
    systemd.add_unit("systemd-nspawn@.service", FAIL_ONCE)
    systemd.systemctl("start", UNIT)
    assert render_with(systemd, tree).code == 2
    good = (tree.base / CONF).read_bytes()
    edit(tree, **{"keystone::token::expiration": 60})
    systemd.run_path("fail-next-keystone").touch()
    result = render_with(systemd, tree)
    assert result.code == 4, (result.out, result.err)
    assert "restarted again: unit is active" in result.err
    assert (tree.base / CONF).read_bytes() == good
    assert systemd.active_state(UNIT) == "active"  # back up, with the old files

    result = render_with(systemd, tree)
    assert result.code == 2 and "restart systemd-nspawn@keystone.service (files changed)" \
        in result.out, (result.out, result.err)
    assert b"expiration=60" in (tree.base / CONF).read_bytes()
    assert render_with(systemd, tree).code == 0


def test_failed_retry_leaves_restart_owed_next_run_restarts_without_file_change(
        systemd: NamespacedSystemd, tree: Tree):
    systemd.add_unit("systemd-nspawn@.service", FAIL_ONCE)
    systemd.systemctl("start", UNIT)
    assert render_with(systemd, tree).code == 2
    edit(tree, **{"keystone::token::expiration": 60})
    assert render_with(systemd, tree, "--no-restart").code == 2  # written, restart owed
    written = tree.snapshot()

    systemd.run_path("fail-next-keystone").touch()
    count = starts(systemd)
    result = render_with(systemd, tree)
    assert result.code == 4, (result.out, result.err)
    assert result.err == (f"render: keystone: {UNIT}: restart failed: unit is failed; no file "
                          "written by this run to roll back; the next run restarts it again\n")
    assert starts(systemd) == count + 1 and systemd.active_state(UNIT) == "failed"
    assert tree.snapshot() == written

    result = render_with(systemd, tree)  # no file changes, the restart is still owed
    assert result.code == 2, (result.out, result.err)
    assert "0 file(s) changed, 1 restart(s)" in result.out
    assert tree.snapshot() == written
    assert systemd.active_state(UNIT) == "active" and starts(systemd) == count + 2
    assert render_with(systemd, tree).code == 0


def test_first_run_on_a_tree_in_sync_records_without_restart(systemd: NamespacedSystemd,
                                                             tree: Tree):
    # the files are in sync (written by a render with a state dir that is then lost)
    assert render("--no-restart", "keystone", *tree.options()).code == 2
    shutil.rmtree(tree.state)
    systemd.systemctl("start", UNIT)
    pid = systemd.main_pid(UNIT)
    result = render_with(systemd, tree)
    assert (result.code, result.err) == (0, ""), result.out
    assert starts(systemd) == 1 and systemd.main_pid(UNIT) == pid
    assert unit_record(tree)["hash"].startswith("v1:")
    assert render_with(systemd, tree, "--noop").code == 0


def test_noop_reports_restart_pending_and_changes_nothing(systemd: NamespacedSystemd,
                                                          tree: Tree):
    systemd.systemctl("start", UNIT)
    assert render_with(systemd, tree, "--no-restart").code == 2
    files, state = tree.snapshot(), state_files(tree)
    result = render_with(systemd, tree, "--noop")
    assert result.code == 2, (result.out, result.err)
    assert f"would restart {UNIT} (restart pending: config differs from the last successful " \
        "restart)" in result.out
    assert "0 file(s) to change, 1 restart(s) pending (noop)" in result.out
    assert tree.snapshot() == files and state_files(tree) == state and starts(systemd) == 1
    assert render_with(systemd, tree).code == 2 and starts(systemd) == 2
    assert render_with(systemd, tree, "--noop").code == 0


def test_rollback_restores_the_previous_version_and_restarts(systemd: NamespacedSystemd,
                                                             tree: Tree):
    systemd.systemctl("start", UNIT)
    assert render_with(systemd, tree).code == 2
    first = (tree.base / CONF).read_bytes()
    edit(tree, **{"keystone::token::expiration": 60})
    assert render_with(systemd, tree).code == 2
    count = starts(systemd)

    noop = render("--systemctl", systemd.systemctl_prefix, "--noop", "--diff", "--rollback",
                  "keystone", *tree.options())
    assert noop.code == 2 and "rollback to the version replaced at" in noop.out, noop.err
    assert "+++" not in noop.out  # no diff: kept versions may hold values masked only by hiera
    assert b"expiration=60" in (tree.base / CONF).read_bytes()

    result = render("--systemctl", systemd.systemctl_prefix, "--rollback", "keystone",
                    *tree.options())
    assert result.code == 2, (result.out, result.err)
    assert (tree.base / CONF).read_bytes() == first
    assert starts(systemd) == count + 1
    assert (tree.host / "etc/systemd/nspawn/keystone.nspawn").exists()  # untouched by that run
    again = render_with(systemd, tree, "--noop")
    assert again.code == 2 and "(content; hieradata/template change)" in again.out
    nothing = render("--systemctl", systemd.systemctl_prefix, "--rollback", "keystone",
                     *tree.options())  # the first run created the file: it would be removed
    assert nothing.code == 2 and "remove" in nothing.out, nothing.out


def test_unit_dying_right_after_start_is_caught_and_rolled_back(systemd: NamespacedSystemd,
                                                                tree: Tree):
    systemd.systemctl("start", UNIT)
    assert render_with(systemd, tree).code == 2
    good = (tree.base / CONF).read_bytes()
    # the start job succeeds (Type=simple), the process dies 0.2 s later
    systemd.add_unit("systemd-nspawn@.service", COUNTING_NSPAWN.replace(
        "ExecStart=/bin/sleep infinity", "ExecStart=/bin/sh -c 'sleep 0.2; exit 1'"))
    edit(tree, **{"keystone::token::expiration": 60})
    result = render_with(systemd, tree, "--format", "json", "--health-timeout", "5")
    assert result.code == 4, (result.out, result.err)
    assert result.err.startswith(f"render: keystone: {UNIT}: restart failed: unit is failed;")
    service = json.loads(result.out)["services"][0]
    assert service["status"] == "failed" and service["rolled_back"] == [str(tree.base / CONF)]
    assert service["restart_details"] == [{
        "kind": "container", "machine": None, "unit": UNIT, "reason": "files changed",
        "result": "failed", "state": "failed"}]
    assert (tree.base / CONF).read_bytes() == good


def test_a_unit_that_fails_to_start_fails_its_service_only(systemd: NamespacedSystemd,
                                                           tree: Tree):
    web = tree.templates / "web"
    web.mkdir()
    (web / "service.yaml").write_text(
        "files:\n  - {template: web.conf.j2, dest: /etc/web.conf, restart: container}\n")
    (web / "web.conf.j2").write_text("workers={{ lookup('web::workers', default=2) }}\n")
    provision(tree.templates, tree.machines)
    systemd.add_unit("systemd-nspawn@.service", FAIL_ONCE)
    systemd.systemctl("start", UNIT, "systemd-nspawn@web.service")
    systemd.run_path("fail-next-web").touch()
    result = render("--systemctl", systemd.systemctl_prefix, "--all", *tree.options())
    assert result.code == 6, (result.out, result.err)
    assert result.err == ("render: web: systemd-nspawn@web.service: restart failed: unit is "
                          "failed; rolled back 1 file(s) written by this run; restarted again: "
                          "unit is active\n")
    assert not (tree.machines / "web/etc/web.conf").exists()  # created, so removed again
    assert (tree.base / CONF).exists() and starts(systemd) == 2  # keystone went on
    result = render("--systemctl", systemd.systemctl_prefix, "--all", *tree.options())
    assert result.code == 2 and (tree.machines / "web/etc/web.conf").read_text() == "workers=2\n"
