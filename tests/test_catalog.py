"""The sample catalog: a golden per service, ``--all`` on a fresh tree, and one shared value.

``tests/data/catalog/<service>/`` holds what rendering that one service into a fresh, provisioned
tree writes (``expected/``, machines and host root) and what ``--noop`` says first (``stdout``:
every file and every restart). That ``--noop``, and another after the real run, must leave the
tree (machines/, host/, the state dir) byte for byte as it was. Every service in
service_templates must have one; ``make golden-update`` writes them for review with ``git diff``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import REPO, Systemctl, Tree, render
from test_golden import actual_files, build, compare_or_update, noop_changes_nothing

from renderer.services import list_services

SERVICES = list_services(REPO / "service_templates")
GOLDEN = REPO / "tests" / "data" / "catalog"
MEMCACHED_USERS = {"keystone", "glance", "placement", "nova", "neutron", "cinder", "heat",
                   "horizon", "ironic", "swift", "murano"}


def test_every_service_has_a_golden():
    assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == SERVICES
    assert {"keystone", "glance", "placement", "nova", "neutron", "cinder", "heat", "horizon",
            "memcached", "rabbitmq", "mariadb", "haproxy", "host-network", "ironic", "swift",
            "murano"} <= set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_service_golden(service: str, tmp_path: Path):
    case = GOLDEN / service
    tree = build(case, tmp_path / "t")
    noop = noop_changes_nothing(tree, service)
    assert noop.code == 2, noop.err
    real = render("--no-restart", service, *tree.options())
    assert (real.code, real.err) == (2, "")
    assert noop_changes_nothing(tree, service).code == 2  # the restarts are still owed
    compare_or_update(case, actual_files(tree), noop.out.replace(str(tree.base), "<tree>"))


def test_all_noop_on_fresh_tree_then_in_sync_after_a_real_run(tree: Tree, systemctl):
    before = tree.snapshot()
    noop = render("--noop", "--all", *tree.options())
    assert (noop.code, noop.err) == (2, "")
    for service in SERVICES:
        assert f"\n{service}: would create " in f"\n{noop.out}", service
        assert f"\n{service}: would restart " in f"\n{noop.out}", service
    assert tree.snapshot() == before
    # a real run restarts too (restarts owed by --no-restart would keep the tree "changed")
    fake = systemctl()
    real = render(*fake.options, "--all", *tree.options())
    assert (real.code, real.err) == (2, "")
    # a container restart that is due absorbs the restarts and reloads of the units inside it
    calls = fake.calls()
    assert calls[0] == "daemon-reload"  # the host's, for nova-compute's drop-in: before restarts
    assert "try-restart systemd-nspawn@neutron-agents.service" in calls
    # ... but render never restarts nova-compute's container (that kills its instances): the
    # units inside it restart instead
    assert sorted(c for c in calls if c.startswith("--machine=")) == [
        "--machine=nova-compute try-restart libvirtd.service",
        "--machine=nova-compute try-restart nova-compute.service"], calls
    assert "try-restart systemd-nspawn@nova-compute.service" not in calls
    assert "neutron-metadata-agent.service in neutron-agents (files changed; with its " \
        "container)" in real.out
    again = render("--noop", "--all", *tree.options())
    assert (again.code, again.err) == (0, "")
    assert f"everything in sync ({len(SERVICES)} service(s)" in again.out


def restarted(fake: Systemctl) -> list[tuple[str, str]]:
    """(machine or 'host', unit) of every call the stand-in logged, in order."""
    calls = []
    for line in fake.calls():
        words = line.split()
        machine = next((w.split("=", 1)[1] for w in words if w.startswith("--machine=")),
                       "host")
        calls.append((machine, words[-1]))
    return calls


def test_memcached_change_restarts_exactly_the_services_that_use_it(tree: Tree, systemctl):
    fake = systemctl()
    first = render(*fake.options, "--all", *tree.options())
    assert (first.code, first.err) == (2, "")
    users = {path.split("/")[1] for path, data in actual_files(tree).items()
             if b"192.0.2.22:11211" in data}  # machines whose files name a memcached server
    fake.forget()

    path = tree.hieradata / "data" / "common.yaml"
    data = yaml.safe_load(path.read_text())
    data["openstack::memcached::servers"] = ["192.0.2.21", "192.0.2.23", "fd00::21"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = render(*fake.options, "--all", *tree.options())
    assert (result.code, result.err) == (2, "")
    assert all(line.split()[-2] == "try-restart" for line in fake.calls())

    changed = {line.split(":")[0] for line in result.out.splitlines() if ": update " in line}
    assert changed == MEMCACHED_USERS
    calls = restarted(fake)
    assert len(calls) == len(set(calls)), calls  # each unit once
    assert sorted(calls) == sorted([
        ("host", "systemd-nspawn@keystone.service"),
        ("glance", "glance-api.service"),
        ("placement", "placement-api.service"),
        ("nova-api", "nova-api.service"),
        ("nova-api", "nova-api-metadata.service"),
        ("nova-control", "nova-conductor.service"),
        ("nova-control", "nova-scheduler.service"),
        ("neutron-server", "neutron-server.service"),
        ("neutron-agents", "neutron-l3-agent.service"),
        ("neutron-agents", "neutron-dhcp-agent.service"),
        ("neutron-agents", "neutron-openvswitch-agent.service"),
        ("neutron-agents", "neutron-metadata-agent.service"),
        ("cinder", "cinder-api.service"),
        ("cinder", "cinder-scheduler.service"),
        ("cinder", "cinder-volume.service"),
        ("heat", "heat-api.service"),
        ("heat", "heat-engine.service"),
        ("horizon", "apache2.service"),
        ("ironic", "ironic-api.service"),
        ("ironic", "ironic-conductor.service"),
        ("swift", "swift-proxy.service"),  # [filter:cache] and [filter:authtoken]
        ("murano", "murano-api.service"),
        ("murano", "murano-engine.service"),
    ])
    assert {m for m, _ in calls if m != "host"} | {"keystone"} == users


def test_lookup_for_a_service_sees_the_machine_the_data_gives_it(tree: Tree):
    with (tree.hieradata / "data" / "common.yaml").open("a") as data:
        data.write("probe: \"%{machine}\"\n")
    result = render("lookup", "--hieradata", str(tree.hieradata), "--templates",
                    str(tree.templates), "--node", "controller1.example.com", "--service", "nova",
                    "probe")
    assert (result.code, result.out.strip(), result.err) == (0, '"nova-api"', "")
