#!/usr/bin/env python3
"""make bench: wall time of whole ``render`` processes, as Puppet and cron pay it.

Each figure is the median of RUNS runs after WARMUP warm-up runs, next to ``python -c pass`` with
the same interpreter so a slow machine can be told apart from a slow render. Measured here, never
asserted in tests.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "contrib"))
from demo_machines import provision  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
WARMUP = 3
RENDER = str(Path(sys.executable).with_name("render"))


def median_ms(command: list[str], ok: tuple[int, ...] = (0, 2)) -> float:
    times = []
    for index in range(WARMUP + RUNS):
        start = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              check=False)
        elapsed = time.perf_counter() - start
        if done.returncode not in ok:
            sys.exit(f"bench: {' '.join(command)} exited {done.returncode}: "
                     f"{done.stderr.decode()[-500:]}")
        if index >= WARMUP:
            times.append(elapsed * 1000)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="render-bench.") as tmp:
        base = Path(tmp)
        shutil.copytree(REPO / "hieradata", base / "hieradata")
        shutil.copytree(REPO / "service_templates", base / "templates")
        provision(base / "templates", base / "machines")
        (base / "host").mkdir()
        options = ["--hieradata", str(base / "hieradata"), "--templates", str(base / "templates"),
                   "--machines-dir", str(base / "machines"), "--host-root", str(base / "host"),
                   "--state-dir", str(base / "state"), "--node", "controller1.example.com"]
        rows = []
        baseline = median_ms([sys.executable, "-c", "pass"])
        rows.append(("python -c pass", baseline))
        rows.append(("render --noop --diff keystone (fresh tree, cold state)",
                     median_ms([RENDER, "--noop", "--diff", "keystone", *options])))
        # A real run syncs the tree and leaves compiled templates and restart records in the
        # state dir ("true" as systemctl: no unit runs, so each restart is recorded as done).
        subprocess.run([RENDER, "--systemctl", "true", "--quiet", "--all", *options], check=False)
        rows.append(("render --noop keystone (in sync)",
                     median_ms([RENDER, "--noop", "keystone", *options], ok=(0,))))
        data = base / "hieradata" / "data" / "common.yaml"
        data.write_text(data.read_text().replace("192.0.2.22", "192.0.2.23"))
        rows.append(("render --noop --diff keystone (memcached changed)",
                     median_ms([RENDER, "--noop", "--diff", "keystone", *options])))
        print(f"render bench: median of {RUNS} runs after {WARMUP} warm-up runs, "
              f"{os.cpu_count()} cores")
        for name, value in rows:
            print(f"  {name:<56} {value:7.1f} ms   x{value / baseline:4.1f}")


if __name__ == "__main__":
    main()
