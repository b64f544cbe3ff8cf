"""Tests of the namespaced-systemd harness itself, against a real systemd.

They never skip: a machine that cannot boot the harness (not root, no
unshare/nsenter/systemd) fails them with a RuntimeError.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid
from pathlib import Path

import pytest

try:
    import systemd_ns
except ImportError:  # tests/ imported as a package
    from tests import systemd_ns

pytestmark = [pytest.mark.systemd, pytest.mark.slow]

NSPAWN = "systemd-nspawn@keystone.service"


@pytest.fixture(scope="module")
def ns(tmp_path_factory):
    inst = systemd_ns.boot(
        tmp_path_factory.mktemp("systemd-ns"),
        {
            "systemd-nspawn@.service": systemd_ns.standin_nspawn_unit(),
            "broken.service": systemd_ns.failing_unit(),
            "flaky.service": systemd_ns.fail_once_unit("flaky-marker"),
        },
    )
    yield inst
    inst.stop()


def test_boot(ns):
    state = ns.systemctl("is-system-running", check=False).stdout.strip()
    assert state in ("running", "degraded"), ns.log_text()
    assert Path(f"/proc/{ns.pid}/comm").read_text().strip() == "systemd"
    assert ns.systemctl_prefix == f"nsenter -t {ns.pid} -m -p systemctl"
    # PID 1 inside its own namespace
    assert _nspid_of(str(ns.pid)) == [str(ns.pid), "1"]
    # it only knows our units
    files = ns.systemctl("list-unit-files", "--no-legend", "--type=service").stdout
    names = {line.split()[0] for line in files.splitlines() if line.strip()}
    assert names == {"systemd-nspawn@.service", "broken.service", "flaky.service"}


def test_prefix_usable_as_command(ns):
    # What the tool under test does with --systemctl.
    cp = subprocess.run(
        shlex.split(ns.systemctl_prefix) + ["is-active", "render-test.target"],
        capture_output=True, text=True, timeout=10,
    )
    assert cp.stdout.strip() == "active"


def test_start_instance_has_main_pid(ns):
    ns.systemctl("start", NSPAWN)
    assert ns.active_state(NSPAWN) == "active"
    assert ns.main_pid(NSPAWN) > 0


def test_try_restart_changes_main_pid(ns):
    ns.systemctl("start", NSPAWN)
    before = ns.main_pid(NSPAWN)
    ns.systemctl("try-restart", NSPAWN)
    after = ns.main_pid(NSPAWN)
    assert ns.active_state(NSPAWN) == "active"
    assert after > 0 and after != before


def test_try_restart_of_stopped_instance_stays_inactive(ns):
    unit = "systemd-nspawn@stopped.service"
    assert ns.active_state(unit) == "inactive"
    ns.systemctl("try-restart", unit)
    assert ns.active_state(unit) == "inactive"
    assert ns.main_pid(unit) == 0


def test_failing_unit_is_failed(ns):
    cp = ns.systemctl("start", "broken.service", check=False)
    assert cp.returncode != 0
    assert ns.active_state("broken.service") == "failed"
    assert ns.show("broken.service", "Result") == "exit-code"
    with pytest.raises(systemd_ns.SystemctlError, match="broken.service"):
        ns.systemctl("restart", "broken.service")


def test_fail_once_unit(ns):
    ns.systemctl("start", "flaky.service")
    first = ns.main_pid("flaky.service")
    assert first > 0
    ns.run_path("flaky-marker").touch()
    cp = ns.systemctl("try-restart", "flaky.service", check=False)
    assert cp.returncode != 0
    assert ns.active_state("flaky.service") == "failed"
    assert not ns.run_path("flaky-marker").exists()
    ns.systemctl("restart", "flaky.service")  # marker gone: succeeds again
    assert ns.active_state("flaky.service") == "active"
    assert ns.main_pid("flaky.service") not in (0, first)
    assert "marker found, failing this start" in ns.log_text()


def test_add_unit(ns):
    ns.add_unit("late.service", systemd_ns.standin_nspawn_unit())
    ns.systemctl("start", "late.service")
    assert ns.active_state("late.service") == "active"


def test_host_isolation_and_stop(tmp_path):
    sentinel = Path("/tmp") / f"render-test-sentinel-{uuid.uuid4().hex}"
    sentinel.write_text("keep me")
    try:
        inst = systemd_ns.NamespacedSystemd(
            tmp_path, {"systemd-nspawn@.service": systemd_ns.standin_nspawn_unit()}
        )
        with inst:
            pid = inst.pid
            inst.systemctl("start", NSPAWN)
            # the unit's process, seen from the host, lives in the namespace
            inner = str(inst.main_pid(NSPAWN))
            host_kids = [p for p in os.listdir("/proc") if p.isdigit()
                         and _in_pidns_of(p, pid) and _nspid_of(p)[-1:] == [inner]]
            assert len(host_kids) == 1
            sleeper = int(host_kids[0])
            assert sleeper != int(inner)  # numbered differently on the host
            assert sentinel.exists()
            for d in inst.cgroup_dirs:
                assert os.path.isdir(d)
        assert sentinel.read_text() == "keep me"
        assert not Path(f"/proc/{pid}").exists()
        assert not Path(f"/proc/{sleeper}").exists()
        for d in inst.cgroup_dirs:
            assert not os.path.exists(d)
        inst.stop()  # idempotent
    finally:
        sentinel.unlink(missing_ok=True)


def _nspid_of(pid: str) -> list[str]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return []
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return line.split()[1:]
    return []


def _in_pidns_of(pid: str, other: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{other}/ns/pid")
    except OSError:
        return False


def test_missing_prerequisite_raises(monkeypatch, tmp_path):
    monkeypatch.setattr(systemd_ns, "SYSTEMD", "/nonexistent/systemd")
    with pytest.raises(RuntimeError, match="/nonexistent/systemd"):
        systemd_ns.boot(tmp_path, {})


def test_boot_failure_reports_log(monkeypatch, tmp_path):
    # The boot script cannot create this cgroup dir (inside the namespace's
    # own /proc), exits early: start() must raise with the boot log.
    monkeypatch.setattr(
        systemd_ns, "_own_cgroup_dirs", lambda leaf: [f"/proc/no-such-dir/{leaf}"]
    )
    inst = systemd_ns.NamespacedSystemd(tmp_path, {})
    with pytest.raises(RuntimeError, match=r"(?s)exited with status 1.*no-such-dir"):
        inst.start()
    assert inst._proc.poll() is not None
