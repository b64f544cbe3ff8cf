"""system: RealSystem against a real directory tree (confinement, atomic writes), and the
DryRunSystem wrapped around it (reads delegated, mutations recorded)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from renderer.errors import MissingDirectoryError, MissingRootError, UnsafePathError
from renderer.system import TEMP_PREFIX
from renderer.system.dryrun import DryRunSystem
from renderer.system.real import RealSystem
from renderer.system.statedir import StateDirError

P = PurePosixPath


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "machines" / "keystone"
    (root / "etc" / "keystone").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nkeystone:x:163:163::/:/x\n")
    (root / "etc" / "group").write_text("root:x:0:\nkeystone:x:163:\n")
    return root


@pytest.fixture
def system(tmp_path: Path) -> RealSystem:
    return RealSystem(["true"], tmp_path / "state")


def test_write_and_read_back(system: RealSystem, rootfs: Path):
    staged = system.stage(rootfs, P("/etc/keystone/keystone.conf"), b"[DEFAULT]\n", 163, 163,
                          0o640)
    system.commit(staged)
    actual = system.read_file(rootfs, P("/etc/keystone/keystone.conf"))
    assert actual is not None
    assert (actual.data, actual.uid, actual.gid, actual.mode) == (b"[DEFAULT]\n", 163, 163, 0o640)
    assert not [p for p in (rootfs / "etc/keystone").iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_missing_file_and_missing_directory(system: RealSystem, rootfs: Path):
    assert system.read_file(rootfs, P("/etc/keystone/nope.conf")) is None
    with pytest.raises(MissingDirectoryError):
        system.read_file(rootfs, P("/etc/glance/glance-api.conf"))
    staged = system.stage(rootfs, P("/etc/glance/glance-api.conf"), b"x", 0, 0, 0o644,
                          create_dirs=True)
    system.commit(staged)
    assert (rootfs / "etc/glance/glance-api.conf").read_bytes() == b"x"


def test_missing_rootfs_is_an_error(system: RealSystem, tmp_path: Path):
    with pytest.raises(MissingRootError, match="root directory does not exist"):
        system.read_file(tmp_path / "machines" / "nova", P("/etc/nova/nova.conf"))


def test_absolute_symlink_resolves_inside_rootfs(system: RealSystem, rootfs: Path):
    """etc/keystone -> /etc must mean <rootfs>/etc, never the host's /etc."""
    (rootfs / "etc" / "keystone").rmdir()
    (rootfs / "etc" / "keystone").symlink_to("/etc")
    system.commit(system.stage(rootfs, P("/etc/keystone/keystone.conf"), b"in", 0, 0, 0o644))
    assert (rootfs / "etc" / "keystone.conf").read_bytes() == b"in"
    assert not Path("/etc/keystone.conf").exists() or \
        Path("/etc/keystone.conf").read_bytes() != b"in"


def test_dotdot_symlink_cannot_climb_out(system: RealSystem, rootfs: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (rootfs / "etc" / "keystone").rmdir()
    (rootfs / "etc" / "keystone").symlink_to("../../../../outside")
    with pytest.raises(MissingDirectoryError):  # <rootfs>/outside does not exist
        system.stage(rootfs, P("/etc/keystone/k.conf"), b"in", 0, 0, 0o644)
    (rootfs / "outside").mkdir()
    system.commit(system.stage(rootfs, P("/etc/keystone/k.conf"), b"in", 0, 0, 0o644))
    assert list(outside.iterdir()) == []
    assert (rootfs / "outside" / "k.conf").read_bytes() == b"in"


def test_final_symlink_device_and_fifo_refused(system: RealSystem, rootfs: Path):
    (rootfs / "etc/keystone/keystone.conf").symlink_to("/dev/null")
    with pytest.raises(UnsafePathError, match="symlink"):
        system.read_file(rootfs, P("/etc/keystone/keystone.conf"))
    os.mkfifo(rootfs / "etc/keystone/fifo.conf")
    with pytest.raises(UnsafePathError, match="regular file"):
        system.read_file(rootfs, P("/etc/keystone/fifo.conf"))


def test_ids_come_from_the_containers_own_files(system: RealSystem, rootfs: Path):
    assert system.ids(rootfs, "passwd")["keystone"] == 163
    assert system.ids(rootfs, "group")["keystone"] == 163


def test_discard_leaves_nothing(system: RealSystem, rootfs: Path):
    target = rootfs / "etc/keystone/keystone.conf"
    target.write_bytes(b"old")
    system.discard(system.stage(rootfs, P("/etc/keystone/keystone.conf"), b"new", 0, 0, 0o644))
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["keystone.conf"]


def test_dry_run_writes_nothing(tmp_path: Path, rootfs: Path):
    system = DryRunSystem(RealSystem(["false"], tmp_path / "state"))
    system.commit(system.stage(rootfs, P("/etc/keystone/keystone.conf"), b"x", 0, 0, 0o644))
    system.write_state("hmac.key", b"k" * 32)
    system.remove_file(rootfs, P("/etc/passwd"))
    assert system.systemctl(["try-restart", "x.service"]) == (0, "")
    assert not (rootfs / "etc/keystone/keystone.conf").exists()
    assert (rootfs / "etc/passwd").exists()
    assert not (tmp_path / "state").exists()
    assert system.recorded == [f"write {rootfs}/etc/keystone/keystone.conf 0:0 0644",
                               "state hmac.key", f"remove {rootfs}/etc/passwd",
                               "systemctl try-restart x.service"]


def test_dry_run_reads_and_fails_like_the_system_it_wraps(tmp_path: Path, rootfs: Path):
    real = RealSystem(["true"], tmp_path / "state")
    dry = DryRunSystem(real)
    (rootfs / "etc/keystone/keystone.conf").write_bytes(b"x")
    assert dry.read_file(rootfs, P("/etc/keystone/keystone.conf")) == \
        real.read_file(rootfs, P("/etc/keystone/keystone.conf"))
    assert dry.ids(rootfs, "passwd") == real.ids(rootfs, "passwd")
    with pytest.raises(MissingDirectoryError):
        dry.read_file(rootfs, P("/etc/glance/glance-api.conf"))
    assert dry.recorded == []


def test_systemctl_reports_failure(tmp_path: Path):
    status, _ = RealSystem(["false"], tmp_path).systemctl(["try-restart", "x.service"])
    assert status == 1
    status, output = RealSystem(["/nonexistent/systemctl"], tmp_path).systemctl(["x"])
    assert status == 1 and "nonexistent" in output


def test_cache_dir_refused_when_others_can_write(system: RealSystem, tmp_path: Path):
    directory = system.cache_dir("cache/jinja", create=True)
    assert directory is not None and directory.path == tmp_path / "state" / "cache" / "jinja"
    assert os.fstat(directory.fd).st_mode & 0o777 == 0o700
    (tmp_path / "state" / "cache" / "jinja").chmod(0o777)  # anyone could plant code there
    with pytest.raises(StateDirError, match="writable by others"):
        system.cache_dir("cache/jinja", create=True)
    assert DryRunSystem(RealSystem(["true"], tmp_path / "other")).cache_dir("x", True) is None
    assert not (tmp_path / "other").exists()


def test_state_written_0600(system: RealSystem, tmp_path: Path):
    system.write_state("hmac.key", b"k" * 32)
    assert system.read_state("hmac.key") == b"k" * 32
    assert (tmp_path / "state" / "hmac.key").stat().st_mode & 0o777 == 0o600


def test_stale_temps_listed_by_reads_removed_only_on_request(tmp_path: Path, rootfs: Path):
    stale = rootfs / "etc/keystone" / f"{TEMP_PREFIX}keystone.conf.0badc0de"
    stale.write_bytes(b"half")
    other = rootfs / "etc/keystone" / f"{TEMP_PREFIX}other.conf.0badc0de"  # another file's
    other.write_bytes(b"half")
    keep = rootfs / "etc/keystone/keystone.conf.orig"  # not ours: never touched
    keep.write_bytes(b"x")
    real = RealSystem(["true"], tmp_path / "state")
    dest = P("/etc/keystone/keystone.conf")
    real.read_file(rootfs, dest)
    names = real.stale_temps(rootfs, dest)
    assert names == [stale.name] and stale.exists()  # reading never removes
    dry = DryRunSystem(real)
    dry.remove_temps(rootfs, dest, names)
    assert stale.exists() and dry.recorded == [f"remove {stale}"]
    real.remove_temps(rootfs, dest, names)
    assert not stale.exists() and other.exists() and keep.exists()


def test_follow_symlink_writes_the_target_inside_the_root(system: RealSystem, rootfs: Path):
    link = rootfs / "etc/keystone/keystone.conf"
    link.symlink_to("../../usr/share/keystone/keystone.conf")  # one level too many: clamped
    (rootfs / "usr/share/keystone").mkdir(parents=True)
    with pytest.raises(UnsafePathError, match="is a symlink to"):
        system.read_file(rootfs, P("/etc/keystone/keystone.conf"))
    assert system.read_file(rootfs, P("/etc/keystone/keystone.conf"), follow=True) is None
    system.commit(system.stage(rootfs, P("/etc/keystone/keystone.conf"), b"new", 0, 0, 0o644,
                               follow=True))
    assert link.is_symlink() and link.read_bytes() == b"new"
    actual = system.read_file(rootfs, P("/etc/keystone/keystone.conf"), follow=True)
    assert actual is not None and actual.data == b"new"


def test_stale_temp_removed_by_the_next_run_and_reported(scratch, run):
    synth = scratch({"app": [{"dest": "/etc/app/app.conf"}]})
    assert run(*synth.options(), "app").code == 2
    stale = synth.rootfs("app") / f"etc/app/{TEMP_PREFIX}app.conf.1234abcd"
    stale.write_bytes(b"left by a killed run")
    assert run(*synth.options(), "app", "--noop").code == 0 and stale.exists()
    result = run(*synth.options(), "app")
    assert result.code == 0 and not stale.exists()
    assert f"app: note: removed stale temp file {stale}" in result.out


def test_state_temps_of_a_killed_run_are_removed_on_request(tmp_path: Path):
    real = RealSystem(["true"], tmp_path / "state")
    real.write_state("services/app.json", b"{}")
    real.write_state("versions/app/" + "a" * 64, b"kept")
    left = [tmp_path / "state/services" / f"{TEMP_PREFIX}app.json.0badc0de",
            tmp_path / "state/versions/app" / f"{TEMP_PREFIX}{'b' * 64}.0badc0de"]
    for path in left:
        path.write_bytes(b"half")
    dry = DryRunSystem(real)
    assert dry.remove_state_temps() == [] and all(p.exists() for p in left)
    assert sorted(real.remove_state_temps()) == sorted(map(str, left))
    assert not any(p.exists() for p in left)
    assert real.read_state("services/app.json") == b"{}"
