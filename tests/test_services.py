from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from renderer.errors import LookupNotFound, ServiceError
from renderer.hiera import NOT_GIVEN, Hiera
from renderer.scope import build_scope
from renderer.services import (
    ActionKind,
    Root,
    Service,
    bind,
    bind_in_scope,
    list_services,
    load_service,
)

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, templates: tuple[str, ...] = ("a.j2",)) -> Path:
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "service.yaml").write_text(text)
    for name in templates:
        (directory / name).write_text("x\n")
    return tmp_path


def sample(name: str) -> Service:
    """A sample service bound to the sample hieradata, as render binds it."""
    hiera = Hiera.load(REPO / "hieradata" / "hiera.yaml")
    return bind_in_scope(load_service(REPO / "service_templates", name), hiera,
                         build_scope("controller1.example.com", None, []))


def test_sample_keystone_definition():
    assert not load_service(REPO / "service_templates", "keystone").bound  # networks: data
    service = sample("keystone")
    assert service.machine == "keystone"
    conf = service.files[0]
    assert conf.dest == PurePosixPath("/etc/keystone/keystone.conf")
    assert (conf.owner, conf.group, conf.mode, conf.root) == ("keystone", "keystone", 0o640,
                                                               Root.CONTAINER)
    assert conf.actions[0].kind is ActionKind.CONTAINER
    assert conf.actions[0].unit == "systemd-nspawn@keystone.service"
    nspawn = service.files[2]
    assert nspawn.root is Root.HOST
    assert nspawn.dest == PurePosixPath("/etc/systemd/nspawn/keystone.nspawn")
    assert conf.oslo_namespaces is not None and "oslo.cache" in conf.oslo_namespaces
    assert nspawn.oslo_namespaces is None
    assert "keystone" in list_services(REPO / "service_templates")


def test_restart_kinds(tmp_path: Path):
    base = write(tmp_path, "machine: m1\nfiles:\n  - template: a.j2\n    dest: /etc/a\n"
                           "    restart: [container, 'unit:httpd', 'host:systemd-networkd',"
                           " container, daemon-reload, 'host-reload:systemd-networkd']\n")
    actions = load_service(base, "svc").files[0].actions
    assert [a.systemctl_args() for a in actions] == [
        ["try-restart", "systemd-nspawn@m1.service"],
        ["--machine=m1", "try-restart", "httpd.service"],
        ["try-restart", "systemd-networkd.service"],
        ["--machine=m1", "daemon-reload"],
        ["try-reload-or-restart", "systemd-networkd.service"]]
    assert [a.first for a in actions] == [False, False, False, True, False]


DATA = {"api::machine": "nova-api", "conductor::machine": "control",
        "scheduler::machine": "control", "units": ["l3", "dhcp"],
        "nets.control": {"mgmt": "192.0.2.1", "storage": "dhcp"}}


def lookup(key, default):
    if key in DATA:
        return DATA[key]
    if default is NOT_GIVEN:
        raise LookupNotFound(key)
    return default


def test_machines_and_repeated_files_come_from_the_data(tmp_path: Path):
    base = write(tmp_path, """\
machine: {lookup: api::machine}
files:
  - {template: a.j2, dest: /etc/nova.conf, restart: 'unit:nova-api'}
  - {template: a.j2, dest: /etc/nova.conf, restart: 'unit:nova-conductor',
     machine: {lookup: conductor::machine}}
  - {template: a.j2, dest: /etc/nova.conf, restart: 'unit:nova-scheduler',
     machine: {lookup: scheduler::machine}}
  - {template: a.j2, dest: '/n/{machine}.nspawn', root: host, restart: container,
     machine: {lookup: conductor::machine}}
  - {template: a.j2, dest: '/net/{item}.network', each: {lookup: 'nets.{machine}', default: {}},
     machine: {lookup: scheduler::machine}}
  - {template: a.j2, dest: '/d/{item}.service.d/x.conf', each: {lookup: units},
     restart: [daemon-reload, 'unit:{item}']}
""")
    service = load_service(base, "svc")
    assert not service.bound and service.files == ()
    bound = bind(service, lookup)
    assert bound.bound and bound.machine == "nova-api"
    by_dest = {(f.machine, str(f.dest)): f for f in bound.files}
    assert list(by_dest) == [
        (None, "/etc/nova.conf"), ("control", "/etc/nova.conf"), ("control", "/n/control.nspawn"),
        ("control", "/net/mgmt.network"), ("control", "/net/storage.network"),
        (None, "/d/l3.service.d/x.conf"), (None, "/d/dhcp.service.d/x.conf")]
    # conductor and scheduler share a container: one nova.conf that restarts both
    shared = by_dest[("control", "/etc/nova.conf")]
    assert [a.describe() for a in shared.actions] == ["nova-conductor.service in control",
                                                      "nova-scheduler.service in control"]
    assert by_dest[("control", "/n/control.nspawn")].actions[0].unit == \
        "systemd-nspawn@control.service"
    assert by_dest[("control", "/net/storage.network")].value == "dhcp"
    dropin = by_dest[(None, "/d/l3.service.d/x.conf")]
    assert dropin.item == "l3" and [a.systemctl_args() for a in dropin.actions] == [
        ["--machine=nova-api", "daemon-reload"], ["--machine=nova-api", "try-restart",
                                                  "l3.service"]]
    assert bind(bound, None) is bound


@pytest.mark.parametrize("entry, data, message", [
    ("{template: a.j2, dest: /a, machine: {lookup: m}}", {}, "hiera key 'm' not found"),
    ("{template: a.j2, dest: /a, machine: {lookup: m}}", {"m": "Bad Name"}, "machine name"),
    ("{template: a.j2, dest: '/{item}', each: {lookup: e}}", {"e": "x"}, "hash or a list"),
    ("{template: a.j2, dest: '/{item}', each: {lookup: e}}", {"e": ["a/b"]}, "file name"),
    ("{template: a.j2, dest: /a, machine: {lookup: m}}\n"
     "  - {template: b.j2, dest: /a, machine: {lookup: m}}", {"m": "x"}, "listed twice"),
])
def test_data_errors_name_the_entry(tmp_path: Path, entry: str, data: dict, message: str):
    base = write(tmp_path, f"files:\n  - {entry}\n", templates=("a.j2", "b.j2"))
    with pytest.raises(ServiceError, match=message) as info:
        bind(load_service(base, "svc"), lambda key, default: data[key] if key in data
             else lookup(key, default))
    assert info.value.line == (3 if "b.j2" in entry else 2)
    assert info.value.path.endswith("service.yaml")


def test_item_placeholder_needs_each(tmp_path: Path):
    with pytest.raises(ServiceError, match="needs 'each'"):
        load_service(write(tmp_path, "files:\n  - {template: a.j2, dest: '/{item}'}\n"), "svc")


@pytest.mark.parametrize("body, message, line", [
    ("files:\n  - template: a.j2\n    dest: etc/a\n", "absolute path", 2),
    ("files:\n  - template: a.j2\n    dest: /etc/../a\n", "'..'", 2),
    ("files:\n  - template: nope.j2\n    dest: /etc/a\n", "not found", 2),
    ("files:\n  - template: a.j2\n    dest: /etc/a\n    mode: rw\n", "octal", 2),
    ("files:\n  - template: a.j2\n    dest: /etc/a\n    restart: reboot\n", "restart must", 2),
    ("files:\n  - template: a.j2\n    dest: /etc/a\n    colour: red\n", "unknown key", 2),
    ("machine: Bad Name\nfiles: []\n", "machine name", 1),
    ("files:\n  - template: a.j2\n    dest: /etc/a\n  - template: a.j2\n    dest: /etc/a\n",
     "listed twice", 4),
    ("files: [\n", "YAML syntax error", 2),
    ("files:\n  - template: a.j2\n    dest: /etc/a\n    oslo_namespaces: [nova.conf]\n",
     "needs validate: ini", 2),
    ("files:\n  - template: a.j2\n    dest: /etc/a\n    validate: ini\n"
     "    oslo_namespaces: nova.conf\n", "list of namespace names", 2),
])
def test_invalid_definitions_name_file_and_line(tmp_path: Path, body: str, message: str,
                                                line: int):
    base = write(tmp_path, body)
    with pytest.raises(ServiceError, match=message) as info:
        load_service(base, "svc")
    assert info.value.path.endswith("service.yaml")
    assert info.value.line == line


def test_unknown_service_lists_known(tmp_path: Path):
    with pytest.raises(ServiceError, match=r"unknown service 'swift' \(known: cinder"):
        load_service(REPO / "service_templates", "swift")


def test_mode_octal_int_and_string(tmp_path: Path):
    base = write(tmp_path, "files:\n  - {template: a.j2, dest: /etc/a, mode: 0640}\n")
    assert load_service(base, "svc").files[0].mode == 0o640
