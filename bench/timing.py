"""Interleaved wall-time measurement of whole processes against ``python -c pass``.

Every round runs the baseline, then each measured command due in that round, so a machine
that slows down (another job, thermal throttling) slows both sides of each ratio alike. A
command measured fewer times than the round count (the big ones) is spread evenly over the
rounds. Medians, never means: one slow run of a few must not move a figure.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

BASELINE = [sys.executable, "-c", "pass"]  # the venv's own interpreter, never PATH's python3


class Measure:
    """One measured command: ``prepare`` runs untimed before each run (e.g. a data change)."""

    def __init__(self, key: str, argv: Sequence[str], ok: tuple[int, ...] = (0,),
                 rounds: int | None = None, prepare: Callable[[], None] | None = None):
        self.key, self.argv, self.ok = key, list(argv), ok
        self.rounds, self.prepare = rounds, prepare
        self.times: list[float] = []

    def run(self) -> float:
        if self.prepare is not None:
            self.prepare()
        start = time.perf_counter()
        done = subprocess.run(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              check=False)
        elapsed = (time.perf_counter() - start) * 1000
        if done.returncode not in self.ok:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise SystemExit(f"bench: {self.key}: {' '.join(self.argv[:3])} ... exited "
                             f"{done.returncode}: {tail[0][:300]}")
        return elapsed

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def due(index: int, rounds: int, total: int) -> bool:
    """Whether a command measured ``rounds`` times runs in round ``index`` of ``total``."""
    if rounds >= total:
        return True
    step = total / rounds
    return int(index / step) != int((index - 1) / step) or index == 0


def interleave(measures: Sequence[Measure], runs: int, warmup: int = 1,
               progress: Callable[[str], None] | None = None) -> Measure:
    """Run ``warmup`` + ``runs`` rounds; return the baseline (every measure gets its times)."""
    baseline = Measure("python -c pass", BASELINE)
    for index in range(-warmup, runs):
        elapsed = baseline.run()
        if index >= 0:
            baseline.times.append(elapsed)
        for measure in measures:
            rounds = min(measure.rounds or runs, runs)
            if index < 0:
                if rounds == runs:  # the big ones are warmed by their set-up run instead
                    measure.run()
            elif due(index, rounds, runs) and len(measure.times) < rounds:
                measure.times.append(measure.run())
        if progress is not None and index >= 0:
            progress(f"round {index + 1}/{runs}")
    return baseline
