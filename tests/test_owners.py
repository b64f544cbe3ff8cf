"""Owners in the container's terms, including containers with private users (a shifted uid base).

``systemd-nspawn --private-users`` maps container uid 0..65535 onto host uid BASE..BASE+65535 and
takes BASE from the owner of the rootfs directory. These tests build such a rootfs for real
(chowned to 10 * 65536) and check the host-side ids of what render writes, and that a second run
reads them back in the container's terms (in sync, exit 0).
"""

from __future__ import annotations

import os

import pytest

BASE = 10 * 0x10000


@pytest.fixture
def shifted(scratch):
    synth = scratch({
        "svc": [{"dest": "/etc/svc/owned.conf", "owner": "svc", "group": "svc"},
                {"dest": "/etc/svc/plain.conf"},
                {"dest": "/etc/svc/new/deep.conf", "create_dirs": True, "owner": "svc"}],
    })
    rootfs = synth.rootfs("svc")
    for path in [rootfs, *rootfs.rglob("*")]:
        os.lchown(path, BASE, BASE)  # a private-users rootfs: container root is BASE
    return synth, rootfs


def test_ids_are_shifted_on_write_and_unshifted_on_read(shifted, run):
    synth, rootfs = shifted
    first = run(*synth.options(), "svc")
    assert first.code == 2, first.err
    owned, plain = rootfs / "etc/svc/owned.conf", rootfs / "etc/svc/plain.conf"
    assert (owned.stat().st_uid, owned.stat().st_gid) == (BASE + 163, BASE + 163)
    assert (plain.stat().st_uid, plain.stat().st_gid) == (BASE, BASE)  # container root
    new_dir = rootfs / "etc/svc/new"
    assert (new_dir.stat().st_uid, new_dir.stat().st_gid) == (BASE, BASE)
    assert (new_dir / "deep.conf").stat().st_uid == BASE + 163
    again = run(*synth.options(), "svc")
    assert (again.code, again.err) == (0, ""), again.out
    # an owner fixed by hand on the host (unshifted) is seen as the container sees it
    os.chown(owned, 163, 163)
    drift = run(*synth.options(), "svc", "--noop")
    assert drift.code == 2 and "owner 65534:65534 -> 163:163" in drift.out, drift.out


def test_kept_owner_stays_in_the_container_range(shifted, run):
    synth, rootfs = shifted
    plain = rootfs / "etc/svc/plain.conf"
    plain.write_text("old\n")
    os.chown(plain, BASE + 33, BASE + 44)
    assert run(*synth.options(), "svc").code == 2
    assert (plain.stat().st_uid, plain.stat().st_gid) == (BASE + 33, BASE + 44)


def test_missing_user_names_container_and_user(shifted, run):
    synth, rootfs = shifted
    definition = synth.templates / "svc" / "service.yaml"
    definition.write_text(definition.read_text().replace("owner: svc", "owner: glance", 1))
    result = run(*synth.options(), "svc")
    assert result.code == 4
    assert result.err.splitlines() == [
        f"render: svc: {definition}:2: user 'glance' does not exist in container svc "
        f"({rootfs}/etc/passwd)"]
    assert not (rootfs / "etc/svc/plain.conf").exists()


def test_ids_beyond_the_range_and_mismatched_bases_are_errors(shifted, run):
    synth, rootfs = shifted
    definition = synth.templates / "svc" / "service.yaml"
    definition.write_text(definition.read_text().replace("owner: svc", "owner: 70000", 1))
    result = run(*synth.options(), "svc")
    assert result.code == 4 and "uid 70000 is outside the container's private range" in \
        result.err, result.err
    assert not (rootfs / "etc/svc/plain.conf").exists()
    os.chown(rootfs, BASE, BASE + 0x10000)
    result = run(*synth.options(), "svc")
    assert result.code == 4 and "GID base" in result.err and "do not match" in result.err


def test_existing_owner_and_mode_kept_new_secret_file_0640(scratch, run):
    synth = scratch({"svc": [
        {"dest": "/etc/svc/kept.conf", "text": "debug = true\n"},
        {"dest": "/etc/svc/secret.conf", "text": "[database]\npassword = {{ lookup('pw') }}\n"},
        {"dest": "/etc/svc/flagged.conf", "secret": True},
    ]}, data={"pw": "s3cret-value"})
    kept = synth.rootfs("svc") / "etc/svc/kept.conf"
    kept.write_text("debug = false\n")
    os.chown(kept, 33, 44)
    kept.chmod(0o600)
    result = run(*synth.options(), "svc")
    assert result.code == 2, result.err
    assert "s3cret-value" not in result.out + result.err
    st = kept.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (33, 44, 0o600)
    for name in ("secret.conf", "flagged.conf"):
        assert (synth.rootfs("svc") / "etc/svc" / name).stat().st_mode & 0o7777 == 0o640
