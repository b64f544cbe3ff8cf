"""Every file of a fresh full render of the sample catalog, read by its service's real reader
(issue #12, "How it will be checked").

The catalog is rendered once (``render --all``) into a fresh tree; each reader below reads its
files and says which it read: oslo.config (``tests/oslo_check.py``), Debian's ``ceph-conf`` and
``ceph-authtool``, swift's own loader (``tests/swift_check.py``), ``haproxy -c``, ``libvirtd``
(its two files and its secrets), ``systemd-analyze verify`` (the host drop-in), the key tables
compiled into systemd-networkd and systemd-nspawn, ``systemctl --root`` (enabled links), ``pwck``
(shadow) and Python (horizon's settings). A file no reader here reads is in ``UNREAD``, with
why; a new rendered file that is neither read nor listed fails the test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, Tree
from test_catalog_ceph import libvirtd
from test_catalog_checks import NETWORKD, NSPAWN, known_keys, systemd_keys
from test_catalog_newsvc import swift_check
from test_golden import LINK_SUFFIX, actual_files, build
from test_oslo import check, render_all

pytestmark = pytest.mark.slow  # oslo.config, libvirtd, swift: real readers

# Files render writes that no reader installed here reads, each with why.
UNREAD = {
    # RabbitMQ's new-style (sysctl) format is parsed by the Erlang cuttlefish schema inside
    # rabbitmq-server, not installed here; test_catalog_checks reads its syntax
    r"machines/rabbitmq/etc/rabbitmq/rabbitmq\.conf",
    # MariaDB's option names are checked by mariadbd itself, not installed here; the file's
    # syntax is read in test_catalog_checks (configparser, strict)
    r"machines/mariadb/etc/mysql/mariadb\.conf\.d/60-galera\.cnf",
    # udev's .link keys are in udev's own tables (no networkd table has them)
    r"host/etc/systemd/network/99-default\.link",
    # Apache's httpd -t needs apache2 and mod_wsgi, not installed here
    r"machines/keystone/etc/httpd/conf\.d/wsgi-keystone\.conf",
    # memcached.conf is command-line options for Debian's start script, read by no parser
    r"machines/memcached/etc/memcached\.conf",
    # pam_securetty reads it at login: a list of tty names, one a line
    r"machines/[^/]+/etc/securetty",
}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tree, list[dict[str, object]]]:
    tree = build(REPO / "tests" / "data" / "catalog", tmp_path_factory.mktemp("readers"))
    return tree, render_all(tree)  # render --all, and its oslo files with their namespaces


def rel(tree: Tree, path: Path | str) -> str:
    return str(Path(path).relative_to(tree.base))


def read_oslo(tree: Tree, oslo: list[dict[str, object]]) -> set[str]:
    errors = check(oslo)
    assert {path: problems for path, problems in errors.items() if problems} == {}
    return {rel(tree, str(f["path"])) for f in oslo}


def read_ceph(tree: Tree) -> set[str]:
    read = set()
    for conf in tree.machines.glob("*/etc/ceph/ceph.conf"):
        done = subprocess.run(["ceph-conf", "-c", str(conf), "--lookup", "fsid"],
                              capture_output=True, text=True)
        assert done.returncode == 0 and done.stdout.strip(), (conf, done.stderr)
        read.add(rel(tree, conf))
    for keyring in tree.machines.glob("*/etc/ceph/*.keyring"):
        done = subprocess.run(["ceph-authtool", "-l", str(keyring)], capture_output=True,
                              text=True)
        assert done.returncode == 0 and " key = " in done.stdout.replace("\n\t", " "), \
            (keyring, done.stderr)
        read.add(rel(tree, keyring))
    return read


def read_swift(tree: Tree, scratch: Path) -> set[str]:
    etc = tree.machines / "swift/etc/swift"
    done = swift_check(etc, scratch)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert set(seen["files"]) == {f"{k}-server.conf" for k in
                                  ("proxy", "account", "container", "object")}
    return {rel(tree, etc / name) for name in (*seen["files"], "swift.conf")}


def read_haproxy(tree: Tree) -> set[str]:
    cfg = tree.machines / "haproxy/etc/haproxy/haproxy.cfg"
    done = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return {rel(tree, cfg)}


def read_libvirt(tree: Tree) -> set[str]:
    etc = tree.machines / "nova-compute/etc/libvirt"
    code, out = libvirtd(etc / "libvirtd.conf", etc / "qemu.conf", etc / "secrets",
                         ("secret-list",))
    assert code == 0 and "Driver state initialization failed" not in out, out
    secrets = sorted(etc.glob("secrets/*.xml"))
    for xml in secrets:  # libvirtd loaded each secret (its .xml and its .base64 value)
        assert re.search(rf"^ {xml.stem} +ceph client\.", out, re.M), out
    return {rel(tree, p) for p in (etc / "libvirtd.conf", etc / "qemu.conf",
                                   *secrets, *(x.with_suffix(".base64") for x in secrets))}


def read_dropins(tree: Tree, scratch: Path) -> set[str]:
    """systemd-analyze verify of each host unit with a rendered drop-in, in a throwaway root
    with the distribution's units (verify resolves them inside --root)."""
    dropins = sorted(tree.host.glob("etc/systemd/system/*.service.d/*.conf"))
    root = scratch / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy("/usr/bin/systemd-nspawn", root / "usr/bin")
    shutil.copytree(tree.host / "etc/systemd/system", root / "etc/systemd/system")
    units = sorted({p.parent.name[:-len(".d")] for p in dropins})
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}", *units],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, ""), units
    return {rel(tree, p) for p in dropins}


def read_systemd_keys(tree: Tree) -> set[str]:
    files = [(p, NETWORKD) for top in (tree.machines, tree.host) for p in top.rglob("*")
             if p.suffix in (".network", ".netdev")]
    files += [(p, NSPAWN) for p in (tree.host / "etc/systemd/nspawn").glob("*.nspawn")]
    for path, binary in files:
        unknown = [key for key in systemd_keys(path) if key not in known_keys(binary)]
        assert not unknown, f"{path}: {unknown}"
    return {rel(tree, p) for p, _ in files}


def read_links(tree: Tree, scratch: Path) -> set[str]:
    """``systemctl --root`` reads each rendered wants/ link as enabled (the host's unit file
    standing in for the container's package)."""
    read = set()
    for link in sorted(tree.machines.glob("*/etc/systemd/system/*.wants/*")):
        rootfs = link.parents[4]
        root = scratch / "links" / rootfs.name
        shutil.copytree(rootfs / "etc/systemd", root / "etc/systemd", symlinks=True)
        unit = Path(str(link.readlink()))
        (root / unit.parent.relative_to("/")).mkdir(parents=True, exist_ok=True)
        shutil.copy(unit, root / unit.parent.relative_to("/"))
        done = subprocess.run(["systemctl", f"--root={root}", "is-enabled", unit.name],
                              capture_output=True, text=True)
        assert done.stdout.strip() == "enabled", (link, done.stderr)
        read.add(rel(tree, link) + LINK_SUFFIX)
    return read


def read_shadow(tree: Tree) -> set[str]:
    read = set()
    for shadow in sorted(tree.machines.glob("*/etc/shadow")):
        done = subprocess.run(["pwck", "-r", "-q", "-R", str(shadow.parents[1])],
                              capture_output=True, text=True)
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), shadow
        read.add(rel(tree, shadow))
    return read


def read_python(tree: Tree) -> set[str]:
    path = tree.machines / "horizon/etc/openstack-dashboard/local_settings.py"
    code = "import sys; exec(compile(open(sys.argv[1]).read(), sys.argv[1], 'exec'), {})"
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return {rel(tree, path)}


def test_every_rendered_file_is_read_by_its_real_reader_or_listed(catalog, tmp_path: Path):
    tree, oslo = catalog
    rendered = set(actual_files(tree))
    read = {
        "oslo.config": read_oslo(tree, oslo),
        "ceph-conf": read_ceph(tree),
        "swift": read_swift(tree, tmp_path / "rings"),
        "haproxy -c": read_haproxy(tree),
        "libvirtd": read_libvirt(tree),
        "systemd-analyze verify": read_dropins(tree, tmp_path),
        "systemd key tables": read_systemd_keys(tree),
        "systemctl --root": read_links(tree, tmp_path),
        "pwck": read_shadow(tree),
        "python": read_python(tree),
    }
    for reader, files in read.items():
        assert files, f"{reader} read nothing"
        assert files <= rendered, (reader, sorted(files - rendered))
    covered = set().union(*read.values())
    listed = {path for path in rendered if any(re.fullmatch(p, path) for p in UNREAD)}
    assert not covered & listed, sorted(covered & listed)  # a listed file that is read: unlist
    assert sorted(rendered - covered - listed) == [], "no reader and not in UNREAD"
    for pattern in UNREAD:  # every exception still names a rendered file
        assert any(re.fullmatch(pattern, path) for path in rendered), pattern
