"""renderer.restarts.run_parallel: waves (daemon-reloads first), every group of a wave at once,
the actions of one group one after another. Proved by events and barriers, not by clocks."""

from __future__ import annotations

import threading

import pytest

from renderer import restarts as rs
from renderer.services import Action, ActionKind

UNITS = [Action(ActionKind.CONTAINER, f"systemd-nspawn@m{i}.service") for i in range(6)]
RELOADS = [Action(ActionKind.DAEMON_RELOAD, "daemon-reload", f"m{i}") for i in range(2)]
OK = rs.Attempt(rs.Outcome.RESTARTED, "active", "")


def test_waves_put_daemon_reloads_first():
    assert rs.waves([UNITS[0], RELOADS[0], UNITS[1], RELOADS[1]]) == [RELOADS, UNITS[:2]]
    assert rs.waves(UNITS[:1]) == [UNITS[:1]] and rs.waves([]) == []


def test_a_wave_runs_at_once():
    """Each attempt waits until all six are in flight: one at a time, none would get through."""
    barrier = threading.Barrier(len(UNITS), timeout=30)

    def attempt(action: Action) -> rs.Attempt:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return rs.Attempt(rs.Outcome.FAILED, "", "alone")
        return OK

    assert rs.run_parallel(UNITS, attempt) == {a: OK for a in UNITS}


def test_daemon_reloads_are_over_before_any_restart_begins():
    events: list[tuple[str, Action]] = []
    lock = threading.Lock()

    def attempt(action: Action) -> rs.Attempt:
        with lock:
            events.append(("begin", action))
        with lock:
            events.append(("end", action))
        return OK

    rs.run_parallel([*UNITS, *RELOADS], attempt)
    first_restart = min(i for i, (what, a) in enumerate(events) if a in UNITS)
    last_reload = max(i for i, (what, a) in enumerate(events) if a in RELOADS)
    assert last_reload < first_restart and len(events) == 2 * (len(UNITS) + len(RELOADS))


def test_one_group_runs_one_after_another(monkeypatch: pytest.MonkeyPatch):
    """The seam of a rolling policy: the actions of one group key (m0, m1, m2) run in order,
    each after the one before is over, while the other groups run beside them. m0 waits for m1
    to begin: in one group it cannot (m0 gives up after a second and says so), and m3, of
    another group, is in flight meanwhile."""
    cluster = set(UNITS[:3])
    monkeypatch.setattr(rs, "group", lambda action: "cluster" if action in cluster else action)
    began = {a: threading.Event() for a in UNITS}
    order: list[Action] = []

    def attempt(action: Action) -> rs.Attempt:
        began[action].set()
        order.append(action)
        if action == UNITS[0]:
            overlapped = began[UNITS[1]].wait(timeout=1)
            beside = began[UNITS[3]].wait(timeout=30)
            return rs.Attempt(rs.Outcome.RESTARTED, f"{overlapped} {beside}", "")
        return OK

    done = rs.run_parallel(UNITS, attempt)
    assert done[UNITS[0]].state == "False True"
    assert [a for a in order if a in cluster] == UNITS[:3]
