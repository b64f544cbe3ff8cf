"""The shipped systemd units (contrib/systemd/): `systemd-analyze verify` in a throwaway root laid
out as the package installs them, never the machine's own unit directories."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

UNITS = sorted((REPO / "contrib" / "systemd").glob("render-*"))


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(REPO / "contrib" / "systemd" / name)
    return parser


def install_root(root: Path, render: bool = True) -> Path:
    """A root with the distribution's unit directory (copied: verify resolves sysinit.target and
    friends inside --root), the shipped units in /lib/systemd/system as the package puts them,
    and an executable /usr/bin/render."""
    units = root / "usr" / "lib" / "systemd" / "system"
    shutil.copytree("/usr/lib/systemd/system", units, symlinks=True)
    for path in UNITS:
        shutil.copy(path, units / path.name)
    if render:
        (root / "usr" / "bin").mkdir(parents=True)
        (root / "usr" / "bin" / "render").write_text("#!/bin/sh\nexit 0\n")
        (root / "usr" / "bin" / "render").chmod(0o755)
    return units


def verify(root: Path, units: Path) -> subprocess.CompletedProcess:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: Debian's systemd package (TEST_DEBS)"
    return subprocess.run([analyze, "verify", "--man=no", f"--root={root}",
                           *(str(units / path.name) for path in UNITS)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_shipped_units_are_the_timer_and_its_service():
    assert [path.name for path in UNITS] == ["render-drift.service", "render-drift.timer"]


def test_systemd_analyze_verify_passes_on_every_shipped_unit(tmp_path: Path):
    """No output at all: verify prints unknown keys and bad values as warnings with exit 0."""
    root = tmp_path / "root"
    done = verify(root, install_root(root))
    assert done.returncode == 0 and not done.stdout + done.stderr, done.stdout + done.stderr


def test_systemd_analyze_verify_reads_the_throwaway_root(tmp_path: Path):
    """The control: without /usr/bin/render in the root, verify fails on ExecStart."""
    root = tmp_path / "root"
    done = verify(root, install_root(root, render=False))
    assert done.returncode != 0
    assert "Command /usr/bin/render is not executable" in done.stderr


def test_drift_service_logs_the_masked_diff_and_treats_drift_as_a_finding():
    service = unit("render-drift.service")["Service"]
    command = service["ExecStart"].split()
    assert command[0] == "/usr/bin/render"
    assert set(command[1:]) == {"--noop", "--all", "--diff"}  # not --quiet; options: render.conf
    assert service["SuccessExitStatus"] == "2"
    assert service["Type"] == "oneshot"


@pytest.mark.parametrize("key, value", [
    ("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
    ("NoNewPrivileges", "yes"), ("PrivateNetwork", "yes"),
    ("ReadWritePaths", "-/etc/facter/facts.d -/var/lib/prometheus/node-exporter")])
def test_drift_service_is_hardened(key: str, value: str):
    assert unit("render-drift.service")["Service"][key] == value


def test_drift_timer_has_a_fixed_per_host_offset():
    timer = unit("render-drift.timer")["Timer"]
    assert timer["RandomizedDelaySec"] == "15min" and timer["FixedRandomDelay"] == "yes"
    assert unit("render-drift.timer")["Install"]["WantedBy"] == "timers.target"


def runnable_unit(tree, env_overrides: dict | None = None) -> str:
    """The shipped service as the namespaced systemd can run it. Test-only changes: render is this
    virtualenv's (its Python lives under /root, hence ProtectHome=read-only), the tree is in /tmp
    (PrivateTmp=no), the roots come from RENDER_* (what render.conf would say),
    DefaultDependencies=no (no sysinit.target there), and ExecStopPost= logs the exit status
    (systemd unloads an inactive unit, and its status with it)."""
    render = Path(sys.executable).with_name("render")
    env = {"RENDER_HIERADATA": tree.hieradata, "RENDER_TEMPLATES": tree.templates,
           "RENDER_MACHINES_DIR": tree.machines, "RENDER_HOST_ROOT": tree.host,
           "RENDER_STATE_DIR": tree.state, **(env_overrides or {})}
    text = (REPO / "contrib" / "systemd" / "render-drift.service").read_text()
    assert "ExecStart=/usr/bin/render " in text
    text = text.replace("ExecStart=/usr/bin/render ", f"ExecStart={render} ")
    text = text.replace("[Unit]\n", "[Unit]\nDefaultDependencies=no\n")
    return text + "PrivateTmp=no\nProtectHome=read-only\n" + \
        "ExecStopPost=/bin/sh -c 'echo drift-check-exit=$$EXIT_STATUS'\n" + "".join(
            f"Environment={key}={value}\n" for key, value in env.items())


@pytest.mark.slow
def test_drift_service_runs_hardened_in_a_real_systemd(tree, tmp_path: Path):
    """The shipped service, booted in the namespaced systemd of tests/systemd_ns.py: the drift
    is found (exit 2, a success: `systemctl start` succeeds, the unit is not failed), its masked
    diff is in the log, and nothing is written (ProtectSystem=strict leaves the tree, under /tmp,
    read-only). A render failure (exit 4) fails the unit."""
    from systemd_ns import boot
    before = tree.snapshot(state=True)
    ns = boot(tmp_path / "ns", {"render-drift.service": runnable_unit(tree),
                                "render-broken.service": runnable_unit(
                                    tree, {"RENDER_TEMPLATES": tmp_path / "nowhere"})})
    try:
        ns.systemctl("start", "render-drift.service", timeout=120)
        assert ns.active_state("render-drift.service") == "inactive", ns.log_text()
        broken = ns.systemctl("start", "render-broken.service", check=False, timeout=120)
        assert broken.returncode != 0
        assert ns.active_state("render-broken.service") == "failed", ns.log_text()
        assert ns.show("render-broken.service", "ExecMainStatus") == "4", ns.log_text()
        log = ns.log_text()
    finally:
        ns.stop()
    assert "drift-check-exit=2" in log and "drift-check-exit=4" in log, log
    assert "+memcache_servers=" in log and "Kst0ne-db-S3cret" not in log, log
    assert tree.snapshot(state=True) == before
