"""Cluster-safe restarts: three members of one cluster, a real etcd, a real systemd.

Each member is its own ``render`` process with its own hieradata, templates, host root and state
dir, as three hosts would be; their units (``member@m1`` ... ``member@m3``) live in one namespaced
systemd, whose clock they share: every stop and start writes a timestamp to the member's log, so
"never two members down at once" is read off the logs as intervals that do not overlap (an
ordering, not a duration). etcd runs on loopback on free ports with its own data dir, started and
killed by the test (its PID only). Faults: a holder SIGKILLed while it holds the lock, a probe
that never passes, etcd stopped. A member's container (``systemd-nspawn@m1``, a unit of the same
namespaced systemd that logs as the member does) restarts in turn too when a file only the
container reads changes.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from synth import HIERA
from systemd_ns import RUN_DIR, NamespacedSystemd, boot

pytestmark = [pytest.mark.systemd, pytest.mark.slow]

MEMBERS = ("m1", "m2", "m3")
# A restart takes a while (the sleep), so overlapping restarts would show in the log. While
# /run/render-test/gate-<member> exists the start waits: the test holds a member in its restart.
# A stop removes /run/render-test/ready-<member>, which nothing puts back: a probe testing it
# passes before a restart and never after.
MEMBER_UNIT = f"""\
[Unit]
Description=cluster member %i
DefaultDependencies=no

[Service]
ExecStartPre=/bin/sh -c 'while [ -e {RUN_DIR}/gate-%i ]; do sleep 0.05; done; sleep 0.5'
ExecStart=/bin/sleep infinity
ExecStartPost=/bin/sh -c 'echo "up $(date +%%s.%%N)" >> {RUN_DIR}/log-%i'
ExecStop=/bin/sh -c 'rm -f {RUN_DIR}/ready-%i; echo "down $(date +%%s.%%N)" >> {RUN_DIR}/log-%i'
TimeoutStartSec=30s
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Etcd:
    def __init__(self, base: Path) -> None:
        self.client, peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.client}"
        self.log = (base / "etcd.log").open("wb")
        self.process = subprocess.Popen(
            ["etcd", "--name", "test", "--data-dir", str(base / "etcd"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"test=http://127.0.0.1:{peer}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.keys()
                return
            except OSError:
                assert self.process.poll() is None, (base / "etcd.log").read_text()
                assert time.monotonic() < deadline, "etcd did not answer within 30 s"
                time.sleep(0.1)

    def keys(self) -> list[str]:
        """Every lock key, oldest first."""
        body = json.dumps({"key": base64.b64encode(b"render/locks/").decode(),
                           "range_end": base64.b64encode(b"render/locks0").decode(),
                           "sort_order": "ASCEND", "sort_target": "CREATE"}).encode()
        with urllib.request.urlopen(f"{self.url}/v3/kv/range", body, timeout=5) as answer:
            data = json.loads(answer.read())
        return [base64.b64decode(kv["key"]).decode() for kv in data.get("kvs", ())]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[Etcd]:
    server = Etcd(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[NamespacedSystemd]:
    ns = boot(tmp_path / "systemd", {"member@.service": MEMBER_UNIT,
                                     "systemd-nspawn@.service": MEMBER_UNIT})
    try:
        ns.systemctl("start", *(f"member@{m}.service" for m in MEMBERS))
        yield ns
    finally:
        ns.stop()


class Member:
    """One host of the cluster: its tree, its data and the render command line."""

    def __init__(self, base: Path, name: str, ns: NamespacedSystemd, coordinator: str | None):
        self.base, self.name, self.ns, self.coordinator = base / name, name, ns, coordinator
        (self.base / "hieradata" / "data").mkdir(parents=True)
        (self.base / "hieradata" / "hiera.yaml").write_text(HIERA)
        (self.base / "host" / "etc").mkdir(parents=True)
        (self.base / "machines").mkdir()
        self.write_service()
        self.set_data("one")

    def write_service(self, probe: list[str] | None = None,
                      expect: str | None = "^active$", max_parallel: int = 1) -> None:
        """A host file restarting this member's unit, rolling in the cluster the data names;
        the probe (by default: this member's unit is active) as given."""
        unit = f"member@{self.name}"
        probe = probe or [*self.ns.systemctl_prefix.split(), "is-active", f"{unit}.service"]
        directory = self.base / "templates" / "db"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "app.conf.j2").write_text("value = {{ lookup('value') }}\n")
        (directory / "service.yaml").write_text(yaml.safe_dump({
            "machine": "db",
            "files": [{"template": "app.conf.j2", "root": "host", "dest": "/etc/app.conf",
                       "restart": f"host:{unit}"}],
            "restart_policy": {f"host:{unit}": {
                "policy": "rolling", "group": {"lookup": "cluster::name"},
                "max_parallel": max_parallel,
                "probe": {"command": probe, "expect": expect,
                          "timeout": 5}}},
        }))

    def write_container_service(self) -> None:
        """A container-level file (the member's .nspawn) and a unit inside with a rolling
        policy: the container restart takes it, its probe asks for ``{machine}``'s container."""
        (self.base / "machines" / self.name / "etc").mkdir(parents=True)
        directory = self.base / "templates" / "db"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "app.conf.j2").write_text("value = 1\n")
        (directory / "nspawn.j2").write_text("[Exec]\n# {{ lookup('value') }}\n")
        container = [*self.ns.systemctl_prefix.split(), "is-active",
                     "systemd-nspawn@{machine}.service"]
        (directory / "service.yaml").write_text(yaml.safe_dump({
            "machine": self.name,
            "files": [{"template": "app.conf.j2", "dest": "/etc/app.conf",
                       "restart": "unit:member"},
                      {"template": "nspawn.j2", "root": "host", "create_dirs": True,
                       "dest": "/etc/systemd/nspawn/{machine}.nspawn", "restart": "container"}],
            "restart_policy": {"unit:member": {
                "policy": "rolling", "group": {"lookup": "cluster::name"},
                "probe": {"command": container, "expect": "^active$", "timeout": 5}}},
        }))

    def set_data(self, value: str) -> None:
        (self.base / "hieradata" / "data" / "common.yaml").write_text(
            yaml.safe_dump({"value": value, "cluster::name": "galera"}))

    def command(self, *extra: str) -> list[str]:
        b = self.base
        return [sys.executable, "-m", "renderer", "--hieradata", str(b / "hieradata"),
                "--templates", str(b / "templates"), "--machines-dir", str(b / "machines"),
                "--host-root", str(b / "host"), "--state-dir", str(b / "state"),
                "--node", f"{self.name}.example.com", "--systemctl", self.ns.systemctl_prefix,
                "--health-timeout", "10", "--color", "never", "--lock-wait", "60",
                *(["--coordinator", self.coordinator] if self.coordinator else []),
                *extra, "db"]

    def start(self, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(self.command(*extra), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def run(self, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*extra), capture_output=True, text=True, timeout=180)

    def log(self) -> list[tuple[str, float]]:
        path = self.ns.run_path(f"log-{self.name}")
        if not path.exists():
            return []
        return [(word, float(at)) for word, at in
                (line.split() for line in path.read_text().splitlines())]

    def downs(self) -> int:
        return sum(1 for word, _ in self.log() if word == "down")


def outages(member: Member) -> list[tuple[float, float]]:
    """(down, up) of every restart in the member's log; the first "up" is the test's start."""
    log = member.log()
    return [(at, log[i + 1][1]) for i, (word, at) in enumerate(log) if word == "down"]


def members(tmp_path: Path, ns: NamespacedSystemd, etcd: Etcd | None) -> list[Member]:
    found = [Member(tmp_path / "hosts", m, ns, f"etcd://127.0.0.1:{etcd.client}" if etcd else None)
             for m in MEMBERS]
    for member in found:  # the first run: everything written, each restarted once, in turn
        done = member.run()
        assert done.returncode == 2, done.stdout + done.stderr
    return found


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=180)
    return process.returncode, out, err


def test_never_two_members_down_at_once(tmp_path: Path, systemd: NamespacedSystemd, etcd: Etcd):
    cluster = members(tmp_path, systemd, etcd)
    for member in cluster:
        member.set_data("two")
    runs = [m.start() for m in cluster]
    for member, process in zip(cluster, runs, strict=True):
        code, out, err = finish(process)
        assert (code, err) == (2, ""), out
        assert (f"db: restart member@{member.name}.service (files changed; rolling, group "
                f"galera): active after ") in out
    intervals = sorted(i for m in cluster for i in outages(m))
    assert len(intervals) == 6  # each member restarted by the first run and by this one
    for (_, up), (down, _) in zip(intervals, intervals[1:], strict=False):
        assert up < down, intervals  # the next member went down only after this one was up
    assert etcd.keys() == []  # every place released (its lease revoked)


def test_container_restarts_roll_too(tmp_path: Path, systemd: NamespacedSystemd, etcd: Etcd):
    """The data every member shares changes a container-level file: each member's container
    restarts in its turn, as its units would."""
    systemd.systemctl("start", *(f"systemd-nspawn@{m}.service" for m in MEMBERS))
    cluster = [Member(tmp_path / "hosts", m, systemd, f"etcd://127.0.0.1:{etcd.client}")
               for m in MEMBERS]
    for member in cluster:
        member.write_container_service()
        done = member.run()
        assert done.returncode == 2, done.stdout + done.stderr
    for member in cluster:
        member.set_data("two")
    runs = [m.start() for m in cluster]
    for member, process in zip(cluster, runs, strict=True):
        code, out, err = finish(process)
        assert (code, err) == (2, ""), out
        assert (f"db: restart systemd-nspawn@{member.name}.service (files changed; rolling, "
                "group galera): active after ") in out, out
    intervals = sorted(i for m in cluster for i in outages(m))
    assert len(intervals) == 6, intervals  # each container: the first run and this one
    for (_, up), (down, _) in zip(intervals, intervals[1:], strict=False):
        assert up < down, intervals
    assert etcd.keys() == []


def test_max_parallel_two_never_three_down(tmp_path: Path, systemd: NamespacedSystemd,
                                           etcd: Etcd):
    cluster = members(tmp_path, systemd, etcd)
    for member in cluster:
        member.write_service(max_parallel=2)
        member.set_data("two")
    runs = [m.start() for m in cluster]
    for process in runs:
        code, out, err = finish(process)
        assert (code, err) == (2, ""), out
    intervals = [i for m in cluster for i in outages(m)]
    for down, _ in intervals:
        assert sum(1 for d, u in intervals if d <= down <= u) <= 2, intervals
    assert etcd.keys() == []


def test_killed_holder_lease_expires_and_the_others_proceed(
        tmp_path: Path, systemd: NamespacedSystemd, etcd: Etcd):
    first, *others = cluster = members(tmp_path, systemd, etcd)
    for member in cluster:
        member.set_data("two")
    gate = systemd.run_path(f"gate-{first.name}")
    gate.touch()  # m1's start waits: render m1 holds the lock through its restart
    holder = first.start()
    deadline = time.monotonic() + 60
    while first.downs() < 2:
        assert holder.poll() is None and time.monotonic() < deadline, holder.communicate()
        time.sleep(0.05)
    assert [k.rsplit("/", 2)[1] for k in etcd.keys()] == ["galera"]
    late = others[0].run("--lock-wait", "1")  # no place in time: owed, never dropped
    assert late.returncode == 6, late.stdout + late.stderr
    assert late.stderr.startswith(
        f"render: db: member@{others[0].name}.service: restart owed: no place in cluster lock "
        "'galera' within 1 s (held by "), late.stderr
    assert (f"db: restart owed: member@{others[0].name}.service (files changed; rolling, "
            "group galera)") in late.stdout
    os.kill(holder.pid, signal.SIGKILL)  # in its restart, holding the lock
    holder.wait(10)
    gate.unlink()
    runs = [m.start() for m in others]
    for member, process in zip(others, runs, strict=True):
        code, out, err = finish(process)
        assert (code, err) == (2, ""), out
        assert f"restart member@{member.name}.service" in out
    assert etcd.keys() == []  # the killed holder's key went with its lease
    again = first.run()  # its restart was never recorded: still owed, made now
    assert (again.returncode, again.stderr) == (2, ""), again.stdout
    assert "restart member@m1.service (restart pending: config differs" in again.stdout


def test_probe_that_never_passes_leaves_the_restart_owed(
        tmp_path: Path, systemd: NamespacedSystemd, etcd: Etcd):
    member = members(tmp_path, systemd, etcd)[0]
    flag = tmp_path / "synced"
    member.write_service(["test", "-e", str(flag)], None)
    member.set_data("two")
    downs = member.downs()
    done = member.run()
    assert done.returncode == 6, done.stdout + done.stderr  # written, restart owed
    assert done.stderr == (
        f"render: db: member@{member.name}.service: restart owed: probe failed before the "
        "restart, a member of galera may be down: test exited 1\n")
    assert (f"db: restart owed: member@{member.name}.service (files changed; rolling, group "
            "galera)") in done.stdout
    assert member.downs() == downs and etcd.keys() == []
    still = member.run()  # nothing to write, the restart still owed
    assert still.returncode == 4 and "restart owed: probe failed" in still.stderr
    flag.touch()
    preview = member.run("restart", "--noop")  # `render restart`: the owed restarts alone
    assert (preview.returncode, preview.stderr) == (2, ""), preview.stdout
    assert ("db: would restart member@m1.service (restart pending: config differs from the "
            "last successful restart; rolling, group galera)") in preview.stdout
    assert member.downs() == downs
    done = member.run("restart")
    assert (done.returncode, done.stderr) == (2, ""), done.stdout
    assert "restart member@m1.service (restart pending: config differs" in done.stdout
    assert member.downs() == downs + 1
    assert member.run().returncode == 0  # recorded: nothing owed any more
    assert member.run("restart").returncode == 0


def test_restart_command_needs_the_files_written(tmp_path: Path, systemd: NamespacedSystemd):
    member = Member(tmp_path, "m1", systemd, None)
    done = member.run("restart")
    assert done.returncode == 4
    assert done.stderr == (f"render: db: {member.base}/host/etc/app.conf: not written yet: "
                           "`render restart` makes owed restarts only; a full run writes it "
                           "first\n")


def test_a_probe_that_fails_after_the_restart_fails_it(
        tmp_path: Path, systemd: NamespacedSystemd, etcd: Etcd):
    member = members(tmp_path, systemd, etcd)[0]
    ready = systemd.run_path("ready-m1")
    ready.touch()
    member.write_service(["test", "-e", str(ready)], None)
    member.set_data("two")
    done = member.run()
    assert done.returncode == 4, done.stdout + done.stderr  # rolled back: no change
    assert done.stderr == (
        "render: db: member@m1.service: restart failed: unit is active, but not ready: its "
        "probe did not pass within 5 s (test exited 1); rolled back 1 file(s) written by this "
        "run; restarted again: unit is active\n")
    assert (member.base / "host" / "etc" / "app.conf").read_text() == "value = one\n"
    assert etcd.keys() == []


def test_etcd_stopped_leaves_restarts_owed(tmp_path: Path, systemd: NamespacedSystemd,
                                           etcd: Etcd):
    member = members(tmp_path, systemd, etcd)[0]
    etcd.stop()
    member.set_data("two")
    downs = member.downs()
    done = member.run()
    assert done.returncode == 6, done.stdout + done.stderr
    assert done.stderr.startswith(
        f"render: db: member@m1.service: restart owed: coordinator etcd://127.0.0.1:"
        f"{etcd.client} unreachable ("), done.stderr
    assert member.downs() == downs


def test_noop_says_what_it_would_do(tmp_path: Path, systemd: NamespacedSystemd, etcd: Etcd):
    member = members(tmp_path, systemd, etcd)[0]
    member.set_data("two")
    done = member.run("--noop")
    assert done.returncode == 2, done.stdout + done.stderr
    assert ("db: would restart member@m1.service (files changed; rolling, group galera)"
            in done.stdout)
    assert member.downs() == 1 and etcd.keys() == []


def test_without_coordinator_the_probe_guards(tmp_path: Path, systemd: NamespacedSystemd):
    cluster = members(tmp_path, systemd, None)
    member = cluster[0]
    other = f"member@{cluster[1].name}.service"
    member.write_service([*systemd.systemctl_prefix.split(), "is-active", other])
    member.set_data("two")
    systemd.systemctl("stop", other)  # another member is down: m1 must not restart
    done = member.run()
    assert done.returncode == 6, done.stdout + done.stderr
    assert "restart owed: probe failed before the restart" in done.stderr
    systemd.systemctl("start", other)
    done = member.run()
    assert (done.returncode, done.stderr) == (2, ""), done.stdout
