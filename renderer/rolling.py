"""Rolling restarts: a cluster member restarts only while the rest of its cluster can spare it.

A unit whose restart policy is ``rolling`` (renderer.services.policy) goes through
``restart`` instead of restarting at once:

1. with a coordinator (``--coordinator etcd://...``), it waits up to ``--lock-wait`` seconds for a
   place in its group's lock (renderer.coordinator: at most ``max_parallel`` holders, a lease
   that ends by itself);
2. its probe runs once: a failing probe says a member is down or not in sync (without a
   coordinator it is the only guard), so it does not restart now;
3. the restart and its health check, as for any unit (renderer.restarts);
4. its probe must pass within its timeout before the lock is released, so the next member
   restarts only once this one is ready again. A probe that does not pass fails the restart,
   like a failed health check.

A restart that did not run (no place in the lock in time, etcd unreachable, the first probe
failed) is ``OWED``: its record is not updated, so the next run (or ``render restart``) tries
again, and the run reports it as a failure (exit 4, as Puppet reports a resource it could not
refresh): a pending restart means the node does not yet run its config.

Actions of one group also run one after the other inside a run (``key``), so one host with two
members of a cluster restarts them in turn.

A container restart (a changed ``.nspawn`` or network file) stops every unit in it, so it takes
the rolling policy of the units in that machine that its services declare (``policies``): a
change to the data every member shares does not restart every member's container at once. Its
probe's ``{machine}`` is the container's (``machine``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from renderer.restarts import STOPPED, Attempt, Outcome, Pending, current_state
from renderer.services import Action
from renderer.services.model import NSPAWN_UNIT
from renderer.services.policy import Policy, Probe
from renderer.system import System

if TYPE_CHECKING:  # the coordinator (urllib, json) only for a restart that takes a place
    from renderer.coordinator import Etcd

INTERVAL = 1.0  # seconds between two runs of a probe that has not passed yet


def key(action: Action, policy: Policy | None) -> Hashable:
    """The ``run_parallel`` group: the cluster for a rolling unit, the action otherwise."""
    return ("rolling", policy.group) if policy is not None and policy.rolling else action


def hold(policy: Policy, health_timeout: float) -> float:
    """The lease of a lock place: the restart's health wait and the probe, and a margin."""
    probe = policy.probe.timeout if policy.probe else 0.0
    from renderer.coordinator import MARGIN

    return health_timeout + probe + MARGIN


def machine(action: Action) -> str | None:
    """The machine a probe runs in: the unit's, or the container's of a container restart."""
    if action.container_unit and action.unit.startswith(NSPAWN_UNIT):
        return action.unit[len(NSPAWN_UNIT):].removesuffix(".service")
    return action.machine


def check(system: System, probe: Probe, machine: str | None, timeout: float) -> str:
    """'' when the probe passes, else why not (one line)."""
    status, output = system.probe(probe.argv(machine), max(timeout, 0.1))
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    last = lines[-1][:200] if lines else ""
    if status != 0:
        return f"{probe.command[0]} exited {status}" + (f": {last}" if last else "")
    if probe.expect is not None and re.search(probe.expect, output, re.MULTILINE) is None:
        return f"{probe.command[0]}: output does not match {probe.expect!r}" + (
            f" ({last})" if last else "")
    return ""


def ready(system: System, probe: Probe, machine: str | None) -> str:
    """Runs the probe until it passes or its timeout is over; '' or the last reason."""
    deadline = time.monotonic() + probe.timeout
    while True:
        why = check(system, probe, machine, deadline - time.monotonic())
        if not why or time.monotonic() + INTERVAL >= deadline:
            return why
        time.sleep(INTERVAL)


def owed(reason: str) -> Attempt:
    return Attempt(Outcome.OWED, "", reason)


def restart(system: System, action: Action, policy: Policy, coordinator: Etcd | None,
            health_timeout: float, wait: float, run: Callable[[], Attempt],
            force: bool = False) -> Attempt:
    """One rolling restart (see the module docstring); ``run`` is the plain restart. A unit
    that is not running is not restarted (renderer.restarts): no lock, no probe."""
    probe = policy.probe
    if probe is None or not force and set(current_state(system, action).split(", ")) <= set(
            STOPPED):  # the policy parser refuses a rolling policy without probe
        return run()
    held = None
    if coordinator is not None:
        from renderer.coordinator import Unavailable

        try:
            held = coordinator.acquire(str(policy.group), policy.max_parallel,
                                       hold(policy, health_timeout), wait)
        except Unavailable as exc:
            return owed(str(exc))
    try:
        where = machine(action)
        why = check(system, probe, where, probe.timeout)
        if why:
            return owed(f"probe failed before the restart, a member of {policy.group} may be "
                        f"down: {why}")
        attempt = run()
        if attempt.outcome is not Outcome.RESTARTED:
            return attempt
        why = ready(system, probe, where)
        if why:
            return Attempt(Outcome.FAILED, f"{attempt.state}, but not ready: its probe did not "
                           f"pass within {probe.timeout:.0f} s ({why})", why)
        return attempt
    finally:
        if held is not None and coordinator is not None:
            coordinator.release(held)


def policy_of(action: Action, declared: dict[Action, Policy]) -> Policy | None:
    """The rolling policy of ``action`` in one service's bound policies; a container restart
    has the first rolling policy of a unit in its machine (see the module docstring)."""
    policy = declared.get(action)
    if policy is None and action.container_unit:
        inside = machine(action)
        policy = next((p for a, p in declared.items()
                       if p.rolling and a.machine == inside and not a.container_unit), None)
    return policy if policy is not None and policy.rolling else None


def policies(pending: dict[Action, list[tuple[Any, Pending]]]) -> dict[Action, Policy]:
    """The rolling policy of each pending action (the first of its services' that has one);
    the reasons of its restarts say so (``files changed; rolling, group galera``), --noop's too."""
    found: dict[Action, Policy] = {}
    for action, owners in pending.items():
        policy = next((p for o, _ in owners
                       if (p := policy_of(action, o.result.plan.policies)) is not None), None)
        if policy is not None:
            found[action] = policy
            pending[action] = [(o, item._replace(reason=f"{item.reason}; {policy.describe()}"))
                               for o, item in owners]
    return found
