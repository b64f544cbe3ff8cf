"""One run at a time, with real processes: a real ``render`` holding the lock, a real ``flock``.

The holder is a real run blocked in its restart step: its ``--systemctl`` is a script that waits
for the test to release it, so the lock is held for as long as the test needs, deterministically.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture
def synth(tmp_path: Path, scratch):
    synth = scratch({
        "api": [{"dest": "/etc/api/api.conf", "text": "{{ lookup('v') }}\n",
                 "restart": "container"}],
    }, data={"v": 1})
    script = tmp_path / "systemctl"
    script.write_text(f"""#!/bin/sh
touch {tmp_path}/in-restart
for i in $(seq 600); do [ -e {tmp_path}/release ] && exit 0; sleep 0.05; done
exit 1
""")
    script.chmod(0o755)
    return synth


def _start_holder(synth, tmp_path: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-m", "renderer", *synth.options(restart=True), "api",
         "--systemctl", str(tmp_path / "systemctl")], cwd=REPO, env=ENV,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "in-restart").exists():
        assert holder.poll() is None, holder.communicate()
        assert time.monotonic() < deadline, "holder never reached its restart"
        time.sleep(0.02)
    return holder


def _release(holder: subprocess.Popen, tmp_path: Path) -> None:
    (tmp_path / "release").touch()
    out, err = holder.communicate(timeout=30)
    assert holder.returncode == 2, (out, err)


def test_second_run_waits_then_fails_naming_the_holder(synth, tmp_path: Path, run):
    holder = _start_holder(synth, tmp_path)
    try:
        synth.set_data({"v": 2})  # the waiting run would write, if it got the lock
        start = time.monotonic()
        second = run(*synth.options(), "api", "--lock-timeout", "1")
        waited = time.monotonic() - start
        assert second.code == 4, second.err
        assert second.err.splitlines() == [
            f"render: {synth.state}/lock: another render run holds the lock (PID {holder.pid});"
            " gave up after 1 s (--lock-timeout)"]
        assert waited >= 1
        assert (synth.rootfs("api") / "etc/api/api.conf").read_text() == "1\n"
        # --noop takes the lock shared: it too waits for a writer, and names it
        dry = run(*synth.options(), "api", "--noop", "--lock-timeout", "0.3")
        assert dry.code == 4 and f"(PID {holder.pid})" in dry.err, dry.err
    finally:
        _release(holder, tmp_path)
    assert run(*synth.options(), "api").code == 2


def test_second_run_waits_for_the_holder_and_then_runs(synth, tmp_path: Path):
    holder = _start_holder(synth, tmp_path)
    synth.set_data({"v": 2})
    second = subprocess.Popen([sys.executable, "-m", "renderer", *synth.options(), "api",
                               "--lock-timeout", "30"], cwd=REPO, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    assert second.poll() is None  # still waiting
    assert (synth.rootfs("api") / "etc/api/api.conf").read_text() == "1\n"
    _release(holder, tmp_path)
    out, err = second.communicate(timeout=30)
    assert second.returncode == 2, (out, err)
    assert (synth.rootfs("api") / "etc/api/api.conf").read_text() == "2\n"


def test_noop_runs_beside_a_shared_holder_a_real_run_does_not(synth, run):
    assert run(*synth.options(), "api").code == 2  # creates the state dir and the lock file
    holder = subprocess.Popen(["flock", "--shared", "--close", str(synth.state / "lock"),
                               "sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while str(holder.pid) not in Path("/proc/locks").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert run(*synth.options(), "api", "--noop", "--lock-timeout", "0").code == 0
        real = run(*synth.options(), "api", "--lock-timeout", "0.2")
        assert real.code == 4
        assert f"(PID {holder.pid} (--noop))" in real.err, real.err
    finally:
        holder.kill()
        holder.wait()
    assert run(*synth.options(), "api", "--lock-timeout", "0").code == 0


def test_noop_before_any_real_run_creates_nothing(synth, run):
    assert run(*synth.options(), "api", "--noop").code == 2
    assert not synth.state.exists()


def test_a_killed_holder_leaves_no_stale_lock(synth, tmp_path: Path, run):
    holder = _start_holder(synth, tmp_path)
    holder.kill()
    holder.wait()
    (tmp_path / "release").touch()  # lets its orphaned systemctl script end
    assert (synth.state / "lock").read_text() == f"{holder.pid}\n"  # the PID stays, the lock not
    assert run(*synth.options(), "api", "--lock-timeout", "0").code == 0


def test_lock_timeout_must_be_a_number_of_seconds(synth, run):
    for bad in ("-1", "soon", "inf", "nan"):
        result = run(*synth.options(), "api", "--lock-timeout", bad)
        assert result.code == 64 and "--lock-timeout" in result.err, (bad, result.err)


def test_lock_file_deleted_under_a_holder_still_keeps_a_second_run_out(synth, tmp_path: Path,
                                                                       run):
    holder = _start_holder(synth, tmp_path)
    try:
        (synth.state / "lock").unlink()  # a cleanup job, or an operator, removes it
        synth.set_data({"v": 2})
        second = run(*synth.options(), "api", "--lock-timeout", "0.5")
        assert second.code == 4 and f"holds the lock (PID {holder.pid})" in second.err, second
        assert (synth.rootfs("api") / "etc/api/api.conf").read_text() == "1\n"
    finally:
        _release(holder, tmp_path)
    assert run(*synth.options(), "api").code == 2


def _flock(path: Path) -> subprocess.Popen:
    """A real ``flock`` on the lock file alone, as a release before the directory lock took it."""
    holder = subprocess.Popen(["flock", "--close", str(path), "sleep", "30"])
    deadline = time.monotonic() + 10
    while f" {holder.pid} " not in Path("/proc/locks").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return holder


def test_lock_file_replaced_while_waiting_is_locked_again(synth, run):
    """The waiter locks the file it opened; if that is no longer the file at ``lock`` when it
    gets it, it opens and locks the one there now instead of running beside its holder."""
    assert run(*synth.options(), "api").code == 2
    first = _flock(synth.state / "lock")
    replacement = second = None
    try:
        synth.set_data({"v": 2})
        waiter = subprocess.Popen([sys.executable, "-m", "renderer", *synth.options(), "api",
                                   "--lock-timeout", "30"], cwd=REPO, env=ENV,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)  # it has the directory's lock and waits on the first file
        replacement = synth.state / "lock.new"
        replacement.write_text("")
        replacement.chmod(0o600)
        second = _flock(replacement)
        replacement.rename(synth.state / "lock")
        first.kill()
        first.wait()
        time.sleep(0.5)
        assert waiter.poll() is None  # the file it had locked was gone: it waits on the new one
        assert (synth.rootfs("api") / "etc/api/api.conf").read_text() == "1\n"
        second.kill()
        second.wait()
        out, err = waiter.communicate(timeout=30)
        assert waiter.returncode == 2, (out, err)
        assert (synth.rootfs("api") / "etc/api/api.conf").read_text() == "2\n"
    finally:
        for holder in (first, second):
            if holder is not None:
                holder.kill()
                holder.wait()
