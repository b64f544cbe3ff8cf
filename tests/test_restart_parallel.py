"""Restarts in parallel and the live report, against a real systemd in a namespace.

Six services, each in its own container (the stand-in ``systemd-nspawn@.service``), all fed by
one common value. The stand-in's start waits at a barrier: it goes on only once every container
of the round has begun its own start, so a run that restarted them one after another could not
bring a single one up (the first would time out at the barrier). A run that says all six came up
healthy proves that their starts, and so their health waits, overlapped: an ordering property,
no clock involved. The live report is read from a real ``render`` process through a pipe and
through a pty while a container is held at a gate the test opens.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from synth import Synth, build
from systemd_ns import RUN_DIR, NamespacedSystemd, boot

pytestmark = [pytest.mark.systemd, pytest.mark.slow]

N = 6
SERVICES = [f"svc{i}" for i in range(N)]
UNITS = [f"systemd-nspawn@{s}.service" for s in SERVICES]
# Every start counts itself; it waits until N starts of the round began (began-*), and, while
# /run/render-test/gate-<machine> exists, until the test removes it.
BARRIER_NSPAWN = f"""\
[Unit]
Description=stand-in container %i, starting only together with {N} others
DefaultDependencies=no

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=5s
ExecStartPre=/bin/sh -c 'echo start >> {RUN_DIR}/starts-%i; touch {RUN_DIR}/began-%i'
ExecStartPre=/bin/sh -c 'until [ $(ls {RUN_DIR} | grep -c ^began-) -ge {N} ]; do sleep 0.05; done'
ExecStartPre=/bin/sh -c 'while [ -e {RUN_DIR}/gate-%i ]; do sleep 0.05; done'
ExecStart=/bin/true
"""


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[NamespacedSystemd]:
    ns = boot(tmp_path / "systemd", {"systemd-nspawn@.service": BARRIER_NSPAWN})
    try:
        yield ns
    finally:
        ns.stop()


@pytest.fixture
def hosts(tmp_path: Path, systemd: NamespacedSystemd) -> Synth:
    """The six services written once and their containers running (started in one call, as
    the barrier needs), ready for a change to all of them."""
    synth = build(tmp_path / "tree", {s: [{"dest": "/etc/app.conf", "restart": "container",
                                           "text": "value = {{ lookup('value') }}\n"}]
                                      for s in SERVICES}, data={"value": "one"})
    first = run_render(systemd, synth)
    assert first.returncode == 2, first.stderr
    systemd.systemctl("start", *UNITS)
    assert [systemd.active_state(u) for u in UNITS] == ["active"] * N
    new_round(systemd)
    synth.set_data({"value": "two"})
    return synth


def new_round(ns: NamespacedSystemd) -> None:
    for service in SERVICES:
        ns.run_path(f"began-{service}").unlink()


def starts(ns: NamespacedSystemd, service: str) -> int:
    return len(ns.run_path(f"starts-{service}").read_text().splitlines())


def command(ns: NamespacedSystemd, synth: Synth, *args: str) -> list[str]:
    return [sys.executable, "-m", "renderer", *synth.options(restart=True), "--systemctl",
            ns.systemctl_prefix, "--health-timeout", "60", "--color", "never", *args, "--all"]


def run_render(ns: NamespacedSystemd, synth: Synth, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(ns, synth, *args), capture_output=True, text=True,
                          timeout=120)


def test_independent_units_restart_together(systemd: NamespacedSystemd, hosts: Synth):
    result = run_render(systemd, hosts)
    assert (result.returncode, result.stderr) == (2, ""), result.stdout
    for service, unit in zip(SERVICES, UNITS, strict=True):
        assert f"{service}: restart {unit} (files changed): active after " in result.stdout
        assert starts(systemd, service) == 2  # once by the test, once by render
    assert [systemd.active_state(u) for u in UNITS] == ["active"] * N
    assert result.stdout.endswith("render: 6 file(s) changed, 6 restart(s)\n")
    assert "\r" not in result.stdout and "waiting for" not in result.stdout


def test_one_unit_at_a_time_cannot_pass_the_barrier(systemd: NamespacedSystemd, hosts: Synth):
    """The barrier is real: the same change restarted one unit at a time fails (its start
    times out at the barrier, TimeoutStartSec), so the test above cannot pass by accident."""
    done = systemd.systemctl("restart", UNITS[0], check=False, timeout=60)
    assert done.returncode != 0 and systemd.active_state(UNITS[0]) == "failed"


def read_until(fd: int, wanted: str, seen: bytearray, process: subprocess.Popen) -> str:
    """Read ``fd`` until ``wanted`` is in what was read; fails when the process ends first."""
    while wanted.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], 60)
        assert ready, f"no {wanted!r} within a minute: {seen.decode(errors='replace')!r}"
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the pty's other side closed
            chunk = b""
        assert chunk, f"render ended before {wanted!r}: {seen.decode(errors='replace')!r}"
        seen.extend(chunk)
    return seen.decode(errors="replace")


def read_all(fd: int, seen: bytearray) -> str:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen.extend(chunk)
    return seen.decode(errors="replace")


def gated(ns: NamespacedSystemd, service: str) -> Path:
    gate = ns.run_path(f"gate-{service}")
    gate.touch()
    return gate


def test_lines_stream_through_a_pipe_without_progress(systemd: NamespacedSystemd,
                                                       hosts: Synth):
    gate = gated(systemd, "svc5")
    process = subprocess.Popen(command(systemd, hosts), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None
    seen = bytearray()
    try:
        # svc0's restart is reported while svc5 still waits at its gate: nothing is held back
        read_until(process.stdout.fileno(), "svc0: restart systemd-nspawn@svc0.service", seen,
                   process)
        assert systemd.active_state(UNITS[5]) == "activating" and process.poll() is None
        assert "svc5: update " in seen.decode()  # every service's line came before its restart
    finally:
        gate.unlink()
    out = read_all(process.stdout.fileno(), seen)
    assert process.wait(timeout=60) == 2, process.stderr.read() if process.stderr else ""
    assert "\r" not in out and "waiting for" not in out
    assert out.count(": update ") == N and out.count(": restart ") == N
    assert out.endswith("render: 6 file(s) changed, 6 restart(s)\n")


def test_a_terminal_sees_the_progress_line_then_it_is_cleared(systemd: NamespacedSystemd,
                                                               hosts: Synth):
    gate = gated(systemd, "svc5")
    main, other = pty.openpty()
    process = subprocess.Popen(command(systemd, hosts), stdout=other, stderr=subprocess.PIPE)
    os.close(other)
    seen = bytearray()
    try:
        # the systemctl call lasts as long as the start job: it is what the line waits for
        read_until(main, "waiting for systemd-nspawn@svc5.service (restarting, ", seen, process)
    finally:
        gate.unlink()
    out = read_all(main, seen)
    os.close(main)
    assert process.wait(timeout=60) == 2
    assert "s of 60 s)" in out
    lines = out.replace("\r\n", "\n").split("\n")
    final = [line.rsplit("\r", 1)[-1].strip() for line in lines]
    assert "svc5: restart systemd-nspawn@svc5.service (files changed): active after" in out
    assert final[-2] == "render: 6 file(s) changed, 6 restart(s)" and final[-1] == ""
