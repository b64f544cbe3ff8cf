"""plan and observe: desired x observed -> typed changes, modes and owners, config sets; the
can-it-be-written checks made while observing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import load_bound

from renderer.errors import ApplyError, MissingDirectoryError
from renderer.masking import Masker
from renderer.observe import observe_file
from renderer.plan import SECRET_MODE, Change, plan_file
from renderer.report import diff_lines
from renderer.runner import plan_rendered
from renderer.system.real import RealSystem
from renderer.targets import Roots
from renderer.templates import Rendered


def planned(rendered, service, roots, system, masker=None):
    """observe, then plan one file (no records)."""
    masker = masker or Masker(b"k")
    observed = observe_file(rendered.spec, service, roots, system)
    return plan_file(rendered.spec, rendered.data, observed, None,
                     masker.holds_secret(rendered.data.decode()))


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
    change = planned(Rendered(service.files[0], b"password = pw\n"), service, roots, system)
    assert change.kind is Change.CREATE
    assert (change.uid, change.gid, change.mode) == (300, 301, SECRET_MODE)
    diff = diff_lines(change, Masker(b"k"))
    assert "pw\n" not in "".join(diff) and diff[0] == "--- /dev/null\n"


def test_unchanged_update_and_metadata(setup):
    service, roots, system, rootfs = setup
    target = rootfs / "etc/a/b.conf"
    target.write_bytes(b"same\n")
    target.chmod(0o600)
    masker = Masker(b"k")
    same = planned(Rendered(service.files[1], b"same\n"), service, roots, system, masker)
    assert same.kind is Change.NONE and same.mode == 0o600  # mode kept when not given
    other = planned(Rendered(service.files[1], b"other\n"), service, roots, system, masker)
    assert other.kind is Change.UPDATE and other.reasons == ("content",)
    diff = diff_lines(other, masker)
    assert "-same\n" in diff and "+other\n" in diff
    meta = planned(Rendered(service.files[0], b"x\n"), service, roots, system, masker)
    assert meta.kind is Change.CREATE
    (rootfs / "etc/a/a.conf").write_bytes(b"x\n")
    meta = planned(Rendered(service.files[0], b"x\n"), service, roots, system, masker)
    assert meta.kind is Change.METADATA and meta.reasons[0] == "owner 0:0 -> 300:301"


def test_missing_directory_only_with_create_dirs(setup):
    service, roots, system, rootfs = setup
    change = planned(Rendered(service.files[2], b"x\n"), service, roots, system)
    assert change.kind is Change.CREATE
    (rootfs / "etc/a").rename(rootfs / "etc/gone")
    with pytest.raises(MissingDirectoryError):
        planned(Rendered(service.files[1], b"x\n"), service, roots, system)


def test_missing_user_names_container_and_user(setup):
    service, roots, system, rootfs = setup
    (rootfs / "etc" / "passwd").write_text("root:x:0:0::/:/x\n")
    with pytest.raises(ApplyError, match="user 'svc' does not exist in container m1"):
        planned(Rendered(service.files[0], b"x\n"), service, roots, system)


def test_owner_outside_a_private_users_range_fails_while_observing(setup, tmp_path: Path):
    """--noop and a real run both observe: an owner the rootfs cannot hold fails both alike."""

    service, roots, system, rootfs = setup
    os.chown(rootfs, 327680, 327680)  # private users: ids 327680..393215
    spec = service.files[1]._replace(owner="70000")
    with pytest.raises(ApplyError, match="uid 70000 is outside the container's private range"):
        observe_file(spec, service, roots, system)


def test_config_sets_from_every_file_each_target_once(setup):
    service, roots, system, rootfs = setup
    (rootfs / "etc/a/a.conf").write_bytes(b"a\n")
    rendered = [Rendered(spec, b"a\n") for spec in service.files]
    plan = plan_rendered(service, rendered, roots, system, Masker(b"k"))
    sets = {a.unit: keys for a, keys in plan.config_sets.items()}
    assert sets == {"systemd-nspawn@m1.service": ("container:m1:/etc/a/a.conf",
                                                  "container:m1:/etc/a/b.conf"),
                    "httpd.service": ("container:m1:/etc/a/b.conf",)}


def test_service_changes_from_changed_files(setup):
    service, roots, system, rootfs = setup
    (rootfs / "etc/a/a.conf").write_bytes(b"a\n")
    (rootfs / "etc/a/b.conf").write_bytes(b"b\n")
    rendered = [Rendered(service.files[0], b"a\n"), Rendered(service.files[1], b"B\n"),
                Rendered(service.files[2], b"c\n"), Rendered(service.files[3], b"d\n")]
    plan = plan_rendered(service, rendered, roots, system, Masker(b"k"))
    assert plan.error is None
    assert {c.path.rsplit("/", 1)[1] for c in plan.changes} == {"b.conf", "c.conf", "m1.nspawn",
                                                                "a.conf"}
