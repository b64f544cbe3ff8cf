#!/usr/bin/env python3
"""SIGKILL at random points of real runs over 50 services; run by test_faults.py.

Usage: ``unshare --mount --propagation private killloop.py DIR``. Mounts a tmpfs on DIR (the mount
lives and dies with this private namespace, so nothing leaks), builds 50 services with 2 files
each there, then repeats: change the data, start ``render --all``, SIGKILL it after a delay drawn
at random from a whole run's duration, and check every destination by hash: it must hold exactly
its old or its new content. Then a complete run must finish the job and leave no temp file. After
KILLS kills the loop goes on (up to 4 * KILLS) until at least 3 kills split the files of the run
between old and new. Prints one JSON line of counts; any violation exits non-zero.

Why tmpfs: a SIGKILL does not drop the page cache, so what a killed process leaves is the same on
tmpfs as on a disk; fsync only matters for power loss. On this shared disk every fsync costs
milliseconds and a run over 100 files (plus render's own state) takes seconds; on tmpfs the same
100+ kills fit in about a minute.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synth import build, temp_files  # noqa: E402

SERVICES = 50
LINES = 200
KILLS = 100
ENV = {**os.environ, "PYTHONPATH": str(HERE.parent)}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def body(service: str, name: str, version: int) -> bytes:
    return "".join(f"{service} {name} line {i} version {version}\n" for i in range(LINES)).encode()


def kill_tree(base: Path):
    services = {}
    dests = {}
    for index in range(SERVICES):
        service = f"s{index:02d}"
        files = []
        for name, dest in (("main", f"/etc/{service}/{service}.conf"),
                           ("extra", f"/etc/{service}/conf.d/extra.conf")):
            lines = "".join(f"{service} {name} line {i} version {{{{ v }}}}\n"
                            for i in range(LINES))
            files.append({"dest": dest, "text": "{% set v = lookup('version') %}\n" + lines})
            dests[(service, name, dest)] = None
        services[service] = files
    synth = build(base, services, data={"version": 0})
    return synth, {synth.rootfs(s) / d.lstrip("/"): (s, n) for s, n, d in dests}


def main(base: Path) -> None:
    base.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m", "render-test-kills", str(base)],
                   check=True)
    synth, dests = kill_tree(base)
    rng = random.Random(int(os.environ.get("RENDER_KILL_SEED", "4")))
    command = [sys.executable, "-m", "renderer", *synth.options(), "--all", "--quiet",
               "--lock-timeout", "10"]

    def expected(path: Path, version: int) -> str:
        return sha(body(*dests[path], version))

    def complete(version: int) -> float:
        synth.set_data({"version": version})
        start = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120)
        elapsed = time.monotonic() - start
        if done.returncode != 2 or done.stderr:
            sys.exit(f"complete run v{version}: exit {done.returncode}: {done.stderr}")
        if temp_files(base):
            sys.exit(f"complete run v{version} left temp files: {temp_files(base)}")
        for path in dests:
            if sha(path.read_bytes()) != expected(path, version):
                sys.exit(f"complete run v{version}: {path} does not hold v{version}")
        return elapsed

    version = 1
    complete(version)
    version += 1
    duration = complete(version)  # every file replaced, as in the killed runs
    held = dict.fromkeys(dests, version)
    stats = {"kills": 0, "files": len(dests), "mid_apply": 0, "left_temps": 0, "partial": 0,
             "run_ms": round(duration * 1000)}
    # at least KILLS kills, and on until some landed in the write phase (a bounded number more)
    while stats["kills"] < KILLS or (stats["mid_apply"] < 3 and stats["kills"] < 4 * KILLS):
        version += 1
        synth.set_data({"version": version})
        process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, duration))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            stats["kills"] += 1
        process.wait()
        new = 0
        for path, old in held.items():
            digest = sha(path.read_bytes())
            if digest == expected(path, version):
                held[path] = version
                new += 1
            elif digest != expected(path, old):
                stats["partial"] += 1
                print(f"partial: {path} is neither v{old} nor v{version}", file=sys.stderr)
        stats["mid_apply"] += 0 < new < len(dests)
        stats["left_temps"] += bool(temp_files(base))
        version += 1
        complete(version)  # the next run: exits non-zero if it leaves any temp file
        held = dict.fromkeys(dests, version)
    print(json.dumps(stats))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
