"""Inside a systemd-nspawn container: create a network namespace the way neutron 29's agents do.

Runs under ``.venv-oslo/bin/python`` (neutron 29, oslo.privsep, pyroute2 from
``tests/oslo-constraints.txt``) as the container's root, started by
``tests/test_neutron_netns.py``. The path is the agents' own, not a copy of it:
``neutron.privileged.agent.linux.ip_lib.create_netns`` starts the ``namespace_cmd`` privsep
daemon (``privsep-helper``, CAP_SYS_ADMIN only), which forks and calls pyroute2's
``netns._create``: make ``/run/netns`` a shared mount, ``unshare(CLONE_NEWNET)``, bind
``/proc/self/ns/net`` onto ``/run/netns/NAME``. Then the agents' next steps: ``ip netns exec
NAME ip link set lo up`` (what rootwrap runs) and ``set_link_attribute`` in the namespace through
the ``link_cmd`` daemon (CAP_NET_ADMIN and CAP_SYS_ADMIN), in a child process with a timeout
(when that daemon cannot start, oslo.privsep's client may wait forever). The helper command is
``env privsep-helper ...`` instead of ``sudo neutron-rootwrap ... privsep-helper ...``: the probe
is root already, and rootwrap only filters the same command line.

Prints JSON: {"sys_admin": bool, "net_admin": bool (the capability bounding set), "create": "ok"
or the error, "listed": bool, "nsfs": bool, "exec": [rc, stderr], "link": "ok" or the error}.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings


def main(name: str) -> dict[str, object]:
    warnings.simplefilter("ignore")  # eventlet's deprecation notice, from oslo.privsep
    from neutron.privileged.agent.linux import ip_lib as priv_ip_lib
    from oslo_privsep import priv_context

    priv_context.init(root_helper=["env"])
    with open("/proc/self/status") as status:
        bounding = next(int(line.split()[1], 16) for line in status if line.startswith("CapBnd:"))
    out: dict[str, object] = {"sys_admin": bool(bounding >> 21 & 1),
                              "net_admin": bool(bounding >> 12 & 1)}
    try:
        priv_ip_lib.create_netns(name)
        out["create"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, the test decides
        out["create"] = f"{type(exc).__name__}: {exc}"
    try:
        out["listed"] = name in priv_ip_lib.list_netns()
    except Exception:  # noqa: BLE001 - the same daemon as create_netns, reported there
        out["listed"] = False
    with open("/proc/self/mountinfo") as mounts:
        out["nsfs"] = any(line.split()[4] == f"/run/netns/{name}" and " - nsfs " in line
                          for line in mounts)
    done = subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
                          capture_output=True, text=True)
    out["exec"] = [done.returncode, done.stderr.strip()]
    try:  # a child: when the daemon cannot start, oslo.privsep's client may wait forever
        done = subprocess.run([sys.executable, __file__, "--link", name], capture_output=True,
                              text=True, timeout=30)
        lines = done.stdout.strip().splitlines() or done.stderr.strip().splitlines()
        out["link"] = lines[-1]  # the answer, after oslo's log lines
    except subprocess.TimeoutExpired:
        out["link"] = "FailedToDropPrivileges: no answer from the link_cmd daemon in 30 s"
    return out


def link(name: str) -> str:
    """``set_link_attribute`` in the namespace, through the ``link_cmd`` privsep daemon."""
    warnings.simplefilter("ignore")
    from neutron.privileged.agent.linux import ip_lib as priv_ip_lib
    from oslo_privsep import priv_context

    priv_context.init(root_helper=["env"])
    try:
        priv_ip_lib.set_link_attribute("lo", name, state="up")
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    if sys.argv[1] == "--link":
        print(link(sys.argv[2]))
    else:
        print(json.dumps(main(sys.argv[1])))
