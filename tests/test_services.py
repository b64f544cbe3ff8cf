from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from renderer.errors import ServiceError
from renderer.services import ActionKind, Root, list_services, load_service

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, templates: tuple[str, ...] = ("a.j2",)) -> Path:
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "service.yaml").write_text(text)
    for name in templates:
        (directory / name).write_text("x\n")
    return tmp_path


def test_sample_keystone_definition():
    service = load_service(REPO / "service_templates", "keystone")
    assert service.machine == "keystone"
    conf = service.files[0]
    assert conf.dest == PurePosixPath("/etc/keystone/keystone.conf")
    assert (conf.owner, conf.group, conf.mode, conf.root) == ("keystone", "keystone", 0o640,
                                                               Root.CONTAINER)
    assert conf.actions[0].kind is ActionKind.CONTAINER
    assert conf.actions[0].unit == "systemd-nspawn@keystone.service"
    assert service.files[1].root is Root.HOST
    assert conf.oslo_namespaces is not None and "oslo.cache" in conf.oslo_namespaces
    assert service.files[1].oslo_namespaces is None
    assert "keystone" in list_services(REPO / "service_templates")


def test_restart_kinds(tmp_path: Path):
    base = write(tmp_path, "machine: m1\nfiles:\n  - template: a.j2\n    dest: /etc/a\n"
                           "    restart: [container, 'unit:httpd', 'host:systemd-networkd',"
                           " container]\n")
    actions = load_service(base, "svc").files[0].actions
    assert [a.systemctl_args() for a in actions] == [
        ["try-restart", "systemd-nspawn@m1.service"],
        ["--machine=m1", "try-restart", "httpd.service"],
        ["try-restart", "systemd-networkd.service"]]


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
    with pytest.raises(ServiceError, match=r"unknown service 'nova' \(known: keystone"):
        load_service(REPO / "service_templates", "nova")


def test_mode_octal_int_and_string(tmp_path: Path):
    base = write(tmp_path, "files:\n  - {template: a.j2, dest: /etc/a, mode: 0640}\n")
    assert load_service(base, "svc").files[0].mode == 0o640
