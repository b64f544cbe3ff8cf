"""Services planned in parallel (renderer.fanout) against the same run one after another.

A synthetic host of 80 services is rendered twice side by side, once on one core (``taskset``:
planned serially) and once on all of them (planned by forked workers); stdout, stderr, the exit
code and the written trees must be the same, with changes pending, in sync, with a broken service
and with --noop; the manifest a parallel run records lets the fast path answer.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from renderer import fanout, fastpath
from renderer import runner as runner_module
from renderer.runner import Runner, Settings
from renderer.system.dryrun import DryRunSystem
from renderer.system.real import RealSystem
from renderer.targets import Roots

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import synth_host  # noqa: E402

SERVICES = 80


class Host:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.options = synth_host.build(base, SERVICES)
        self.marker = base / "marker"

    def render(self, *args: str, serial: bool = False) -> tuple[int, str, str]:
        env = {**os.environ, "PYTHONPATH": str(REPO), "RENDER_DEBUG_FASTPATH": str(self.marker)}
        env.pop("RENDER_CONFIG", None)
        pin = ["taskset", "-c", "0"] if serial else []
        done = subprocess.run([*pin, sys.executable, "-m", "renderer", *args, *self.options],
                              capture_output=True, text=True, timeout=300, env=env, check=False)
        spell = str(self.base)
        return (done.returncode, done.stdout.replace(spell, "BASE"),
                done.stderr.replace(spell, "BASE"))

    def tree(self) -> dict[str, tuple[bytes | str, int]]:
        found = {}
        for top in ("machines", "host"):
            for path in sorted((self.base / top).rglob("*")):
                st = path.lstat()
                data: bytes | str = (os.readlink(path) if path.is_symlink() else
                                     path.read_bytes() if path.is_file() else "")
                found[str(path.relative_to(self.base))] = (data, st.st_mode)
        return found


@pytest.mark.slow
def test_parallel_planning_says_and_writes_what_serial_planning_does(tmp_path: Path) -> None:
    assert fanout.cores() > 1, "this test needs two cores"
    serial, parallel = Host(tmp_path / "serial"), Host(tmp_path / "parallel")

    def same(*args: str) -> tuple[int, str, str]:
        one = serial.render(*args, serial=True)
        other = parallel.render(*args)
        assert one == other, args
        assert serial.tree() == parallel.tree(), args
        return one

    code, out, _ = same("--noop", "--all")                      # changes pending
    assert code == 2 and out.count("would create") >= SERVICES
    assert same("--all", "--no-restart")[0] == 2                # written, restarts owed
    assert same("--noop", "--all", "--no-restart")[0] == 0      # in sync
    synth_host.change_common(serial.base)
    synth_host.change_common(parallel.base)
    for host in (serial, parallel):                             # one service broken
        template = host.base / "templates" / "svc0040" / "svc0040-1.conf.j2"
        template.write_text(template.read_text() + "{{ lookup('svc0040::nowhere') }}\n")
    code, _, err = same("--noop", "--all", "--no-restart")
    assert code != 0 and "svc0040" in err and "nowhere" in err
    code, out, _ = same("--all", "--no-restart")
    assert code != 0 and out.count(": update ") == SERVICES - 1


@pytest.mark.slow
def test_a_parallel_run_records_a_manifest_the_fast_path_answers(tmp_path: Path) -> None:
    host = Host(tmp_path)
    assert host.render("--systemctl", "true", "--all")[0] == 2
    time.sleep(fastpath.GRANULARITY_NS / 1e9 + 0.1)  # out of the racy window
    assert host.render("--systemctl", "true", "--all")[0] == 0  # in sync: recorded
    assert host.render("--noop", "--all")[0] == 0
    assert host.marker.read_text().splitlines()[-1] == "hit"
    synth_host.change_common(host.base)
    code, out, _ = host.render("--noop", "--all")
    assert code == 2 and out.count("would update") == SERVICES


def test_every_plan_of_the_sample_pickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """A worker sends its plans through a pipe: each must come back equal."""
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "service_templates", templates)
    (tmp_path / "machines").mkdir()
    (tmp_path / "host").mkdir()
    settings = Settings((), templates, REPO / "hieradata",
                        Roots(tmp_path / "machines", tmp_path / "host"),
                        node="controller1.example.com", every=True, noop=True,
                        key_source=tmp_path / "host" / "machine-id")
    planned: list[object] = []
    plan_all = runner_module.plan_all

    def keep(runner: Runner, names: list[str]) -> list[object]:
        planned.extend(plan_all(runner, names))
        return planned

    monkeypatch.setattr(runner_module, "plan_all", keep)
    Runner(settings, DryRunSystem(RealSystem(["true"], tmp_path / "state"))).run()
    assert len(planned) > 10
    for plan in planned:
        copy = pickle.loads(pickle.dumps(plan, pickle.HIGHEST_PROTOCOL))
        def spelled(value: object) -> str:  # objects without an equality: by their fields
            return re.sub(r" at 0x[0-9a-f]+", "", repr(value))

        assert spelled(copy) == spelled(plan)
