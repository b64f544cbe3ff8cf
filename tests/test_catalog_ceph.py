"""The Ceph clients and the compute container, read by their real readers.

The whole catalog is rendered once into a fresh tree. Debian's ``ceph-conf`` (ceph-common) reads
each container's ``/etc/ceph/ceph.conf`` and each keyring as librados would, and ``ceph-authtool``
decodes the key; the keyring's path is the one ceph's default ``keyring`` search path gives the
client, so ceph.conf names none. ``libvirtd`` itself reads the compute container's
``libvirtd.conf`` (``--config``) and ``qemu.conf`` (its QEMU driver, from the session config
directory): run as ``nobody`` with every directory in the test's scratch space, in its own
mount and network namespaces (a tmpfs over ``/var/log`` takes its log file), for one second
(``--timeout 1``). A value libvirt would refuse fails the driver's start-up in its log.
"""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, Tree, render
from test_golden import build

CLIENTS = {"glance": "glance", "cinder": "cinder", "nova-compute": "nova"}  # machine: client
NOBODY = 65534


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    tree = build(REPO / "tests" / "data" / "catalog", tmp_path_factory.mktemp("catalog"))
    result = render("--no-restart", "--all", *tree.options())
    assert (result.code, result.err) == (2, ""), result.err
    return tree


def common() -> dict:
    return yaml.safe_load((REPO / "hieradata" / "data" / "common.yaml").read_text())


def credentials() -> dict:
    return yaml.safe_load((REPO / "hieradata" / "data" / "credentials.yaml").read_text())


def ceph_conf(*args: str) -> str:
    done = subprocess.run(["ceph-conf", *args], capture_output=True, text=True)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout.strip()


def ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section="-")
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("machine", sorted(CLIENTS))
def test_ceph_conf_and_keyring_read_by_ceph_conf(catalog: Tree, machine: str):
    etc = catalog.machines / machine / "etc" / "ceph"
    conf, client = etc / "ceph.conf", CLIENTS[machine]
    keyring = etc / f"ceph.client.{client}.keyring"
    data = common()
    assert ceph_conf("-c", str(conf), "--lookup", "mon_host") == ",".join(data["ceph::mon_host"])
    assert ceph_conf("-c", str(conf), "--lookup", "fsid") == data["ceph::fsid"]
    for what in ("cluster", "service", "client"):
        assert ceph_conf("-c", str(conf), "--lookup", f"auth_{what}_required") == "cephx"
    # the client finds its keyring where render writes it (inside the container)
    search = ceph_conf("-c", str(conf), "-n", f"client.{client}", "--show-config-value",
                       "keyring").split(",")
    assert f"/etc/ceph/ceph.client.{client}.keyring" in search
    key = credentials()[f"{client}::ceph::secret"]
    assert ceph_conf("-c", str(keyring), "-n", f"client.{client}", "--lookup", "key") == key
    listed = subprocess.run(["ceph-authtool", "-l", str(keyring)], capture_output=True,
                            text=True)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [f"[client.{client}]", "key", "=", key]
    assert keyring.stat().st_mode & 0o777 == 0o600
    passwd = (catalog.machines / machine / "etc" / "passwd").read_text()
    uid = next(int(line.split(":")[2]) for line in passwd.splitlines()
               if line.split(":")[0] == client)
    assert keyring.stat().st_uid == uid


def test_ceph_conf_refuses_what_it_cannot_parse(tmp_path: Path):
    bad = tmp_path / "ceph.conf"
    bad.write_text("[global]\nmon_host = 192.0.2.1\nnot an option\n")
    done = subprocess.run(["ceph-conf", "-c", str(bad), "--lookup", "mon_host"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "parse error" in done.stderr
    keyring = tmp_path / "keyring"
    keyring.write_text("[client.x]\nkey = not-a-key!\n")
    assert subprocess.run(["ceph-authtool", "-l", str(keyring)],
                          capture_output=True).returncode != 0


def test_rbd_options_of_glance_cinder_and_nova(catalog: Tree):
    glance = ini(catalog.machines / "glance/etc/glance/glance-api.conf")
    assert glance["DEFAULT"]["enabled_backends"] == "file:file,ceph:rbd"
    assert glance["glance_store"]["default_backend"] == "ceph"
    assert dict(glance["ceph"]) == {"rbd_store_pool": "images", "rbd_store_user": "glance",
                                    "rbd_store_ceph_conf": "/etc/ceph/ceph.conf",
                                    "rbd_store_chunk_size": "8"}
    cinder = ini(catalog.machines / "cinder/etc/cinder/cinder.conf")
    secrets = common()["ceph::libvirt_secrets"]
    assert cinder["DEFAULT"]["enabled_backends"] == "rbd-1"
    assert cinder["rbd-1"]["rbd_user"] == "cinder"
    assert cinder["rbd-1"]["rbd_secret_uuid"] == secrets["cinder"]
    nova = ini(catalog.machines / "nova-compute/etc/nova/nova.conf")
    assert nova["libvirt"]["images_type"] == "rbd"
    assert nova["libvirt"]["rbd_user"] == "nova"
    assert nova["libvirt"]["rbd_secret_uuid"] == secrets["nova"]
    assert "database" not in nova  # compute reaches the database through nova-conductor


def test_cinder_backends_are_a_hash_one_section_each(tmp_path: Path):
    tree = build(REPO / "tests" / "data" / "catalog", tmp_path / "t")
    path = tree.hieradata / "data" / "services" / "cinder.yaml"
    data = yaml.safe_load(path.read_text())
    data["cinder::backends"]["rbd-ssd"] = {**data["cinder::backends"]["rbd-1"],
                                           "rbd_pool": "volumes-ssd",
                                           "volume_backend_name": "rbd-ssd"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = render("--no-restart", "cinder", *tree.options())
    assert (result.code, result.err) == (2, "")
    cinder = ini(tree.machines / "cinder/etc/cinder/cinder.conf")
    assert cinder["DEFAULT"]["enabled_backends"] == "rbd-1,rbd-ssd"
    assert cinder["rbd-ssd"]["rbd_pool"] == "volumes-ssd"
    assert cinder["rbd-1"]["rbd_pool"] == "volumes"


def test_compute_container_shares_the_hosts_network_cgroups_and_state(catalog: Tree):
    nspawn = (catalog.host / "etc/systemd/nspawn/nova-compute.nspawn").read_text()
    assert "\n[Network]\nPrivate=no\n" in nspawn
    for bind in ("/sys/fs/cgroup", "/var/lib/nova", "/var/lib/libvirt"):
        assert f"\nBind={bind}\n" in nspawn
    assert "Bridge=" not in nspawn and "MACVLAN=" not in nspawn
    assert not (catalog.machines / "nova-compute/etc/systemd/network").exists()


def libvirtd(libvirtd_conf: Path, qemu_conf: Path, secrets: Path | None = None,
             virsh: tuple[str, ...] = ()) -> tuple[int, str]:
    """libvirtd reads both files (and the ``secrets`` directory) and exits after a second idle,
    or, given ``virsh`` commands, answers them first; (exit code, output + log). Its home,
    config, runtime and log directories are on a tmpfs over /var/log in its own mount namespace
    (``nobody`` cannot reach a pytest directory; the machine sees nothing)."""
    t = "/var/log/render-test"
    env = {"HOME": f"{t}/home", "XDG_CONFIG_HOME": f"{t}/config", "XDG_RUNTIME_DIR": f"{t}/run",
           "XDG_CACHE_HOME": f"{t}/cache", "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent",
           "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent", "PATH": "/usr/sbin:/usr/bin",
           "LIBVIRTD_CONF": str(libvirtd_conf), "QEMU_CONF": str(qemu_conf),
           "SECRETS": str(secrets or "")}
    daemon = f"libvirtd --config {t}/libvirtd.conf"
    if virsh:  # in the background; the commands once its socket is there
        calls = "; ".join(f"virsh -c qemu:///session {command}" for command in virsh)
        daemon = (f"{daemon} --timeout 30 & pid=$!; for i in $(seq 50); do "
                  f"[ -S {t}/run/libvirt/libvirt-sock ] && break; sleep 0.2; done; {calls}; "
                  "code=$?; kill $pid; wait $pid; exit $code")
    else:
        daemon = f"timeout 60 {daemon} --timeout 1"
    inner = (f"mount -t tmpfs tmpfs /var/log && mkdir -p /var/log/libvirt {t}/home "
             f"{t}/config/libvirt {t}/run {t}/cache && cp \"$LIBVIRTD_CONF\" {t}/libvirtd.conf && "
             f"cp \"$QEMU_CONF\" {t}/config/libvirt/qemu.conf && "
             f"{{ [ -z \"$SECRETS\" ] || cp -r \"$SECRETS\" {t}/config/libvirt/secrets; }} && "
             f"chown -R {NOBODY}:{NOBODY} /var/log/libvirt {t} && "
             f"setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups sh -c '{daemon}'; "
             "code=$?; cat /var/log/libvirt/* 2>/dev/null; exit $code")
    done = subprocess.run(["unshare", "--mount", "--net", "--propagation", "private",
                           "sh", "-c", inner], capture_output=True, text=True, env=env,
                          timeout=120)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_libvirtd_reads_libvirtd_conf_and_qemu_conf(catalog: Tree, tmp_path: Path):
    etc = catalog.machines / "nova-compute/etc/libvirt"
    code, log = libvirtd(etc / "libvirtd.conf", etc / "qemu.conf")
    assert code == 0, log
    assert "Driver state initialization failed" not in log, log
    assert "qemu.conf" not in log and "libvirtd.conf" not in log, log
    # the same reader refuses a value of the wrong type in either file
    bad_qemu = tmp_path / "qemu.conf"
    bad_qemu.write_text((etc / "qemu.conf").read_text() + 'vnc_tls = "yes"\n')
    code, log = libvirtd(etc / "libvirtd.conf", bad_qemu)
    assert "expected a bool for 'vnc_tls' parameter" in log, log
    bad_daemon = tmp_path / "libvirtd.conf"
    bad_daemon.write_text('listen_tls = "no"\n' + (etc / "libvirtd.conf").read_text())
    code, log = libvirtd(bad_daemon, etc / "qemu.conf")
    assert code != 0 and "expected a bool for 'listen_tls' parameter" in log, log


@pytest.mark.slow
def test_libvirtd_loads_the_libvirt_secrets_with_the_cephx_keys(catalog: Tree):
    etc = catalog.machines / "nova-compute/etc/libvirt"
    uuids = common()["ceph::libvirt_secrets"]
    keys = credentials()
    code, out = libvirtd(etc / "libvirtd.conf", etc / "qemu.conf", etc / "secrets",
                         ("secret-list", *(f"secret-get-value {uuid}" for uuid in uuids.values())))
    assert code == 0, out
    for client, uuid in uuids.items():
        assert re.search(rf"^ {uuid} +ceph client\.{client} secret$", out, re.M), out
        assert f"\n{keys[f'{client}::ceph::secret']}\n" in out, out
    for path in (etc / "secrets").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600 and path.stat().st_uid == 0


def test_render_refuses_a_libvirt_value_it_cannot_write(tmp_path: Path):
    tree = build(REPO / "tests" / "data" / "catalog", tmp_path / "t")
    path = tree.hieradata / "data" / "services" / "nova-compute.yaml"
    data = yaml.safe_load(path.read_text())
    data["nova::compute::qemu"]["vnc_listen"] = "both \" and ' quotes"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    before = tree.snapshot()
    result = render("--no-restart", "nova-compute", *tree.options())
    assert result.code == 4, result.err
    assert "/etc/libvirt/qemu.conf (from qemu.conf.j2)" in result.err
    assert "libvirt: not 'name = value'" in result.err
    assert tree.snapshot() == before
