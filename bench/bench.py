#!/usr/bin/env python3
"""make bench: wall time of whole ``render`` processes, as Puppet and cron pay it.

Every figure of issue #11's table, as a ratio to the venv's own ``python -c pass``, taken pair
by pair in one interleaved run (bench/timing.py), printed with its milliseconds and its target.
BENCH_RUNS sets the rounds (default 15); the 1,000-service figures, the Puppet apply and the
restarts run BENCH_BIG_RUNS times (default 3), spread over the rounds. Measured here, never
asserted in tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "contrib")]
import preview_site  # noqa: E402
import puppet_keystone  # noqa: E402
import synth_host  # noqa: E402
from demo_machines import provision  # noqa: E402
from restart_ns import RestartBench  # noqa: E402
from sample import add_lookup_heavy_service, sample_options  # noqa: E402
from timing import Measure, interleave  # noqa: E402

from renderer.restarts import HEALTH_SETTLE  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "15"))
BIG_RUNS = int(os.environ.get("BENCH_BIG_RUNS", "3"))
RESTART_UNITS = 10
SIZES = tuple(int(n) for n in os.environ.get("BENCH_SIZES", "200,1000").split(","))
PREVIEW_NODES = int(os.environ.get("BENCH_PREVIEW_NODES", "1000"))
RENDER = str(Path(sys.executable).with_name("render"))
KEYSTONE_CONF = "machines/keystone/etc/keystone/keystone.conf"


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


RACY = 1.1  # seconds: renderer.fastpath's racy window (GRANULARITY_NS) and a margin


def real_run(options: list[str], *what: str) -> None:
    """A real run that syncs the tree ("true" as systemctl: each restart recorded as done). Run
    again once in sync, it records the fast path's manifest for its own command line (``what``,
    default ``--all``), which the --noop form of the same command line then finds."""
    done = subprocess.run([RENDER, "--systemctl", "true", *(what or ("--all",)), *options],
                          capture_output=True, text=True, check=False)
    if done.returncode not in (0, 2):
        raise SystemExit(f"bench: the set-up run exited {done.returncode}: {done.stderr[-300:]}")


def has_no_fast_path() -> bool:
    help_text = subprocess.run([RENDER, "--help"], capture_output=True, text=True).stdout
    return "--no-fast-path" in help_text


def fresh(path: Path) -> object:
    """A prepare step: ``path`` (a state dir) gone before each run, so no record is there."""
    return lambda: shutil.rmtree(path, ignore_errors=True)


def swap_state(options: list[str], state: Path) -> list[str]:
    index = options.index("--state-dir")
    return [*options[:index + 1], str(state), *options[index + 2:]]


def main() -> None:
    full_flag = ["--no-fast-path"] if has_no_fast_path() else []
    full_how = ("--no-fast-path" if full_flag else
                "plain run: this render has no --no-fast-path, its only path is the full render")
    with tempfile.TemporaryDirectory(prefix="render-bench.") as tmp:
        base = Path(tmp)
        measures, notes, problems = [], {}, {}
        # the sample, synced by a real run; a second, never-synced copy for the fresh diff
        sample = base / "sample"
        options = sample_options(sample)
        add_lookup_heavy_service(sample / "hieradata", sample / "templates")
        provision(sample / "templates", sample / "machines", sample / "hieradata")
        shutil.copytree(sample / "machines", base / "fresh-machines")
        real_run(options)  # syncs everything
        time.sleep(RACY)  # what it wrote is older than the racy window when the next run records
        real_run(options)  # in sync: records the manifest for --all (figure 3)
        real_run(options, "keystone")  # and for keystone (figure 1), as Puppet's exec runs it
        cold = base / "cold-state"
        cold_options = swap_state(options, cold)
        cold_options[cold_options.index("--machines-dir") + 1] = str(base / "fresh-machines")
        changed = base / "hieradata-changed"
        shutil.copytree(sample / "hieradata", changed)
        common = changed / "data" / "common.yaml"
        common.write_text(common.read_text().replace("192.0.2.22", "192.0.2.23"))
        changed_options = list(options)
        changed_options[options.index("--hieradata") + 1] = str(changed)
        keystone = [RENDER, "--noop", "keystone"]
        measures += [
            Measure("fresh", [RENDER, "--noop", "--diff", "keystone", *cold_options], (0, 2),
                    prepare=fresh(cold)),
            Measure("f1", [*keystone, *options]),
            Measure("f2", [*keystone, *full_flag, *options]),
            Measure("f3", [RENDER, "--noop", "--all", *options]),
            Measure("memcached", [RENDER, "--noop", "--diff", "keystone", *changed_options], (2,)),
            Measure("lookupbench", [RENDER, "--noop", "lookupbench", *options]),
            Measure("lookup", [RENDER, "lookup", *options[:2], *options[-2:],
                               "bench::merged7"]),
        ]
        for size in SIZES:
            log(f"building a synthetic host of {size} services and syncing it")
            host_options = synth_host.build(base / f"host{size}", size)
            real_run(host_options)
            time.sleep(RACY)
            real_run(host_options)
            rounds = BIG_RUNS if size >= 1000 else None
            state = base / f"host{size}" / "fresh-state"
            measures += [
                Measure(f"sync{size}", [RENDER, "--noop", "--all", *host_options],
                        rounds=rounds),
                Measure(f"full{size}", [RENDER, "--noop", "--all", *full_flag,
                                        *swap_state(host_options, state)],
                        rounds=rounds, prepare=fresh(state)),
                # the synced state: its template cache holds what the real runs compiled
                Measure(f"warm{size}", [RENDER, "--noop", "--all", *full_flag, *host_options],
                        rounds=rounds),
            ]
        log(f"building a git repository of the sample and {PREVIEW_NODES:,} factsets")
        measures.append(Measure("preview", [
            RENDER, "preview", "-j", "2", "--no-diff",
            *preview_site.build(base / "preview", PREVIEW_NODES)], (2,), rounds=BIG_RUNS))
        for key, minimal in (("puppet", False), ("puppetmin", True)):
            why = puppet_keystone.missing()
            if why is None:
                log(f"puppet-keystone ({key}): first apply (writes the scratch keystone.conf)")
                scratch = base / key
                conf = (sample / KEYSTONE_CONF).read_text()
                apply = puppet_keystone.prepare(scratch, conf, minimal)
                first = subprocess.run(apply, capture_output=True, text=True, check=False)
                settings = puppet_keystone.ini_settings(conf)
                if first.returncode != 2 or not puppet_keystone.written(scratch).exists():
                    why = f"first puppet apply exited {first.returncode}: {first.stderr[-300:]!r}"
                elif puppet_keystone.ini_settings(
                        puppet_keystone.written(scratch).read_text()) != settings:
                    why = "puppet's keystone.conf does not hold the settings render wrote"
                else:
                    measures.append(Measure(key, apply, rounds=BIG_RUNS))
                    notes[key] = f"{len(settings)} keystone_config resources"
            if why is not None:
                problems[key] = why
        restarts = RestartBench(base / "restarts", RESTART_UNITS, RENDER)
        try:
            try:
                log(f"booting systemd in a namespace with {RESTART_UNITS} containers")
                restarts.start()
                measures.append(Measure("restart", restarts.argv, (2,), rounds=BIG_RUNS,
                                        prepare=restarts.prepare))
            except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                problems["restart"] = f"cannot run: {error}"
                restarts.stop()
            log(f"measuring: {RUNS} rounds (the big figures {BIG_RUNS} times)")
            baseline = interleave(measures, RUNS, progress=log)
        finally:
            restarts.stop()
    report(baseline.median, {m.key: m for m in measures}, notes, problems, full_how)


TARGETS = {"f1": "<= 2x", "f2": "<= 8x", "f3": "<= 3x", f"sync{SIZES[-1]}": "<= 0.5 s at 1,000",
           f"full{SIZES[-1]}": "<= 3 s at 1,000, linear",
           f"warm{SIZES[-1]}": "<= 3 s at 1,000, linear", "puppet": ">= 100x faster",
           "puppetmin": ">= 100x faster",
           "restart": "about one health wait in all", "preview": "< 2 min on 2 cores"}
LABELS = {
    "fresh": "render --noop --diff keystone (fresh tree, cold state)",
    "f1": "1. render --noop keystone, in sync",
    "f2": "2. render --noop keystone, full render",
    "f3": "3. sample render --noop --all, in sync",
    "memcached": "render --noop --diff keystone (memcached changed)",
    "lookupbench": "render --noop lookupbench (200 lookups, 4 levels)",
    "lookup": "render lookup bench::merged7 (one key, deep merge)",
    **{f"sync{n}": f"4. {n:,} services x3 files --noop --all, in sync" for n in SIZES},
    **{f"full{n}": f"5. {n:,} services, full render (fresh state)" for n in SIZES},
    **{f"warm{n}": f"5. {n:,} services, full render (templates compiled)" for n in SIZES},
    "puppet": "6. puppet-keystone no-change puppet apply",
    "puppetmin": "6. the same, module path: keystone_config's modules only",
    "restart": f"7. a change restarting {RESTART_UNITS} containers",
    "preview": f"8. render preview -j 2, {PREVIEW_NODES:,} nodes x 13 services, 2 revisions",
}


def report(base_ms: float, by: dict[str, Measure], notes: dict[str, str],
           problems: dict[str, str], full_how: str) -> None:
    for size in SIZES:
        for kind in ("sync", "full", "warm"):
            if f"{kind}{size}" in by:
                notes[f"{kind}{size}"] = f"{by[f'{kind}{size}'].median / size:.2f} ms/service"
    for key in ("puppet", "puppetmin"):
        if key in by:
            notes[key] = (f"render in sync {by[key].median / by['f1'].median:.0f}x, full "
                          f"{by[key].median / by['f2'].median:.0f}x faster; "
                          + notes.get(key, ""))
    if "preview" in by:
        notes["preview"] = f"{by['preview'].median / PREVIEW_NODES:.1f} ms/node"
    if "restart" in by:
        total = by["restart"].median
        notes["restart"] = (f"{total / RESTART_UNITS:.0f} ms/unit; "
                            f"{total / 1000 / HEALTH_SETTLE:.1f} health waits "
                            f"(HEALTH_SETTLE {HEALTH_SETTLE} s)")
    notes["f2"] = full_how
    print(f"render bench: medians, {RUNS} interleaved rounds (1,000 services, puppet and "
          f"restarts: {BIG_RUNS}), {os.cpu_count()} cores; ratio = x python -c pass")
    print(f"  {'figure':<55} {'ms':>9} {'ratio':>8}  {'target':<24} notes")
    print(f"  {'python -c pass (' + sys.executable + ')':<55} {base_ms:9.1f} {'x1.0':>8}")
    for key, label in LABELS.items():
        target = TARGETS.get(key, "")
        if key in by:
            ms = by[key].median
            print(f"  {label:<55} {ms:9.1f} {'x' + format(ms / base_ms, '.1f'):>8}  "
                  f"{target:<24} {notes.get(key, '')}")
        else:
            print(f"  {label:<55} {'-':>9} {'-':>8}  {target:<24} "
                  f"NOT MEASURED: {problems.get(key, 'not set up')}")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
