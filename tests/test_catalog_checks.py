"""Read the rendered sample catalog the way each service would.

The whole catalog is rendered once into a fresh tree; then haproxy checks its config
(``haproxy -c``), Python compiles and runs horizon's ``local_settings.py``, and every
``.network``/``.netdev`` and ``.nspawn`` key is looked up in the key tables compiled into
``systemd-networkd`` and ``systemd-nspawn`` (their gperf tables hold every ``Section.Key`` they
accept). ``.link`` keys (udev's) and MariaDB option names are not checked by a real reader
here (see README).
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml
from conftest import REPO, Tree, render
from test_golden import build

NETWORKD = "/lib/systemd/systemd-networkd"
NSPAWN = "/usr/bin/systemd-nspawn"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    tree = build(REPO / "tests" / "data" / "catalog", tmp_path_factory.mktemp("catalog"))
    result = render("--no-restart", "--all", *tree.options())
    assert (result.code, result.err) == (2, ""), result.err
    return tree


def data(name: str) -> dict:
    return yaml.safe_load((REPO / "hieradata" / "data" / name).read_text())


@cache
def known_keys(binary: str) -> frozenset[str]:
    """Every ``Section.Key`` in the binary's configuration tables."""
    out = subprocess.run(["strings", binary], capture_output=True, text=True, check=True).stdout
    return frozenset(re.findall(r"^[A-Z][A-Za-z0-9]*\.[A-Z][A-Za-z0-9]*$", out, re.M))


def systemd_keys(path: Path) -> list[str]:
    section, keys = None, []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        else:
            keys.append(f"{section}.{line.split('=', 1)[0].strip()}")
    return keys


def test_haproxy_accepts_the_config_with_a_frontend_and_backend_per_api(catalog: Tree):
    cfg = catalog.machines / "haproxy/etc/haproxy/haproxy.cfg"
    done = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    text = cfg.read_text()
    for api in data("common.yaml")["openstack::apis"]:
        assert f"\nfrontend {api}\n" in text and f"\nbackend {api}\n" in text
    assert "server nova-api 192.0.2.14:8774 check" in text  # machine from data, address too


def test_horizon_local_settings_is_python_with_memcached_caches(catalog: Tree):
    path = catalog.machines / "horizon/etc/openstack-dashboard/local_settings.py"
    code = ("import sys; ns = {}; exec(compile(open(sys.argv[1]).read(), sys.argv[1], 'exec'), ns)"
            "; print(repr(ns['CACHES']['default']['LOCATION']))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(["192.0.2.21:11211", "192.0.2.22:11211",
                                        "[fd00::21]:11211"])


def test_networkd_and_nspawn_files_use_only_keys_systemd_knows(catalog: Tree):
    files = [(p, NETWORKD) for top in (catalog.machines, catalog.host)
             for p in top.rglob("*") if p.suffix in (".network", ".netdev")]
    files += [(p, NSPAWN) for p in (catalog.host / "etc/systemd/nspawn").glob("*.nspawn")]
    assert len(files) > 40
    for path, binary in files:
        unknown = [key for key in systemd_keys(path) if key not in known_keys(binary)]
        assert not unknown, f"{path}: {unknown}"


def test_bad_key_is_caught_by_the_key_check():
    assert "Network.MACVLAN" in known_keys(NETWORKD)
    assert "Network.MACVLANS" not in known_keys(NETWORKD)
    assert "Files.Bind" in known_keys(NSPAWN) and "Exec.PrivateUsers" in known_keys(NSPAWN)


def test_neutron_agents_nspawn(catalog: Tree):
    """neutron 29 creates namespaces through privsep and pyroute2 in the container's own
    /run/netns (tests/test_neutron_netns.py runs it in a real container): no host netns or
    /proc binds, CAP_NET_ADMIN (nspawn grants it only with a private network), the host's
    Open vSwitch sockets."""
    nspawn = (catalog.host / "etc/systemd/nspawn/neutron-agents.nspawn").read_text()
    assert nspawn.split("\n", 1)[1] == ("[Exec]\nPrivateUsers=no\nCapability=CAP_NET_ADMIN\n\n"
                                        "[Network]\nPrivate=no\n\n"
                                        "[Files]\nBind=/run/openvswitch:/run/openvswitch\n")
    assert not (catalog.machines / "neutron-agents/usr/local/lib/neutron-netns").exists()


def test_rabbitmq_conf_is_sysctl_format(catalog: Tree):
    lines = (catalog.machines / "rabbitmq/etc/rabbitmq/rabbitmq.conf").read_text().splitlines()
    settings = dict(line.split(" = ", 1) for line in lines if line and not line.startswith("#"))
    assert all(re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)*", key) for key in settings)
    assert settings["listeners.tcp.default"] == "5672"
    assert settings["cluster_formation.classic_config.nodes.3"] == "rabbit@rabbitmq3"


def test_galera_option_file(catalog: Tree):
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.read(catalog.machines / "mariadb/etc/mysql/mariadb.conf.d/60-galera.cnf")
    assert parser["galera"]["wsrep_cluster_address"] == "gcomm://192.0.2.41,192.0.2.42,192.0.2.43"
    assert parser["galera"]["wsrep_node_address"] == parser["mysqld"]["bind-address"] == \
        "192.0.2.41"
    assert parser["galera"]["wsrep_on"] == "ON"


def test_modes_of_secret_bearing_files(catalog: Tree):
    for path in ("keystone/etc/keystone/keystone.conf", "nova-control/etc/nova/nova.conf",
                 "neutron-agents/etc/neutron/neutron.conf",
                 "neutron-agents/etc/neutron/metadata_agent.ini",
                 "horizon/etc/openstack-dashboard/local_settings.py"):
        assert (catalog.machines / path).stat().st_mode & 0o7777 == 0o640, path


# --- inside each container: networkd enabled, pts/0, root's password (renderer/edits.py) -------

WANTS = "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
SAMPLE_ROOT_PASSWORD = "C0ntainer-root-S3cret"  # what the sample's hash is of (credentials.yaml)


HOST_NETWORK = ("neutron-agents", "nova-compute")  # Private=no: no networkd inside


def test_every_container_enables_networkd_allows_pts0_and_has_roots_hash(catalog: Tree):
    hashed = data("credentials.yaml")["container::root::password"]
    salt = hashed.split("$")[2]
    made = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, SAMPLE_ROOT_PASSWORD],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert made == hashed  # a real crypt hash, of the password the comment names
    machines = sorted(p for p in catalog.machines.iterdir() if p.is_dir())
    assert len(machines) >= 13
    for rootfs in machines:
        if rootfs.name in HOST_NETWORK:  # the host's network: networkd must stay off
            assert not (rootfs / WANTS).is_symlink()
        else:
            assert (rootfs / WANTS).readlink() == \
                Path("/lib/systemd/system/systemd-networkd.service"), rootfs
        assert "pts/0" in (rootfs / "etc/securetty").read_text().splitlines()
        shadow = (rootfs / "etc/shadow").read_text().splitlines()
        assert [line.split(":")[1] for line in shadow if line.startswith("root:")] == [hashed]
        assert all(line.split(":")[1] == "*" for line in shadow if not line.startswith("root:"))
        assert (rootfs / "etc/shadow").stat().st_mode & 0o777 == 0o640
        # shadow's own checker reads passwd and shadow inside the rootfs (chroot)
        done = subprocess.run(["pwck", "-r", "-q", "-R", str(rootfs)], capture_output=True,
                              text=True)
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), rootfs


def test_systemctl_reads_networkd_as_enabled_in_each_rendered_root(catalog: Tree, tmp_path: Path):
    """``systemctl --root`` (offline, no systemd running) reads the rendered link as systemd
    would, with the host's unit file standing in for the container's package."""
    unit = Path("/lib/systemd/system/systemd-networkd.service")
    for rootfs in sorted(p for p in catalog.machines.iterdir() if p.is_dir()):
        root = tmp_path / rootfs.name
        if (rootfs / "etc/systemd").is_dir():  # nothing of systemd's: nothing enabled
            shutil.copytree(rootfs / "etc/systemd", root / "etc/systemd", symlinks=True)
        (root / "lib/systemd/system").mkdir(parents=True)
        shutil.copy(unit, root / "lib/systemd/system")
        done = subprocess.run(["systemctl", f"--root={root}", "is-enabled", unit.name],
                              capture_output=True, text=True)
        expected = "disabled" if rootfs.name in HOST_NETWORK else "enabled"
        assert done.stdout.strip() == expected, (rootfs.name, done.stdout, done.stderr)


# --- the mv-container macvlan of OpenStack-Ansible's networkd document -------------------------

def test_horizon_is_attached_through_mv_container(catalog: Tree):
    network = catalog.host / "etc/systemd/network"
    five = {name: configparser.ConfigParser() for name in (
        "mv-container.netdev", "mv-container.network", "mv-container-vs.netdev",
        "mv-container-v1.network", "mv-container-v2.network")}
    for name, parser in five.items():
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string((network / name).read_text())
    assert dict(five["mv-container.netdev"]["NetDev"]) == {"Name": "mv-container",
                                                            "Kind": "macvlan"}
    assert dict(five["mv-container.netdev"]["MACVLAN"]) == {"Mode": "bridge"}
    assert dict(five["mv-container.network"]["Network"]) == {"DHCP": "no"}
    assert dict(five["mv-container-vs.netdev"]["NetDev"]) == {"Name": "mv-container-v1",
                                                               "Kind": "veth"}
    assert dict(five["mv-container-vs.netdev"]["Peer"]) == {"Name": "mv-container-v2"}
    assert dict(five["mv-container-v1.network"]["Network"]) == {"Bridge": "br-container"}
    assert dict(five["mv-container-v2.network"]["Network"]) == {"MACVLAN": "mv-container"}
    nspawn = (catalog.host / "etc/systemd/nspawn/horizon.nspawn").read_text()
    assert "\nMACVLAN=mv-mgmt mv-container\n" in nspawn and "Bridge=" not in nspawn
    inside = (catalog.machines / "horizon/etc/systemd/network/10-mv-mv-container.network")
    assert inside.read_text().split("\n", 1)[1] == \
        "[Match]\nName=mv-mv-container\n\n[Network]\nDHCP=yes\n"


def test_one_network_change_updates_ml2_and_the_ovs_agent(tree: Tree):
    """ML2's flat and vlan networks and the OVS agent's bridge_mappings are one list in
    network.yaml: a physnet renamed and a network added show in both files."""
    path = tree.hieradata / "data" / "network.yaml"
    text = path.read_text().replace("physnet: vlan,", "physnet: physnet1,")
    path.write_text(text.replace("\n  flat:\n", "\n  provider2:\n    neutron: {type: flat, "
                                 "physnet: provider2, ovs_bridge: br-ex-p2}\n  flat:\n", 1))
    result = render("--no-restart", "neutron", *tree.options())
    assert (result.code, result.err) == (2, ""), result.err
    read = {}
    for name in ("neutron-server/etc/neutron/plugins/ml2/ml2_conf.ini",
                 "neutron-agents/etc/neutron/plugins/ml2/openvswitch_agent.ini"):
        parser = configparser.ConfigParser(interpolation=None, strict=True)
        parser.read(tree.machines / name)
        read[name.split("/")[0]] = parser
    ml2, ovs = read["neutron-server"], read["neutron-agents"]
    assert ml2["ml2_type_flat"]["flat_networks"] == "provider2,flat"
    assert ml2["ml2_type_vlan"]["network_vlan_ranges"] == "physnet1:101:200"
    assert ovs["ovs"]["bridge_mappings"] == "physnet1:br-ex-vlan,provider2:br-ex-p2,flat:br-ex-flat"
    assert ovs["agent"]["tunnel_types"] == ml2["ml2"]["tenant_network_types"] == "vxlan"
    assert ovs["ovs"]["local_ip"] == "203.0.113.21"
