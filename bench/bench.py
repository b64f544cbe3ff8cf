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


LOOKUPS = 200


def add_lookup_heavy_service(hieradata: Path, templates: Path) -> None:
    """A service whose one file makes LOOKUPS lookups over four levels: first-found keys, deep
    merges from lookup_options, dotted keys, interpolated values and Sensitive secrets; the data
    is spread over extra node, service and OS files next to the sample's."""
    data = hieradata / "data"
    lines = ["lookup_options:", "  '^bench::merged': {merge: deep}",
             "  '^bench::.*password$': {convert_to: Sensitive}"]
    for i in range(LOOKUPS // 4):
        lines += [f"bench::plain{i}: value{i}", f"bench::merged{i}: {{a: {i}, list: [{i}]}}",
                  f"bench::nested{i}: {{inner: {{port: {8000 + i}}}}}",
                  f"bench::password{i}: secret{i}"]
    (data / "bench_common.yaml").write_text("\n".join(lines) + "\n")
    node = [f"bench::merged{i}: {{b: '%{{trusted.certname}}', list: [n{i}]}}"
            for i in range(LOOKUPS // 4)]
    (data / "nodes" / "controller1.example.com.yaml").open("a").write(
        "\n" + "\n".join(node) + "\n")
    hiera = hieradata / "hiera.yaml"
    text = hiera.read_text()
    assert "      - common.yaml\n" in text, "bench: the common level of hiera.yaml changed"
    hiera.write_text(text.replace("      - common.yaml\n",
                                  "      - common.yaml\n      - bench_common.yaml\n"))
    service = templates / "lookupbench"
    service.mkdir()
    (service / "service.yaml").write_text(
        "files:\n  - template: bench.conf.j2\n    dest: /etc/bench/bench.conf\n")
    (service / "bench.conf.j2").write_text(
        f"{{% for i in range({LOOKUPS // 4}) %}}\n"
        "plain{{ i }} = {{ lookup('bench::plain' ~ i) }}\n"
        "merged{{ i }} = {{ lookup('bench::merged' ~ i) }}\n"
        "port{{ i }} = {{ lookup('bench::nested' ~ i ~ '.inner.port') }}\n"
        "password{{ i }} = {{ lookup('bench::password' ~ i) }}\n"
        "{% endfor %}\n")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="render-bench.") as tmp:
        base = Path(tmp)
        shutil.copytree(REPO / "hieradata", base / "hieradata")
        shutil.copytree(REPO / "service_templates", base / "templates")
        add_lookup_heavy_service(base / "hieradata", base / "templates")
        provision(base / "templates", base / "machines", base / "hieradata")
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
        rows.append((f"render --noop lookupbench ({LOOKUPS} lookups, 4 levels)",
                     median_ms([RENDER, "--noop", "lookupbench", *options])))
        lookup = [RENDER, "lookup", "--hieradata", str(base / "hieradata"),
                  "--node", "controller1.example.com"]
        rows.append(("render lookup bench::merged7 (one key, deep merge)",
                     median_ms([*lookup, "bench::merged7"], ok=(0,))))
        print(f"render bench: median of {RUNS} runs after {WARMUP} warm-up runs, "
              f"{os.cpu_count()} cores")
        for name, value in rows:
            print(f"  {name:<56} {value:7.1f} ms   x{value / baseline:4.1f}")


if __name__ == "__main__":
    main()
