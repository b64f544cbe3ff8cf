"""``include``: entries shared through service_templates/_lib/<name>.yaml (the container block)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from renderer.errors import ApplyError, LookupNotFound, ServiceError
from renderer.hiera import NOT_GIVEN
from renderer.observe import observe_file
from renderer.services import SHARED_DIR, Service, bind, load_service, resolve_machine
from renderer.services import load as load_module
from renderer.system.real import RealSystem
from renderer.targets import Roots

REPO = Path(__file__).resolve().parent.parent

BLOCK = """\
# two files every user of the block writes
files:
  - template: c.j2
    root: host
    dest: /n/{machine}.nspawn
    restart: container
  - template: c.j2
    dest: '/net/{item}.network'
    each: {lookup: 'nets.{machine}', default: {}}
    restart: container
"""


def tree(tmp_path: Path, service: str, block: str = BLOCK, name: str = "block") -> Path:
    templates = tmp_path / "templates"
    (templates / "svc").mkdir(parents=True)
    (templates / SHARED_DIR).mkdir()
    (templates / "svc" / "service.yaml").write_text(service)
    (templates / "svc" / "a.j2").write_text("x\n")
    (templates / SHARED_DIR / "c.j2").write_text("x\n")
    (templates / SHARED_DIR / f"{name}.yaml").write_text(block)
    return templates


DATA = {"nets.m1": {"mgmt": "192.0.2.1"}, "nets.control": {"mgmt": "192.0.2.2"},
        "control::machine": "control", "nets.x": "not a hash"}


def lookup(key: str, default: object) -> object:
    if key in DATA:
        return DATA[key]
    if default is NOT_GIVEN:
        raise LookupNotFound(key)
    return default


def bound(templates: Path) -> Service:
    definition = load_service(templates, "svc")
    return bind(definition, resolve_machine(definition, lookup), lookup)


def test_included_entries_take_the_place_of_the_include(tmp_path: Path):
    templates = tree(tmp_path, "machine: m1\nfiles:\n  - {template: a.j2, dest: /etc/a}\n"
                               "  - include: block\n  - {template: a.j2, dest: /etc/b}\n")
    service = bound(templates)
    included = templates / SHARED_DIR / "block.yaml"
    assert [(str(f.dest), f.source, f.line) for f in service.files] == [
        ("/etc/a", service.definition, 3), ("/n/m1.nspawn", included, 3),
        ("/net/mgmt.network", included, 7), ("/etc/b", service.definition, 5)]


def test_an_include_with_a_machine_puts_every_entry_there(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    templates = tree(tmp_path, "machine: m1\nfiles:\n  - include: block\n"
                               "  - include: block\n    machine: {lookup: control::machine}\n")
    reads: list[str] = []
    parse = load_module._parse

    def counting_parse(where):
        reads.append(where.path.name)
        return parse(where)

    monkeypatch.setattr(load_module, "_parse", counting_parse)
    definition = load_service(templates, "svc")
    assert reads == ["service.yaml", "block.yaml"]  # read once, included twice
    assert definition.needs_data
    service = bind(definition, resolve_machine(definition, lookup), lookup)
    assert [(f.machine, str(f.dest)) for f in service.files] == [
        (None, "/n/m1.nspawn"), (None, "/net/mgmt.network"),
        ("control", "/n/control.nspawn"), ("control", "/net/mgmt.network")]


@pytest.mark.parametrize("entry, message, line", [
    ("- include: nope", "include 'nope': .*nope.yaml not found", 3),
    ("- {include: block, colour: red}", r"unknown key\(s\): colour", 3),
    ("- include: ../block", "include must name a file in _lib/", 3),
    ("- {include: block, machine: Bad}", "invalid machine name", 3),
])
def test_include_errors_point_at_the_include(tmp_path: Path, entry: str, message: str,
                                             line: int):
    templates = tree(tmp_path, f"machine: m1\nfiles:\n  {entry}\n")
    with pytest.raises(ServiceError, match=message) as info:
        load_service(templates, "svc")
    assert (info.value.path, info.value.line) == (str(templates / "svc" / "service.yaml"), line)
    assert info.value.service == "svc"


@pytest.mark.parametrize("old, new, message, line", [
    ("    restart: container\n  - template", "    mode: rw\n  - template", "octal", 3),
    ("  - template: c.j2\n    dest: '/net", "  - include: other\n  - template: c.j2\n"
     "    dest: '/net", "cannot include another", 7),
    ("files:\n", "machine: m1\nfiles:\n", r"unknown key\(s\): machine", 2),
    (BLOCK, "# nothing to share\nfiles: []\n", "'files' must be a non-empty list", 2),
    ("    dest: '/net/{item}.network'\n", "    dest: '/net/{item}.network'\n    machine: m2\n",
     "sets the machine of its own entries", None),
])
def test_errors_in_an_included_file_point_into_it(tmp_path: Path, old: str, new: str,
                                                  message: str, line: int | None):
    block = BLOCK.replace(old, new, 1)
    assert block != BLOCK
    include = "  - include: block\n" + ("    machine: m3\n" if line is None else "")
    templates = tree(tmp_path, "machine: m1\nfiles:\n" + include, block)
    with pytest.raises(ServiceError, match=message) as info:
        load_service(templates, "svc")
    if line is None:  # the include gives a machine its entries already set: the include's error
        assert info.value.path == str(templates / "svc" / "service.yaml")
    else:
        assert (info.value.path, info.value.line) == (str(templates / SHARED_DIR / "block.yaml"),
                                                       line)


def test_data_errors_in_an_included_entry_point_into_the_included_file(tmp_path: Path):
    templates = tree(tmp_path, "machine: x\nfiles:\n  - include: block\n")
    with pytest.raises(ServiceError, match="must be a hash or a list") as info:
        bound(templates)
    assert (info.value.path, info.value.line) == (str(templates / SHARED_DIR / "block.yaml"), 7)


def test_an_observe_error_in_an_included_entry_points_into_the_included_file(tmp_path: Path):
    block = BLOCK.replace("    root: host\n", "    root: host\n    owner: nobody-here\n")
    templates = tree(tmp_path, "machine: m1\nfiles:\n  - include: block\n", block)
    (tmp_path / "host" / "n").mkdir(parents=True)
    (tmp_path / "host" / "etc").mkdir()
    (tmp_path / "host" / "etc" / "passwd").write_text("root:x:0:0::/:/x\n")
    service = bound(templates)
    with pytest.raises(ApplyError, match="user 'nobody-here' does not exist") as info:
        observe_file(service.files[0], service, Roots(tmp_path / "machines", tmp_path / "host"),
                     RealSystem(["true"], tmp_path / "state"))
    assert (info.value.path, info.value.line) == (str(templates / SHARED_DIR / "block.yaml"), 3)


def test_the_catalog_container_block_is_written_once():
    templates = REPO / "service_templates"
    glance = load_service(templates, "glance")
    container = templates / SHARED_DIR / "container.yaml"
    assert [(e.template, e.source, e.line) for e in glance.entries[-6:]] == [
        ("container.nspawn.j2", container, 6), ("container-host0.network.j2", container, 13),
        ("container-macvlan.network.j2", container, 18), ("", container, 26),
        ("", container, 29), ("", container, 31)]
    assert [e.kind.value for e in glance.entries[-3:]] == ["link", "line", "password"]
    assert glance.entries[-6].dest == PurePosixPath("/etc/systemd/nspawn/{machine}.nspawn")
    users = [path.parent.name for path in sorted(templates.glob("*/service.yaml"))
             if "include: container" in path.read_text()]
    assert len(users) == 15 and "host-network" not in users
