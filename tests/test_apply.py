"""apply: all files of a service or none, restarts once after all writes, failures collected."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import load_bound

from renderer.apply import Options, apply
from renderer.masking import Masker
from renderer.plan import ServicePlan
from renderer.report import exit_code
from renderer.runner import plan_rendered
from renderer.system import TEMP_PREFIX
from renderer.system.dryrun import DryRunSystem
from renderer.system.real import RealSystem
from renderer.targets import Roots
from renderer.templates import Rendered


def make_services(tmp_path: Path) -> tuple[Path, Roots]:
    templates = tmp_path / "templates"
    for name, machine in (("api", "nova"), ("conductor", "nova"), ("web", "web")):
        svc = templates / name
        svc.mkdir(parents=True)
        (svc / "service.yaml").write_text(
            f"machine: {machine}\nfiles:\n"
            f"  - {{template: a.j2, dest: /etc/{name}/a.conf, restart: container}}\n"
            f"  - {{template: a.j2, dest: /etc/{name}/sub/b.conf, restart: container}}\n")
        (svc / "a.j2").write_text("x\n")
        (tmp_path / "machines" / machine / "etc" / name / "sub").mkdir(parents=True)
    return templates, Roots(tmp_path / "machines", tmp_path / "host")


def plans(templates: Path, roots: Roots, system: RealSystem, content: bytes = b"new\n"):
    result = []
    for name in ("api", "conductor", "web"):
        service = load_bound(templates, name)
        rendered = [Rendered(spec, content) for spec in service.files]
        result.append(plan_rendered(service, rendered, roots, system, Masker(b"k")))
    return result


def test_shared_container_restarted_once_after_all_writes(tmp_path: Path, systemctl):
    fake = systemctl()
    templates, roots = make_services(tmp_path)
    system = RealSystem(fake.command, tmp_path / "state")
    results = apply(plans(templates, roots, system), system, roots, Options())
    assert sorted(fake.calls()) == ["try-restart systemd-nspawn@nova.service",  # in parallel
                                    "try-restart systemd-nspawn@web.service"]
    assert exit_code(results, False) == 2
    assert all(len(r.written) == 2 for r in results)
    again = apply(plans(templates, roots, system), system, roots, Options())
    assert exit_code(again, False) == 0 and len(fake.calls()) == 2


def test_a_service_that_cannot_stage_writes_nothing_others_go_on(tmp_path: Path, systemctl):
    fake = systemctl()
    templates, roots = make_services(tmp_path)
    system = RealSystem(fake.command, tmp_path / "state")
    planned = plans(templates, roots, system)
    shutil.rmtree(tmp_path / "machines/web/etc/web/sub")  # vanishes between plan and apply
    results = apply(planned, system, roots, Options())
    web = results[2]
    assert web.failed and not web.written and not web.restarted
    assert "does not exist" in str(web.errors[0]) and web.errors[0].service == "web"
    assert not (tmp_path / "machines/web/etc/web/a.conf").exists()
    assert not [p for p in (tmp_path / "machines/web/etc/web").iterdir()
                if p.name.startswith(TEMP_PREFIX)]
    assert fake.calls() == ["try-restart systemd-nspawn@nova.service"]
    assert exit_code(results, False) == 6


def test_failed_restart_is_reported_for_every_owner(tmp_path: Path, systemctl):
    templates, roots = make_services(tmp_path)
    system = RealSystem(systemctl(fail="systemd-nspawn@nova.service").command,
                        tmp_path / "state")
    results = apply(plans(templates, roots, system), system, roots, Options())
    assert [bool(r.errors) for r in results] == [True, True, False]
    assert "systemd-nspawn@nova.service" in str(results[0].errors[0])
    assert exit_code(results, False) == 6


def test_noop_runs_the_same_path_and_records(tmp_path: Path, systemctl):
    fake = systemctl()
    templates, roots = make_services(tmp_path)
    system = DryRunSystem(RealSystem(fake.command, tmp_path / "state"))
    results = apply(plans(templates, roots, system), system, roots, Options(restart=False))
    assert exit_code(results, True) == 2 and fake.calls() == []
    assert [r.owed[0].action.unit for r in results] == ["systemd-nspawn@nova.service"] * 2 + \
        ["systemd-nspawn@web.service"]
    assert not results[0].restarted  # nothing claims a restart it did not make
    assert not (tmp_path / "machines/nova/etc/api/a.conf").exists()
    assert sum(line.startswith("write ") for line in system.recorded) == 6


def test_no_restart(tmp_path: Path, systemctl):
    fake = systemctl()
    templates, roots = make_services(tmp_path)
    system = RealSystem(fake.command, tmp_path / "state")
    results = apply(plans(templates, roots, system), system, roots, Options(restart=False))
    assert exit_code(results, False) == 2 and fake.calls() == []
    assert [len(r.owed) for r in results] == [1, 1, 1]  # owed, and the report says so


def agents_plan(tmp_path: Path, files: str, system: RealSystem) -> ServicePlan:
    """Service ``agents`` in machine ``net`` with the given ``files:`` entries, all rendering
    ``new``, planned against fresh machines/ and host/ trees."""
    templates = tmp_path / "templates"
    (templates / "agents").mkdir(parents=True)
    (templates / "agents" / "service.yaml").write_text("machine: net\nfiles:\n" + files)
    (templates / "agents" / "a.j2").write_text("x\n")
    (tmp_path / "machines/net/etc/l3.d").mkdir(parents=True)
    (tmp_path / "host/etc").mkdir(parents=True)
    roots = Roots(tmp_path / "machines", tmp_path / "host")
    service = load_bound(templates, "agents")
    return plan_rendered(service, [Rendered(spec, b"new\n") for spec in service.files], roots,
                        system, Masker(b"k"))


def test_daemon_reload_runs_before_the_restarts_it_serves(tmp_path: Path, systemctl):
    fake = systemctl()
    system = RealSystem(fake.command, tmp_path / "state")
    plan = agents_plan(tmp_path, (
        "  - {template: a.j2, dest: /etc/l3.ini, restart: 'unit:l3'}\n"
        "  - {template: a.j2, dest: /etc/l3.d/path.conf, restart: [daemon-reload, 'unit:l3']}\n"
        "  - {template: a.j2, dest: /etc/nspawn, root: host, restart: host-reload:networkd}\n"),
        system)
    roots = Roots(tmp_path / "machines", tmp_path / "host")
    assert exit_code(apply([plan], system, roots, Options()), False) == 2
    calls = fake.calls()  # the daemon-reload first, then the others together
    assert calls[0] == "--machine=net daemon-reload"
    assert sorted(calls[1:]) == ["--machine=net try-restart l3.service",
                                 "try-reload-or-restart networkd.service"]


def test_reloads_skip_what_is_not_running(tmp_path: Path, systemctl):
    """A stopped container has no systemd to reload and a stopped host unit reads its files
    when it starts: neither is called, and neither is a failure."""
    fake = systemctl(state="inactive")
    system = RealSystem(fake.command, tmp_path / "state")
    plan = agents_plan(tmp_path, (
        "  - {template: a.j2, dest: /etc/l3.d/path.conf, restart: [daemon-reload, 'unit:l3']}\n"
        "  - {template: a.j2, dest: /etc/x.network, root: host, restart: host-reload:networkd}\n"),
        system)
    results = apply([plan], system, Roots(tmp_path / "machines", tmp_path / "host"),
                    Options())
    assert exit_code(results, False) == 2 and not results[0].errors
    assert fake.calls() == []


def test_host_daemon_reload_runs_first_and_even_when_the_container_is_stopped(
        tmp_path: Path, systemctl):
    """A drop-in for a host unit (systemd-nspawn@<m>.service.d/): the host's systemd always
    runs, so it is reloaded whatever the container's state, before any restart."""
    fake = systemctl(state="inactive")
    system = RealSystem(fake.command, tmp_path / "state")
    plan = agents_plan(tmp_path, (
        "  - {template: a.j2, dest: /etc/l3.ini, restart: 'unit:l3'}\n"
        "  - {template: a.j2, dest: '/etc/systemd/system/systemd-nspawn@net.service.d/d.conf',"
        " root: host, create_dirs: true, restart: host-daemon-reload}\n"), system)
    results = apply([plan], system, Roots(tmp_path / "machines", tmp_path / "host"),
                    Options())
    assert exit_code(results, False) == 2 and not results[0].errors
    assert fake.calls() == ["daemon-reload"]  # l3 is not running: try-restart skipped


def test_a_due_container_absorbs_its_units_and_their_daemon_reload(tmp_path: Path, systemctl):
    fake = systemctl()
    system = RealSystem(fake.command, tmp_path / "state")
    plan = agents_plan(tmp_path, (
        "  - {template: a.j2, dest: /etc/l3.d/path.conf, restart: [daemon-reload, 'unit:l3']}\n"
        "  - {template: a.j2, dest: /etc/agents.conf, restart: container}\n"
        "  - {template: a.j2, dest: /etc/nspawn, root: host, restart: host-reload:networkd}\n"),
        system)
    roots = Roots(tmp_path / "machines", tmp_path / "host")
    [result] = apply([plan], system, roots, Options())
    assert sorted(fake.calls()) == ["try-reload-or-restart networkd.service",
                                    "try-restart systemd-nspawn@net.service"]
    absorbed = {d.action.describe(): d.absorbed for d in result.restarts}
    assert absorbed == {"systemd (daemon-reload) in net": True, "l3.service in net": True,
                        "systemd-nspawn@net.service": False, "networkd.service (reload)": False}
