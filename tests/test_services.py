from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from renderer.errors import LookupNotFound, ServiceError, ServiceErrors
from renderer.hiera import NOT_GIVEN, Hiera
from renderer.names import SUBCOMMANDS, is_name
from renderer.runner import bind_in_scope
from renderer.scope import Scope, build_scope
from renderer.services import (
    ActionKind,
    Root,
    Service,
    ServiceDef,
    bind,
    list_services,
    load_service,
    resolve_machine,
)

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, templates: tuple[str, ...] = ("a.j2",)) -> Path:
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "service.yaml").write_text(text)
    for name in templates:
        (directory / name).write_text("x\n")
    return tmp_path


def bound(templates: Path, name: str = "svc", lookup=None) -> Service:
    """Load and bind, as render does, with ``lookup`` (None: a definition that needs no data)."""
    definition = load_service(templates, name)
    return bind(definition, resolve_machine(definition, lookup), lookup)


def sample(name: str) -> Service:
    """A sample service bound to the sample hieradata, as render binds it."""
    hiera = Hiera.load(REPO / "hieradata" / "hiera.yaml")
    return bind_in_scope(load_service(REPO / "service_templates", name),
                         build_scope("controller1.example.com", None, []), lambda: hiera)[0]


def test_sample_keystone_definition():
    assert load_service(REPO / "service_templates", "keystone").needs_data  # networks: data
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
                           " container, daemon-reload, 'host-reload:systemd-networkd',"
                           " host-daemon-reload]\n")
    actions = bound(base).files[0].actions
    assert [a.systemctl_args() for a in actions] == [
        ["try-restart", "systemd-nspawn@m1.service"],
        ["--machine=m1", "try-restart", "httpd.service"],
        ["try-restart", "systemd-networkd.service"],
        ["--machine=m1", "daemon-reload"],
        ["try-reload-or-restart", "systemd-networkd.service"],
        ["daemon-reload"]]  # the host's systemd: a host unit's drop-in
    assert [a.first for a in actions] == [False, False, False, True, False, True]
    assert actions[-1].describe() == "systemd (daemon-reload) on the host"
    assert not actions[-1].from_container and actions[-1].running_check() is None


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
    definition = load_service(base, "svc")
    assert isinstance(definition, ServiceDef) and definition.needs_data
    service = bind(definition, resolve_machine(definition, lookup), lookup)
    assert service.machine == "nova-api"
    by_dest = {(f.machine, str(f.dest)): f for f in service.files}
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
        bound(base, lookup=lambda key, default: data[key] if key in data
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
        bound(base)  # a path listed twice is found when bound; the rest when loaded
    assert info.value.path.endswith("service.yaml")
    assert info.value.line == line


def test_unknown_service_lists_known(tmp_path: Path):
    with pytest.raises(ServiceError, match=r"unknown service 'trove' \(known: cinder"):
        load_service(REPO / "service_templates", "trove")  # not in the catalog


def test_mode_octal_int_and_string(tmp_path: Path):
    base = write(tmp_path, "files:\n  - {template: a.j2, dest: /etc/a, mode: 0640}\n")
    assert bound(base).files[0].mode == 0o640


# --- lines beside the data ----------------------------------------------------------------------

def test_a_missed_lookup_default_is_the_data_as_written(tmp_path: Path):
    """A glance copy in a container the data attaches no networks to: the macvlan entry's
    ``default: {}`` is an empty hash (it once held the entry's line), so no macvlan file."""
    templates = tmp_path / "service_templates"
    shutil.copytree(REPO / "service_templates", templates)
    shutil.copytree(templates / "glance", templates / "imagecache")
    definition = templates / "imagecache" / "service.yaml"
    definition.write_text(definition.read_text().replace("machine: glance\n",
                                                         "machine: imagecache\n"))
    hiera = Hiera.load(REPO / "hieradata" / "hiera.yaml")
    service, _ = bind_in_scope(load_service(templates, "imagecache"),
                               build_scope("controller1.example.com", None, []), lambda: hiera)
    assert [str(f.dest) for f in service.files] == [
        "/etc/glance/glance-api.conf", "/etc/ceph/ceph.conf",
        "/etc/ceph/ceph.client.glance.keyring", "/etc/systemd/nspawn/imagecache.nspawn",
        "/etc/systemd/network/80-container-host0.network",
        "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
        "/etc/securetty", "/etc/shadow"]


def test_defaults_hold_no_line_numbers(tmp_path: Path):
    base = write(tmp_path, "files:\n  - template: a.j2\n    dest: '/{item}'\n"
                           "    each: {lookup: nets, default: {a: {b: 1}, c: {}}}\n")
    each = load_service(base, "svc").entries[0].each
    assert each is not None and each.default == {"a": {"b": 1}, "c": {}}
    assert [(f.item, f.value) for f in bound(base, lookup=lookup).files] == [
        ("a", {"b": 1}), ("c", {})]


LINES = """\
# a comment first: the mapping starts on line 2
machine: m1

files:
  - template: a.j2
    dest: /etc/a
  # between entries
  - {template: a.j2, dest: /etc/b}
  -
    template: a.j2
    dest: /etc/c
"""


def test_every_entry_knows_its_line(tmp_path: Path):
    service = bound(write(tmp_path, LINES))
    assert [(str(f.dest), f.line) for f in service.files] == [
        ("/etc/a", 5), ("/etc/b", 8), ("/etc/c", 10)]
    assert {f.source for f in service.files} == {service.definition}


@pytest.mark.parametrize("old, new, line", [
    ("    dest: /etc/c\n", "    dest: /etc/c\n    mode: rw\n", 10),
    ("dest: /etc/b}", "dest: /etc/b, restart: reboot}", 8),
    ("machine: m1\n", "machine: m1\ncolour: red\n", 2),
    ("machine: m1\n", "machine: Bad\n", 2),
])
def test_error_lines_point_at_the_entry(tmp_path: Path, old: str, new: str, line: int):
    with pytest.raises(ServiceError) as info:
        load_service(write(tmp_path, LINES.replace(old, new)), "svc")
    assert info.value.line == line


# --- parsed once: patterns checked at load, filled when bound -----------------------------------

@pytest.mark.parametrize("entry, message", [
    ("{template: a.j2, dest: '/etc/{item}/', each: {lookup: e}}",
     "dest '/etc/{item}/' must name a file"),
    ("{template: a.j2, dest: /etc/a, restart: 'unit:{item}'}", "{item} in restart needs 'each'"),
    ("{template: a.j2, dest: /etc/a, restart: 'unit:a b'}", "invalid unit name 'a b'"),
    ("{template: a.j2, dest: /etc/a, restart: \"unit:httpd\\n\"}", "invalid unit name"),
])
def test_patterns_are_checked_at_load_with_the_line(tmp_path: Path, entry: str, message: str):
    with pytest.raises(ServiceError, match=re.escape(message)) as info:
        load_service(write(tmp_path, f"machine: m1\nfiles:\n  - {entry}\n"), "svc")
    assert info.value.line == 3


def test_unit_suffix_is_decided_per_item(tmp_path: Path):
    base = write(tmp_path, "machine: m1\nfiles:\n  - {template: a.j2, dest: '/d/{item}.conf',"
                           " each: {lookup: units}, restart: 'unit:{item}'}\n")
    data = {"units": ["l3", "l3.socket"]}
    files = bound(base, lookup=lambda key, default: data[key]).files
    assert [f.actions[0].unit for f in files] == ["l3.service", "l3.socket"]


def test_bind_fills_the_machine_it_is_given(tmp_path: Path):
    definition = load_service(write(tmp_path, "machine: m1\nfiles:\n  - {template: a.j2,"
                                              " dest: '/n/{machine}.nspawn', restart:"
                                              " container}\n"), "svc")
    assert not definition.needs_data
    assert definition.entries[0].dest == PurePosixPath("/n/{machine}.nspawn")
    assert resolve_machine(definition, None) == "m1"
    service = bind(definition, "m2", None)
    assert (service.machine, str(service.files[0].dest)) == ("m2", "/n/m2.nspawn")
    assert service.files[0].actions[0].unit == "systemd-nspawn@m2.service"


def test_a_definition_that_needs_data_without_a_lookup(tmp_path: Path):
    definition = load_service(write(tmp_path, "files:\n  - {template: a.j2, dest: '/{item}',"
                                              " each: {lookup: e}}\n"), "svc")
    with pytest.raises(ServiceError, match="e: needs hieradata") as info:
        bind(definition, "svc", None)
    assert info.value.line == 2


class RecordingHiera:
    """Records the variables of the scope each key is looked up in."""

    def __init__(self, data: dict) -> None:
        self.data = data
        self.scopes: dict[str, dict] = {}

    def lookup(self, key, scope, default=NOT_GIVEN):
        self.scopes[key] = dict(scope.variables)
        return lookup(key, default) if key not in self.data else self.data[key]


@pytest.mark.parametrize("machine, scopes", [
    ("m1", {"nets.m1": {"service": "svc", "machine": "m1"}}),
    # the machine is looked up before it is a variable; the files then see it, as they render
    ("{lookup: api::machine}", {"api::machine": {"service": "svc"},
                                "nets.nova-api": {"service": "svc", "machine": "nova-api"}}),
])
def test_bind_in_scope_looks_up_in_the_service_scope(tmp_path: Path, machine: str, scopes):
    base = write(tmp_path, f"machine: {machine}\nfiles:\n  - {{template: a.j2, dest: '/{{item}}',"
                           " each: {lookup: 'nets.{machine}', default: {}}}\n")
    hiera = RecordingHiera({"api::machine": "nova-api"})
    _, scope = bind_in_scope(load_service(base, "svc"), Scope({}, {}, {"x": 1}), lambda: hiera)
    assert hiera.scopes == {key: {"x": 1, **value} for key, value in scopes.items()}
    assert scope.variables == {"x": 1, **list(scopes.values())[-1]}  # the one render uses


def test_bind_in_scope_of_a_definition_without_data_looks_nothing_up(tmp_path: Path):
    def no_hiera():
        raise AssertionError("a definition without data must not need hieradata")

    service, _ = bind_in_scope(load_service(write(tmp_path, "files:\n  - {template: a.j2,"
                                                            " dest: /a}\n"), "svc"), Scope(),
                               no_hiera)
    assert service.machine == "svc"


# --- names --------------------------------------------------------------------------------------

def test_a_service_named_after_a_subcommand_is_refused(tmp_path: Path):
    (tmp_path / "lookup").mkdir()
    (tmp_path / "lookup" / "service.yaml").write_text("files:\n  - {template: a.j2, dest: /a}\n")
    with pytest.raises(ServiceError) as info:
        load_service(tmp_path, "lookup")
    assert str(info.value) == "service name 'lookup' is reserved for the subcommand " \
                              "`render lookup`"
    assert "lookup" in SUBCOMMANDS


@pytest.mark.parametrize("body, name, data, message", [
    ("files:\n  - {template: a.j2, dest: /a}\n", "svc\n", {}, "invalid service name"),
    ("machine: \"m1\\n\"\nfiles:\n  - {template: a.j2, dest: /a}\n", "svc", {},
     "invalid machine name"),
    ("machine: {lookup: m}\nfiles:\n  - {template: a.j2, dest: /a}\n", "svc", {"m": "m1\n"},
     "must be a machine name"),
    ("files:\n  - {template: a.j2, dest: '/{item}', each: {lookup: e}}\n", "svc",
     {"e": ["a\n"]}, "cannot be part of a file name"),
])
def test_a_name_ending_in_a_newline_is_refused(tmp_path: Path, body: str, name: str, data: dict,
                                               message: str):
    base = write(tmp_path, body)
    with pytest.raises(ServiceError, match=message):
        bound(base, name, lookup=lambda key, default: data[key])


def test_names_module_stays_light():
    code = ("import re, sys; before = set(sys.modules); import renderer.names; "
            "print(sorted(set(sys.modules) - before - {'renderer', 'renderer.names'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=REPO)
    assert done.stdout.strip() == "[]"
    assert is_name("nova-api") and not is_name("nova\n") and not is_name("-x")


def test_every_bad_entry_is_reported_at_once(tmp_path: Path):
    """The loader goes on after a bad entry: one run names each, at its line."""
    base = write(tmp_path, "files:\n"
                 "  - {template: a.j2, dest: relative}\n"
                 "  - {template: a.j2, dest: /ok}\n"
                 "  - {template: nope.j2, dest: /b}\n"
                 "  - {template: a.j2, dest: /c, mode: 'rwx'}\n")
    with pytest.raises(ServiceErrors) as info:
        load_service(base, "svc")
    errors = info.value.errors
    assert [(type(e), e.line) for e in errors] == [(ServiceError, 2), (ServiceError, 4),
                                                   (ServiceError, 5)]
    assert "template 'nope.j2' not found" in errors[1].message
