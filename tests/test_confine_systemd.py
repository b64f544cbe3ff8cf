"""A container cannot undo its own confinement, against a real systemd in a namespace.

The data hardens keystone's host-side ``.nspawn`` (``PrivateUsers=yes``, rendered from
``network::container_defaults``). The stand-in ``systemd-nspawn@.service`` reads the very
``.nspawn`` render wrote and refuses to start under ``PrivateUsers=yes``, as a container whose
rootfs depends on its old privileges would. The hardened file must stay, the container stay down,
and no later run may restore the old file or restart it; ``rollback_on_failure: true`` brings the
old behaviour back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import Tree
from systemd_ns import NamespacedSystemd, boot
from test_restart import render_with, starts

pytestmark = [pytest.mark.systemd, pytest.mark.slow]

UNIT = "systemd-nspawn@keystone.service"
CONF = "machines/keystone/etc/keystone/keystone.conf"


def picky_nspawn(host: Path) -> str:
    """Counts its starts; a start fails while its .nspawn says ``PrivateUsers=yes``."""
    nspawn = host / "etc/systemd/nspawn/%i.nspawn"
    return f"""\
[Unit]
Description=stand-in for systemd-nspawn container %i, failing under PrivateUsers=yes
DefaultDependencies=no

[Service]
ExecStartPre=/bin/sh -c 'echo start >> /run/render-test/starts-%i'
ExecStartPre=/bin/sh -c '! grep -qx PrivateUsers=yes {nspawn}'
ExecStart=/bin/sleep infinity
"""


@pytest.fixture
def tree(tree: Tree) -> Tree:
    """keystone without its httpd vhost (a unit inside a container needs machined)."""
    path = tree.templates / "keystone" / "service.yaml"
    definition = yaml.safe_load(path.read_text())
    definition["files"] = [f for f in definition["files"]
                           if f.get("template") != "wsgi-keystone.conf.j2"]
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return tree


@pytest.fixture
def systemd(tmp_path: Path, tree: Tree) -> Iterator[NamespacedSystemd]:
    ns = boot(tmp_path / "systemd", {"systemd-nspawn@.service": picky_nspawn(tree.host)})
    try:
        yield ns
    finally:
        ns.stop()


def harden(tree: Tree) -> None:
    """PrivateUsers=yes for every container, and a keystone.conf change with it."""
    network = tree.hieradata / "data" / "network.yaml"
    data = yaml.safe_load(network.read_text())
    data["network::container_defaults"]["private_users"] = True
    network.write_text(yaml.safe_dump(data, sort_keys=False))
    service = tree.hieradata / "data" / "services" / "keystone.yaml"
    data = yaml.safe_load(service.read_text())
    data["keystone::token::expiration"] = 60
    service.write_text(yaml.safe_dump(data, sort_keys=False))


def unit_record(tree: Tree) -> dict:
    document = json.loads((tree.state / "services" / "keystone.json").read_text())
    return document["units"][f"container:-:{UNIT}"]


def started(ns: NamespacedSystemd, tree: Tree) -> tuple[bytes, bytes]:
    ns.systemctl("start", UNIT)
    result = render_with(ns, tree)
    assert result.code == 2, (result.out, result.err)
    assert ns.active_state(UNIT) == "active"
    nspawn = tree.host / "etc/systemd/nspawn/keystone.nspawn"
    assert b"PrivateUsers=no\n" in nspawn.read_bytes()
    return nspawn.read_bytes(), (tree.base / CONF).read_bytes()


def test_hardened_nspawn_is_kept_and_the_container_stays_down(systemd: NamespacedSystemd,
                                                              tree: Tree):
    _, conf = started(systemd, tree)
    nspawn = tree.host / "etc/systemd/nspawn/keystone.nspawn"
    harden(tree)
    count = starts(systemd)
    result = render_with(systemd, tree, "--format", "json")
    assert result.code == 4, (result.out, result.err)
    assert result.err == (f"render: keystone: {UNIT}: restart failed: unit is failed; rolled "
                          "back 1 file(s) written by this run; kept 1 file(s) that confine the "
                          "container; left down until the config changes or it is started by "
                          "hand\n")
    service = json.loads(result.out)["services"][0]
    assert service["kept"] == [str(nspawn)] and service["rolled_back"] == [str(tree.base / CONF)]
    assert service["notes"] == [f"kept {nspawn}: a container's health check does not undo its "
                                "confinement (rollback_on_failure: true to allow)"]
    assert b"PrivateUsers=yes\n" in nspawn.read_bytes()       # the hardening stays
    assert (tree.base / CONF).read_bytes() == conf            # container side: rolled back
    assert systemd.active_state(UNIT) == "failed"             # down, not restarted again
    assert starts(systemd) == count + 1
    assert unit_record(tree)["held"] is True

    # no flapping: the next runs neither restore the old .nspawn nor start the container
    hardened = nspawn.read_bytes()
    second = render_with(systemd, tree)
    assert second.code == 6, (second.out, second.err)  # keystone.conf written again, unit held
    assert f"{UNIT}: held down since" in second.err and len(second.err.splitlines()) == 1
    assert b"expiration=60" in (tree.base / CONF).read_bytes()
    for args in ((), ("--noop",)):
        again = render_with(systemd, tree, *args)
        assert (again.code, again.err) == (4, second.err), (args, again.out)
    assert nspawn.read_bytes() == hardened and starts(systemd) == count + 1
    assert systemd.active_state(UNIT) == "failed"


def test_override_rolls_the_nspawn_back_as_before(systemd: NamespacedSystemd, tree: Tree):
    block = tree.templates / "_lib" / "container.yaml"
    block.write_text(block.read_text().replace(
        "    restart: container\n", "    restart: container\n    rollback_on_failure: true\n", 1))
    old, conf = started(systemd, tree)
    harden(tree)
    count = starts(systemd)
    result = render_with(systemd, tree)
    assert result.code == 4, (result.out, result.err)
    assert result.err == (f"render: keystone: {UNIT}: restart failed: unit is failed; rolled "
                          "back 2 file(s) written by this run; restarted again: unit is "
                          "active\n")
    nspawn = tree.host / "etc/systemd/nspawn/keystone.nspawn"
    assert nspawn.read_bytes() == old and (tree.base / CONF).read_bytes() == conf
    assert systemd.active_state(UNIT) == "active" and starts(systemd) == count + 2
    assert "held" not in unit_record(tree) and "kept" not in result.out
