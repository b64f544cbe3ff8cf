"""restart_policy in service.yaml: parsed at load, bound with the data, one line per mistake;
the probe and the coordinator's failures as the report says them (fast: no systemd, no etcd)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from synth import HIERA

from renderer.coordinator import Etcd, Unavailable, endpoint
from renderer.errors import ServiceError, UsageError, error_line
from renderer.hiera import NOT_GIVEN
from renderer.rolling import check, hold, key
from renderer.services import Action, ActionKind, bind, load_service
from renderer.services.policy import NOW, Policy, Probe
from renderer.system.dryrun import DryRunSystem
from renderer.system.real import RealSystem

HEAD = """\
machine: db
files:
  - template: a.j2
    dest: /etc/my.cnf
    restart: [unit:mariadb, unit:other]
"""
ROLLING = HEAD + """\
restart_policy:
  unit:mariadb:
    policy: rolling
    group: {lookup: galera::cluster_name}
    max_parallel: 2
    probe:
      command: [mysql, -e, "SHOW STATUS LIKE 'wsrep_local_state_comment'"]
      expect: Synced
      timeout: 20
"""
MARIADB = Action(ActionKind.UNIT, "mariadb.service", "db")
PROBE = Probe(("mysql", "-e", "SHOW STATUS LIKE 'wsrep_local_state_comment'"), "Synced", 20.0)


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "db").mkdir(parents=True)
    (tmp_path / "db" / "service.yaml").write_text(text)
    (tmp_path / "db" / "a.j2").write_text("x\n")
    return tmp_path


def policies(tmp_path: Path, text: str, data: dict[str, object] | None = None) -> dict:
    definition = load_service(write(tmp_path, text), "db")

    def lookup(name: str, default: object) -> object:
        if data is not None and name in data:
            return data[name]
        assert default is not NOT_GIVEN, name
        return default

    return dict(bind(definition, "db", lookup).policies)


def failure(tmp_path: Path, text: str, data: dict[str, object] | None = None) -> str:
    with pytest.raises(ServiceError) as caught:
        policies(tmp_path, text, data)
    return error_line(caught.value)


def test_rolling_with_the_group_from_data(tmp_path: Path):
    found = policies(tmp_path, ROLLING, {"galera::cluster_name": "galera_prod"})
    assert found == {MARIADB: Policy(True, "galera_prod", 2, PROBE)}
    assert found[MARIADB].describe() == "rolling, group galera_prod"
    assert key(MARIADB, found[MARIADB]) == ("rolling", "galera_prod")
    assert key(MARIADB, None) == MARIADB and key(MARIADB, NOW) == MARIADB
    assert hold(found[MARIADB], 30) == 55  # health + probe + margin: the lease


def test_without_a_policy_every_unit_restarts_now(tmp_path: Path):
    assert policies(tmp_path, HEAD) == {}
    assert not load_service(tmp_path, "db").needs_data


def test_the_data_overrides_the_whole_policy(tmp_path: Path):
    text = HEAD + """\
restart_policy:
  unit:mariadb:
    lookup: mariadb::restart_policy
    default: {policy: rolling, group: galera, probe: {command: [/bin/true]}}
"""
    assert policies(tmp_path, text) == {MARIADB: Policy(True, "galera", 1, Probe(("/bin/true",)))}
    (tmp_path / "db").rename(tmp_path / "old")
    assert policies(tmp_path, text, {"mariadb::restart_policy": {"policy": "now"}}) == {
        MARIADB: NOW}
    (tmp_path / "db").rename(tmp_path / "old2")
    line = failure(tmp_path, text, {"mariadb::restart_policy": {"policy": "rolling",
                                                                "group": "galera"}})
    assert line == (f"render: db: {tmp_path}/db/service.yaml: restart_policy mariadb (from "
                    "hiera key 'mariadb::restart_policy'): rolling needs a probe (a command "
                    "that passes when the member is ready)")


@pytest.mark.parametrize(("policy", "message"), [
    ("{policy: sometimes}", "restart_policy unit:mariadb: policy must be 'now' or 'rolling', "
                            "not 'sometimes'"),
    ("{policy: rolling, probe: {command: [x]}}",
     "restart_policy unit:mariadb: rolling needs a group name (or {lookup: KEY}), not None"),
    ("{policy: rolling, group: g}", "restart_policy unit:mariadb: rolling needs a probe (a "
                                    "command that passes when the member is ready)"),
    ("{policy: rolling, group: g, max_parallel: 0, probe: {command: [x]}}",
     "restart_policy unit:mariadb: max_parallel must be a whole number from 1, not 0"),
    ("{policy: rolling, group: g, probe: {command: mysql -e x}}",
     "restart_policy unit:mariadb: probe command must be a non-empty list of arguments (run "
     "without a shell), not 'mysql -e x'"),
    ("{policy: rolling, group: g, probe: {command: [x], expect: '('}}",
     "restart_policy unit:mariadb: probe expect '(' is not a regex: missing ), unterminated "
     "subpattern at position 0"),
    ("{policy: rolling, group: g, probe: {command: [x], timeout: 0}}",
     "restart_policy unit:mariadb: probe timeout must be seconds from 0 to 3600, not 0"),
    ("{policy: rolling, group: g, probe: {command: [x], retries: 3}}", "unknown key(s): retries"),
    ("{policy: now, group: g}",
     "restart_policy unit:mariadb: group, max_parallel and probe need policy: rolling"),
])
def test_one_line_per_mistake(tmp_path: Path, policy: str, message: str):
    text = HEAD + f"restart_policy:\n  unit:mariadb: {policy}\n"
    assert failure(tmp_path, text) == f"render: db: {tmp_path}/db/service.yaml:7: {message}"


def test_a_policy_for_a_restart_no_file_makes(tmp_path: Path):
    text = HEAD + "restart_policy:\n  unit:galera: {policy: now}\n"
    assert failure(tmp_path, text) == (f"render: db: {tmp_path}/db/service.yaml:7: "
                                       "restart_policy: no file restarts unit:galera")


def test_a_group_from_data_must_be_a_name(tmp_path: Path):
    line = failure(tmp_path, ROLLING, {"galera::cluster_name": "a b"})
    assert line == (f"render: db: {tmp_path}/db/service.yaml: restart_policy mariadb: group "
                    "from hiera key 'galera::cluster_name' must be a name, not 'a b'")


def test_probe_results_in_one_line(tmp_path: Path):
    system = RealSystem(["systemctl"], tmp_path / "state")
    synced = Probe((sys.executable, "-c", "print('wsrep_local_state_comment\\tSynced')"),
                   "Synced")
    assert check(system, synced, None, 10) == ""
    joining = synced._replace(command=(sys.executable, "-c", "print('x\\tJoining')"))
    assert check(system, joining, None, 10) == (f"{sys.executable}: output does not match "
                                                "'Synced' (x\tJoining)")
    assert check(system, Probe(("false",)), None, 10) == "false exited 1"
    assert check(system, Probe(("/nonexistent/probe",)), None, 10) == (
        "/nonexistent/probe exited 127: /nonexistent/probe: No such file or directory")
    slow = Probe((sys.executable, "-c", "import time; time.sleep(30)"))
    assert check(system, slow, None, 0.5) == f"{sys.executable} exited 124: timed out after 0 s"
    machine = Probe(("test", "{machine}", "=", "db"))
    assert check(system, machine, "db", 10) == ""


def test_a_dry_run_runs_no_probe_and_takes_no_lock(tmp_path: Path):
    dry = DryRunSystem(RealSystem(["systemctl"], tmp_path / "state"))
    assert dry.probe(["mysql", "-e", "x"], 10) == (0, "")
    assert dry.recorded == ["probe mysql -e x"]
    with pytest.raises(Unavailable, match="a dry run takes no lock"):
        Etcd(dry, "etcd://127.0.0.1:2379").acquire("galera", 1, 10, 1)


def test_an_unreachable_coordinator(tmp_path: Path):
    etcd = Etcd(RealSystem(["systemctl"], tmp_path / "state"), "etcd://127.0.0.1:1")
    with pytest.raises(Unavailable) as caught:
        etcd.acquire("galera", 1, 10, 1)
    assert str(caught.value) == ("coordinator etcd://127.0.0.1:1 unreachable ([Errno 111] "
                                 "Connection refused)")


@pytest.mark.parametrize("url", ["http://127.0.0.1:2379", "etcd://127.0.0.1", "etcd://:2379",
                                 "etcd://h:2379/x"])
def test_a_bad_coordinator_url(url: str):
    with pytest.raises(UsageError, match="--coordinator must be etcd://HOST:PORT"):
        endpoint(url)
    assert endpoint("etcd://127.0.0.1:2379") == "http://127.0.0.1:2379"


def test_a_bad_coordinator_is_a_usage_error(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "renderer", "--coordinator", "http://x:1",
                           "--state-dir", str(tmp_path), "db"], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (64, "render: --coordinator must be "
                                                  "etcd://HOST:PORT, not 'http://x:1'\n")


def test_the_coordinator_from_the_environment(tmp_path: Path):
    """The config layer makes --coordinator RENDER_COORDINATOR (and a render.conf key)."""
    done = subprocess.run([sys.executable, "-m", "renderer", "--state-dir", str(tmp_path), "db"],
                          capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "RENDER_COORDINATOR": "etcd://x"})
    assert (done.returncode, done.stderr) == (64, "render: --coordinator must be "
                                                  "etcd://HOST:PORT, not 'etcd://x'\n")


def test_show_says_how_a_unit_restarts(tmp_path: Path):
    templates = write(tmp_path / "templates", ROLLING)
    data = tmp_path / "hieradata"
    (data / "data").mkdir(parents=True)
    (data / "hiera.yaml").write_text(HIERA)
    (data / "data" / "common.yaml").write_text("galera::cluster_name: galera\n")
    done = subprocess.run([sys.executable, "-m", "renderer", "show", "db", "--templates",
                           str(templates), "--hieradata", str(data)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert ("#  restart: mariadb.service in db (rolling, group galera, 2 at a time; probe: "
            "mysql -e 'SHOW STATUS LIKE '\"'\"'wsrep_local_state_comment'\"'\"''), other.service "
            "in db\n") in done.stdout


CONTAINER = ROLLING.replace("""    restart: [unit:mariadb, unit:other]
""", """    restart: [unit:mariadb, unit:other]
  - template: a.j2
    root: host
    dest: /etc/systemd/nspawn/{machine}.nspawn
    create_dirs: true
    restart: container
""").replace("command: [mysql,", "command: [mysql, '--host={machine}',")


def container_tree(tmp_path: Path) -> list[str]:
    templates = write(tmp_path / "templates", CONTAINER)
    data = tmp_path / "hieradata"
    (data / "data").mkdir(parents=True)
    (data / "hiera.yaml").write_text(HIERA)
    (data / "data" / "common.yaml").write_text("galera::cluster_name: galera\n")
    (tmp_path / "machines" / "db" / "etc").mkdir(parents=True)
    (tmp_path / "host" / "etc").mkdir(parents=True)
    return ["--templates", str(templates), "--hieradata", str(data)]


def test_a_container_restart_rolls_as_its_units_do(tmp_path: Path):
    """A changed .nspawn restarts the container, every unit in it: it takes their rolling
    policy (the lock place, the probe in that machine), absorbing them or not."""
    sources = container_tree(tmp_path)
    done = subprocess.run([sys.executable, "-m", "renderer", *sources, "--machines-dir",
                           str(tmp_path / "machines"), "--host-root", str(tmp_path / "host"),
                           "--state-dir", str(tmp_path / "state"), "--color", "never", "--noop",
                           "db"], capture_output=True, text=True)
    assert done.returncode == 2, done.stdout + done.stderr
    assert ("db: would restart systemd-nspawn@db.service (files changed; rolling, group "
            "galera)") in done.stdout, done.stdout
    shown = subprocess.run([sys.executable, "-m", "renderer", "show", "db", *sources],
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert ("#  restart: systemd-nspawn@db.service (rolling, group galera, 2 at a time; probe: "
            "mysql --host=db -e") in shown.stdout, shown.stdout


def test_the_container_restart_takes_the_policy_of_a_unit_inside():
    from renderer.rolling import machine, policy_of

    container = Action(ActionKind.CONTAINER, "systemd-nspawn@db.service")
    host = Action(ActionKind.HOST, "systemd-nspawn@db.service")
    rolling = Policy(True, "galera", 1, PROBE)
    assert machine(container) == machine(host) == machine(MARIADB) == "db"
    assert policy_of(container, {MARIADB: rolling}) == rolling
    assert policy_of(host, {MARIADB: rolling}) == rolling
    other = Action(ActionKind.CONTAINER, "systemd-nspawn@web.service")
    assert policy_of(other, {MARIADB: rolling}) is None
    assert policy_of(container, {MARIADB: rolling, container: NOW}) is None  # its own: now
    assert policy_of(MARIADB, {MARIADB: NOW}) is None


def test_a_container_may_keep_restarting_now(tmp_path: Path):
    found = policies(tmp_path, CONTAINER + "  container: now\n", {"galera::cluster_name": "g"})
    container = Action(ActionKind.CONTAINER, "systemd-nspawn@db.service")
    assert found[container] == NOW and found[MARIADB].rolling
