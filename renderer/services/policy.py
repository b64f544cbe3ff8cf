"""Restart policies: ``restart_policy`` in ``service.yaml``, read at load and bound with the data.

A policy belongs to one restart item of the definition (``unit:mariadb``, written as in
``restart:``). ``now`` (the default) restarts as soon as the files changed; ``rolling`` restarts a
member of a cluster only while at most ``max_parallel`` members of its ``group`` restart, and
only once its readiness ``probe`` passes (renderer.rolling). The group is usually the data's
(``group: {lookup: galera::cluster_name}``), and the whole policy may be the data's too
(``{lookup: KEY, default: {...}}``), so a site overrides it in hieradata without a copy of the
definition. Everything the definition says is checked at load; a value from the data is checked
when bound, with the hiera key in the message.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from renderer.names import is_name
from renderer.services.fields import Where, ref, restarts, unknown
from renderer.services.model import Action, Ref, Restart

_POLICY_KEYS = {"policy", "group", "max_parallel", "probe"}
_PROBE_KEYS = {"command", "expect", "timeout"}
MAX_PROBE_TIMEOUT = 3600.0


class Probe(NamedTuple):
    """A readiness check: ``command`` run without a shell (``{machine}`` stands for the unit's
    machine); it passes on exit 0 and, with ``expect``, when its output matches that regex.
    ``timeout``: the seconds it has to pass after a restart (one run never takes longer)."""

    command: tuple[str, ...]
    expect: str | None = None
    timeout: float = 30.0

    def argv(self, machine: str | None) -> list[str]:
        return [arg.replace("{machine}", machine or "") for arg in self.command]


class Policy(NamedTuple):
    rolling: bool = False
    group: str | Ref = ""          # a Ref until bound
    max_parallel: int = 1
    probe: Probe | None = None

    def describe(self) -> str:
        return f"rolling, group {self.group}" if self.rolling else "now"


NOW = Policy()
Policies = tuple[tuple[Restart, Policy | Ref], ...]  # as written: Refs until bound


def load(value: Any, where: Where) -> Policies:
    """``restart_policy``: restart item -> policy (or a Ref to one)."""
    if not isinstance(value, dict):
        raise where.fail(f"restart_policy must map restart items to policies, not {value!r}")
    result: list[tuple[Restart, Policy | Ref]] = []
    for item, raw in value.items():
        parsed = restarts(item, False, where)
        if len(parsed) != 1:
            raise where.fail(f"restart_policy: {item!r} is not a restart item")
        if isinstance(raw, dict) and "lookup" in raw:
            found = ref(raw, f"restart_policy {item}", where)
            if found.has_default:
                parse(found.default, where, f"{item} (default)")
            result.append((parsed[0], found))
        else:
            result.append((parsed[0], parse(raw, where, item)))
    return tuple(result)


def parse(raw: Any, where: Where, item: str) -> Policy | Ref:
    """One policy mapping; ``group`` may still be a Ref."""
    what = f"restart_policy {item}"
    if raw in ("now", None):
        return NOW
    if not isinstance(raw, dict):
        raise where.fail(f"{what} must be a mapping (policy, group, max_parallel, probe), "
                         f"not {raw!r}")
    unknown(raw, _POLICY_KEYS, where)
    kind = raw.get("policy", "now")
    if kind == "now":
        if set(raw) - {"policy"}:
            raise where.fail(f"{what}: group, max_parallel and probe need policy: rolling")
        return NOW
    if kind != "rolling":
        raise where.fail(f"{what}: policy must be 'now' or 'rolling', not {kind!r}")
    written = raw.get("group")
    if isinstance(written, dict):
        group: str | Ref = ref(written, f"{what}: group", where)
    elif is_name(written):
        group = str(written)
    else:
        raise where.fail(f"{what}: rolling needs a group name (or {{lookup: KEY}}), "
                         f"not {written!r}")
    limit = raw.get("max_parallel", 1)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise where.fail(f"{what}: max_parallel must be a whole number from 1, not {limit!r}")
    if "probe" not in raw:
        raise where.fail(f"{what}: rolling needs a probe (a command that passes when the "
                         "member is ready)")
    return Policy(True, group, limit, probe(raw["probe"], where, what))


def probe(raw: Any, where: Where, what: str) -> Probe:
    if not isinstance(raw, dict):
        raise where.fail(f"{what}: probe must be a mapping with command, not {raw!r}")
    unknown(raw, _PROBE_KEYS, where)
    command = raw.get("command")
    if not isinstance(command, list) or not command or not all(
            isinstance(arg, str) and arg and "\0" not in arg for arg in command):
        raise where.fail(f"{what}: probe command must be a non-empty list of arguments (run "
                         f"without a shell), not {command!r}")
    expect = raw.get("expect")
    if expect is not None:
        if not isinstance(expect, str):
            raise where.fail(f"{what}: probe expect must be a regex, not {expect!r}")
        try:
            re.compile(expect)
        except re.error as exc:
            raise where.fail(f"{what}: probe expect {expect!r} is not a regex: {exc}") from None
    timeout = raw.get("timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not 0 < timeout <= MAX_PROBE_TIMEOUT:
        raise where.fail(f"{what}: probe timeout must be seconds from 0 to "
                         f"{MAX_PROBE_TIMEOUT:.0f}, not {timeout!r}")
    return Probe(tuple(command), expect, float(timeout))


def bind(policies: Policies, machine: str, lookup: Any, where: Where) -> tuple[
        tuple[Action, Policy], ...]:
    """Every policy final: the data's policy and group looked up (``lookup(ref, key)``)."""
    result = []
    for restart, value in policies:
        item = restart.unit or restart.kind.value
        if isinstance(value, Ref):
            key = value.key.replace("{machine}", machine)
            raw = lookup(value, key)
            value = parse(raw, where, f"{item} (from hiera key '{key}')")
            if isinstance(value, Ref):  # parse never returns one; for the type checker
                raise where.fail(f"restart_policy {item}: a policy, not a lookup")
        if isinstance(value.group, Ref):
            key = value.group.key.replace("{machine}", machine)
            group = lookup(value.group, key)
            if not is_name(group):
                raise where.fail(f"restart_policy {item}: group from hiera key '{key}' must be "
                                 f"a name, not {group!r}")
            value = value._replace(group=str(group))
        result.append((restart.action(machine, None), value))
    return tuple(result)


def needs_data(policies: Policies) -> bool:
    return any(isinstance(v, Ref) or isinstance(v.group, Ref) for _, v in policies)
