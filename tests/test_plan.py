"""plan: desired x actual -> typed changes, modes and owners, masked diffs, restart set."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_bound

from renderer.errors import ApplyError, MissingDirectoryError
from renderer.masking import Masker
from renderer.plan import SECRET_MODE, Change, Roots, plan_file, plan_service
from renderer.system import RealSystem
from renderer.templates import Rendered


@pytest.fixture
def setup(tmp_path: Path):
    svc = tmp_path / "templates" / "svc"
    svc.mkdir(parents=True)
    (svc / "service.yaml").write_text(
        "machine: m1\nfiles:\n"
        "  - {template: a.j2, dest: /etc/a/a.conf, owner: svc, group: svc, restart: container}\n"
        "  - {template: b.j2, dest: /etc/a/b.conf, restart: [container, 'unit:httpd']}\n"
        "  - {template: c.j2, dest: /etc/new/c.conf, create_dirs: true}\n"
        "  - {template: d.j2, dest: /etc/nspawn/m1.nspawn, root: host}\n")
    for name in "abcd":
        (svc / f"{name}.j2").write_text("x\n")
    rootfs = tmp_path / "machines" / "m1"
    (rootfs / "etc" / "a").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text("svc:x:300:300::/:/x\n")
    (rootfs / "etc" / "group").write_text("svc:x:301:\n")
    (tmp_path / "host" / "etc" / "nspawn").mkdir(parents=True)
    service = load_bound(tmp_path / "templates", "svc")
    roots = Roots(tmp_path / "machines", tmp_path / "host")
    return service, roots, RealSystem(["true"], tmp_path / "state"), rootfs


def test_create_with_owner_from_container_and_secret_mode(setup):
    service, roots, system, rootfs = setup
    change = plan_file(Rendered(service.files[0], b"password = pw\n"), service, roots, system,
                       Masker(b"k"))
    assert change.kind is Change.CREATE
    assert (change.uid, change.gid, change.mode) == (300, 301, SECRET_MODE)
    assert "pw\n" not in "".join(change.diff) and change.diff[0] == "--- /dev/null\n"


def test_unchanged_update_and_metadata(setup):
    service, roots, system, rootfs = setup
    target = rootfs / "etc/a/b.conf"
    target.write_bytes(b"same\n")
    target.chmod(0o600)
    masker = Masker(b"k")
    same = plan_file(Rendered(service.files[1], b"same\n"), service, roots, system, masker)
    assert same.kind is Change.NONE and same.mode == 0o600  # mode kept when not given
    other = plan_file(Rendered(service.files[1], b"other\n"), service, roots, system, masker)
    assert other.kind is Change.UPDATE and other.reasons == ("content",)
    assert "-same\n" in other.diff and "+other\n" in other.diff
    meta = plan_file(Rendered(service.files[0], b"x\n"), service, roots, system, masker)
    assert meta.kind is Change.CREATE
    (rootfs / "etc/a/a.conf").write_bytes(b"x\n")
    meta = plan_file(Rendered(service.files[0], b"x\n"), service, roots, system, masker)
    assert meta.kind is Change.METADATA and meta.reasons[0] == "owner 0:0 -> 300:301"


def test_missing_directory_only_with_create_dirs(setup):
    service, roots, system, rootfs = setup
    change = plan_file(Rendered(service.files[2], b"x\n"), service, roots, system, Masker(b"k"))
    assert change.kind is Change.CREATE
    (rootfs / "etc/a").rename(rootfs / "etc/gone")
    with pytest.raises(MissingDirectoryError):
        plan_file(Rendered(service.files[1], b"x\n"), service, roots, system, Masker(b"k"))


def test_missing_user_names_container_and_user(setup):
    service, roots, system, rootfs = setup
    (rootfs / "etc" / "passwd").write_text("root:x:0:0::/:/x\n")
    with pytest.raises(ApplyError, match="user 'svc' does not exist in container m1"):
        plan_file(Rendered(service.files[0], b"x\n"), service, roots, system, Masker(b"k"))


def test_service_actions_only_from_changed_files_each_once(setup):
    service, roots, system, rootfs = setup
    (rootfs / "etc/a/a.conf").write_bytes(b"a\n")
    (rootfs / "etc/a/b.conf").write_bytes(b"b\n")
    rendered = [Rendered(service.files[0], b"a\n"), Rendered(service.files[1], b"B\n"),
                Rendered(service.files[2], b"c\n"), Rendered(service.files[3], b"d\n")]
    plan = plan_service(service, rendered, roots, system, Masker(b"k"))
    assert plan.error is None
    assert [a.unit for a in plan.actions] == ["systemd-nspawn@m1.service", "httpd.service"]
    assert {c.path.rsplit("/", 1)[1] for c in plan.changes} == {"b.conf", "c.conf", "m1.nspawn",
                                                                "a.conf"}
