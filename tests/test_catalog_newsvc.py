"""ironic, swift and murano in the sample catalog (issue #12 item 4): their ports, and swift's
files read by swift's own loader.

ironic.conf and murano.conf are oslo.config files, read in tests/test_oslo.py (murano against
its last release, 16.0.0). swift's files are paste-deploy INI and swift.conf: Debian's swift 2.30
(``/usr/bin/python3`` with python3-swift, TEST_DEBS) reads them with ``tests/swift_check.py``:
hash path prefix and suffix, storage policies, every section through ``readconf``, each pipeline
through paste-deploy, and each server built for real by ``loadapp`` (the proxy on rings built in
scratch from the rendered storage servers' addresses).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, Tree, render
from test_golden import build

SWIFT_PYTHON = "/usr/bin/python3"  # Debian's, where python3-swift installs
CHECKER = REPO / "tests" / "swift_check.py"
PORTS = {"ironic": [6385], "murano": [8082], "swift": [8080]}
STORAGE_PORTS = [6202, 6201, 6200]  # swift's, internal: on the storage network only


def data(name: str) -> dict:
    return yaml.safe_load((REPO / "hieradata" / "data" / name).read_text())


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    tree = build(REPO / "tests" / "data" / "catalog", tmp_path_factory.mktemp("newsvc"))
    result = render("--no-restart", "ironic", "swift", "murano", "haproxy", *tree.options())
    assert (result.code, result.err) == (2, ""), result.err
    return tree


def swift_check(etc: Path, scratch: Path) -> subprocess.CompletedProcess[str]:
    scratch.mkdir()
    return subprocess.run([SWIFT_PYTHON, str(CHECKER), str(etc), str(scratch)],
                          capture_output=True, text=True, timeout=120)


def test_each_new_service_has_its_ports_in_its_nspawn_and_haproxy(catalog: Tree):
    haproxy = (catalog.machines / "haproxy/etc/haproxy/haproxy.cfg").read_text()
    apis = data("common.yaml")["openstack::apis"]
    containers = data("network.yaml")["network::containers"]
    for machine, ports in PORTS.items():
        nspawn = (catalog.host / f"etc/systemd/nspawn/{machine}.nspawn").read_text()
        assert [f"Port={p}:{p}" for p in ports] == \
            [line for line in nspawn.splitlines() if line.startswith("Port=")], machine
        [(name, api)] = [(n, a) for n, a in apis.items() if a["machine"] == machine]
        address = containers[machine]["networks"]["mgmt"]
        assert f"\nbackend {name}\n" in haproxy
        assert f"    bind 192.0.2.10:{ports[0]}\n" in haproxy
        assert f"    server {machine} {address}:{api['port']} check" in haproxy
    swift = (catalog.host / "etc/systemd/nspawn/swift.nspawn").read_text()
    for internal in STORAGE_PORTS:  # neither behind haproxy nor forwarded
        assert f":{internal}" not in haproxy and f"={internal}:" not in swift


def test_swift_files_load_with_swifts_own_loader(catalog: Tree, tmp_path: Path):
    etc = catalog.machines / "swift/etc/swift"
    done = swift_check(etc, tmp_path / "rings")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    secrets = data("credentials.yaml")
    assert seen["hash"] == {
        "prefix": hashlib.sha256(secrets["swift::hash_path_prefix::secret"].encode()).hexdigest(),
        "suffix": hashlib.sha256(secrets["swift::hash_path_suffix::secret"].encode()).hexdigest()}
    assert seen["policies"] == [{"index": 0, "name": "Policy-0", "default": True}]
    assert seen["memcache_servers"] == ["192.0.2.21:11211", "192.0.2.22:11211",
                                        "[fd00::21]:11211"]
    files = seen["files"]
    proxy = files["proxy-server.conf"]
    assert proxy["app"]["bind_port"] == "8080" and proxy["app"]["bind_ip"] == "0.0.0.0"
    assert proxy["pipeline"][-1] == "proxy-server"
    assert {"authtoken", "keystoneauth", "cache"} <= set(proxy["pipeline"])
    assert proxy["loaded"][-1] == "swift.proxy.server.Application"
    assert "keystonemiddleware.auth_token.AuthProtocol" in proxy["loaded"]
    assert len(proxy["loaded"]) == len(proxy["pipeline"])
    common = data("common.yaml")
    for kind, app in (("account", "swift.account.server.AccountController"),
                      ("container", "swift.container.server.ContainerController"),
                      ("object", "swift.obj.server.ObjectController")):
        server = files[f"{kind}-server.conf"]
        assert server["app"]["bind_ip"] == "198.51.100.62"  # the storage network
        assert server["app"]["bind_port"] == str(common[f"swift::{kind}::port"])
        assert server["loaded"][-1] == app
        assert f"{kind}-replicator" in server["sections"]  # its daemons' sections
    # rings are the operators': render wrote none, the checker built its own in scratch
    assert not list(catalog.machines.rglob("*.ring.gz"))
    assert sorted(p.name for p in (tmp_path / "rings").glob("*.ring.gz")) == [
        "account.ring.gz", "container.ring.gz", "object.ring.gz"]


def test_swift_refuses_a_swift_conf_without_its_hash(catalog: Tree, tmp_path: Path):
    """The check can fail: swift itself rejects a swift.conf without [swift-hash]."""
    etc = tmp_path / "etc"
    etc.mkdir()
    for path in (catalog.machines / "swift/etc/swift").iterdir():
        text = path.read_text()
        if path.name == "swift.conf":
            text = text.replace("[swift-hash]", "[swift-hush]")
        (etc / path.name).write_text(text)
    done = swift_check(etc, tmp_path / "rings")
    assert done.returncode != 0
    assert "InvalidHashPathConfigError" in done.stderr
