"""Restarts against a real systemd, booted as PID 1 in a private PID+mount namespace.

The stand-in ``systemd-nspawn@.service`` counts its starts in /run/render-test/starts-<machine>
(inside the namespace), so "restarted exactly once" is counted, not inferred.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import Tree, render
from systemd_ns import NamespacedSystemd, boot

pytestmark = pytest.mark.systemd

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
                  "keystone::nspawn::ports": ["35357:35357", "5000:5000", "8443:8443"]})
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


def test_failed_restart_is_exit_6_naming_the_unit(systemd: NamespacedSystemd, tree: Tree):
    systemd.systemctl("start", UNIT)
    systemd.add_unit("systemd-nspawn@.service", COUNTING_NSPAWN.replace(
        "ExecStart=/bin/sleep infinity", "ExecStart=/bin/false\nType=oneshot"))
    result = render_with(systemd, tree)
    assert result.code == 6, (result.out, result.err)
    assert result.err.startswith("render: keystone: systemd-nspawn@keystone.service: ")
    assert len(result.err.splitlines()) == 1
