"""The bench's building blocks at tiny sizes, so ``make bench`` cannot rot silently.

No timing is asserted: only that each block measures what it claims (the synthetic host is in
sync after a real run and a common change touches every service, the interleaving runs each
command the rounds it asks, puppet-keystone's apply writes the same settings and then changes
nothing, a data change restarts every container of the namespaced systemd).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import puppet_keystone  # noqa: E402
import synth_host  # noqa: E402
from restart_ns import RestartBench  # noqa: E402
from timing import Measure, due, interleave  # noqa: E402

import bench  # noqa: E402

RENDER = str(Path(sys.executable).with_name("render"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RENDER, *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A synthetic host of three services, synced by a real run."""
    base = tmp_path_factory.mktemp("host")
    options = synth_host.build(base, 3)
    done = run("--systemctl", "true", "--all", *options)
    assert done.returncode == 2, done.stderr
    return base, options


def test_synth_host_in_sync_after_a_real_run_and_common_change_touches_all(host):
    base, options = host
    done = run("--noop", "--all", *options)
    assert (done.returncode, done.stderr) == (0, "")
    # per service its own INI file and the container block's .nspawn and host0 network: the
    # host's block has no edits inside the container
    assert "everything in sync (3 service(s), 9 file(s))" in done.stdout
    synth_host.change_common(base)
    done = run("--noop", "--all", *options)
    assert done.returncode == 2, done.stderr
    assert done.stdout.count("would update") == 3  # each service's own INI file
    synth_host.change_common(base)  # toggles back
    assert run("--noop", "--all", *options).returncode == 0


def test_due_spreads_each_command_over_exactly_its_rounds():
    for rounds, total in [(5, 20), (3, 15), (1, 7), (4, 4), (6, 4), (1, 1)]:
        picked = [i for i in range(total) if due(i, rounds, total)]
        assert len(picked) == min(rounds, total), (rounds, total, picked)


def test_interleave_one_round_of_a_figure(host):
    _, options = host
    prepared = []
    small = Measure("sync", [RENDER, "--noop", "--all", *options])
    big = Measure("big", [RENDER, "--noop", "--all", *options], rounds=1,
                  prepare=lambda: prepared.append(1))
    baseline = interleave([small, big], runs=1, warmup=0)
    assert baseline.argv[0] == sys.executable and len(baseline.times) == 1
    assert len(small.times) == len(big.times) == 1 and prepared == [1]
    assert small.median > 0 and baseline.median > 0


def test_a_failing_figure_stops_the_bench_naming_it():
    with pytest.raises(SystemExit, match="memcached: .* exited 1"):
        Measure("memcached", ["false"]).run()


def test_report_prints_every_figure_and_fails_on_a_missing_one(capsys):
    by = {}
    for key in bench.LABELS:
        if key != "restart":
            by[key] = Measure(key, ["true"])
            by[key].times = [100.0]
    with pytest.raises(SystemExit):
        bench.report(10.0, by, {}, {"restart": "cannot run: not root"}, "plain run")
    out = capsys.readouterr().out
    for label in bench.LABELS.values():
        assert label in out
    assert "NOT MEASURED: cannot run: not root" in out
    assert "x10.0" in out and ">= 100x faster" in out and "render in sync 1x" in out


CONF = """\
# Managed by render
[DEFAULT]
debug=False
transport_url=rabbit://k:it's\\secret@h:5672/

[notifications]
driver=messagingv2
driver=log
"""


def test_keystone_manifest_holds_every_option_of_the_rendered_file():
    settings = puppet_keystone.ini_settings(CONF)
    assert settings == {"DEFAULT/debug": ["False"],
                        "DEFAULT/transport_url": ["rabbit://k:it's\\secret@h:5672/"],
                        "notifications/driver": ["messagingv2", "log"]}
    text = puppet_keystone.manifest(settings)
    assert "keystone_config { 'notifications/driver': value => ['messagingv2', 'log'] }" in text
    assert "value => 'rabbit://k:it\\'s\\\\secret@h:5672/', secret => true" in text
    with pytest.raises(ValueError, match="keystone.conf:2: "):
        puppet_keystone.ini_settings("[a]\nno equals sign\n")


@pytest.mark.slow
@pytest.mark.puppet
def test_puppet_keystone_writes_the_scratch_file_then_changes_nothing(tmp_path: Path):
    """With the minimal module path (the bench's second Puppet row; the first differs only by
    the module path, and skips the apt module's slow facts here)."""
    assert puppet_keystone.missing() is None, puppet_keystone.missing()
    etc_before = Path("/etc/keystone").exists()
    apply = puppet_keystone.prepare(tmp_path, CONF, minimal=True)
    first = subprocess.run(apply, capture_output=True, text=True, check=False)
    assert first.returncode == 2, first.stderr[-2000:]
    written = puppet_keystone.written(tmp_path).read_text()
    assert puppet_keystone.ini_settings(written) == puppet_keystone.ini_settings(CONF)
    second = subprocess.run(apply, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    assert Path("/etc/keystone").exists() == etc_before  # the real /etc was never written


@pytest.mark.slow
@pytest.mark.systemd
def test_restart_bench_restarts_every_container(tmp_path: Path):
    restarts = RestartBench(tmp_path, 3, RENDER)
    try:
        restarts.start()  # raises unless a common change restarted all three
        restarts.prepare()
        out = restarts.run_once()
        assert out.count("restart systemd-nspawn@") == 3, out
    finally:
        restarts.stop()
