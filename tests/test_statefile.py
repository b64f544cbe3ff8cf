"""statefile and targets: a target's key and display path; the one-time upgrade of format-1
records (display-path keys) under any spelling of the roots, without re-hashing a record that no
longer matches what is on disk."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from renderer import state as st
from renderer.services import Root
from renderer.statefile import migrate_files, migrate_units
from renderer.targets import Roots, Target

CONF = Target(Root.CONTAINER, "keystone", PurePosixPath("/etc/keystone/keystone.conf"))
NSPAWN = Target(Root.HOST, None, PurePosixPath("/etc/systemd/nspawn/keystone.nspawn"))


def test_key_and_display(tmp_path: Path):
    roots = Roots(Path("build/machines"), Path("/"))
    assert CONF.key == "container:keystone:/etc/keystone/keystone.conf"
    assert NSPAWN.key == "host:-:/etc/systemd/nspawn/keystone.nspawn"
    assert roots.display(CONF) == "build/machines/keystone/etc/keystone/keystone.conf"
    assert roots.display(NSPAWN) == "/etc/systemd/nspawn/keystone.nspawn"
    assert roots.spellings(NSPAWN)[0] == "//etc/systemd/nspawn/keystone.nspawn"  # as 1 wrote it


def legacy(roots: Roots, index: int, hashes: dict[Target, str]) -> st.ServiceState:
    """A format-1 state as the previous release wrote it under one spelling of the roots."""
    spelled = {t: roots.spellings(t)[index] for t in hashes}
    data = st.ServiceState(legacy=True)
    for target, hashed in hashes.items():
        data.files[spelled[target]] = st.FileRecord(hashed, "t")
    data.files["/elsewhere/gone.conf"] = st.FileRecord("x", "t")
    data.units["container:-:u"] = st.UnitRecord(
        st.config_hash([(spelled[t], h) for t, h in hashes.items()], scheme="v1"), "t")
    data.units["unit:keystone:httpd.service"] = st.UnitRecord("v1:" + "0" * 64, "t")
    return data


def test_upgrade_under_each_spelling(tmp_path: Path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    roots = Roots(tmp_path / "link" / "machines", tmp_path / "link" / "host")
    hashes = {CONF: "a" * 64, NSPAWN: "b" * 64}
    for index in range(3):
        state = legacy(roots, index, hashes)
        migrate_files(state, hashes, roots)
        assert set(state.files) == {CONF.key, NSPAWN.key}  # the file of another tree: dropped
        migrate_units(state, {"container:-:u": list(hashes.items()),
                              "unit:keystone:httpd.service": [(CONF, "a" * 64)]}, roots)
        assert state.units["container:-:u"].hash == \
            st.config_hash([(CONF.key, "a" * 64), (NSPAWN.key, "b" * 64)])
        assert state.units["unit:keystone:httpd.service"].hash == "v1:" + "0" * 64  # owed
        assert not state.legacy and state.upgraded


def test_current_format_is_left_alone():
    state = st.ServiceState(files={"k": st.FileRecord("h", "t")})
    migrate_files(state, [], Roots(Path("m"), Path("h")))
    assert state.files == {"k": st.FileRecord("h", "t")} and not state.upgraded
