"""The cluster lock of rolling restarts: a lease-backed semaphore in etcd (v3 API).

``--coordinator etcd://HOST:PORT`` names it. A member that wants to restart puts one key,
``render/locks/<group>/<holder>``, attached to a lease of its own, and holds the lock while its key
is among the first ``max_parallel`` keys of the group by creation revision: a fair queue, as in
the ZooKeeper semaphore recipe and etcd's own lock (which is this with one holder). Nothing
else is written, and a key lives only as long as its lease:

- a crashed holder (or waiter) stops renewing, its lease expires and the next in line proceeds;
- while waiting, the lease is renewed at every look; once the lock is held it is renewed once,
  never again, so the lease (TTL: health timeout + probe timeout + a margin) ends by itself at
  the latest that long after the restart began: render never holds the lock past its health
  timeout, even when it hangs;
- release revokes the lease, which deletes the key at once.

etcd is spoken to through its JSON gateway over HTTP (``/v3/...``, base64 keys), by stdlib
``urllib`` through ``System.coordinate``, not through ``etcdctl``: one short request per step
with its own timeout, no process per look while waiting, answers as JSON rather than text to
parse, and no extra binary on the nodes. Only plain HTTP for now (a loopback or site-local etcd).
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any, NamedTuple

from renderer.errors import UsageError
from renderer.system import System

PREFIX = "render/locks/"
LOOK = 0.5       # seconds between two looks at the queue
REQUEST = 5.0    # seconds one request to etcd may take
MARGIN = 5.0     # seconds of lease beyond the health and probe timeouts


class Unavailable(Exception):
    """The lock could not be had: etcd unreachable, or the wait ran out (the message says)."""


class Held(NamedTuple):
    group: str
    key: str
    lease: str


def endpoint(url: str) -> str:
    """``etcd://host:port`` -> the gateway's base URL; a bad one is a usage error."""
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rstrip("/").rpartition(":")
    if scheme != "etcd" or not host or not port.isdigit() or "/" in rest.rstrip("/"):
        raise UsageError(f"--coordinator must be etcd://HOST:PORT, not {url!r}")
    return f"http://{host}:{port}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Etcd:
    """The semaphore, every call through the System (a dry run never reaches etcd)."""

    def __init__(self, system: System, url: str, holder: str | None = None) -> None:
        self.system = system
        self.url = url
        self.base = endpoint(url)
        self.holder = holder or f"{os.uname().nodename}-{os.getpid()}-{os.urandom(3).hex()}"

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = self.system.coordinate(f"{self.base}/v3/{path}", json.dumps(body).encode(),
                                            REQUEST)
            data = json.loads(answer or b"{}")
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise Unavailable(f"coordinator {self.url} unreachable ({reason})") from None
        if not isinstance(data, dict) or "error" in data:
            raise Unavailable(f"coordinator {self.url} refused {path}: {data!r:.200}")
        return data

    def acquire(self, group: str, limit: int, ttl: float, wait: float) -> Held:
        """Waits up to ``wait`` seconds for one of ``limit`` places; raises Unavailable."""
        lease = str(self.call("lease/grant", {"TTL": max(int(ttl + 0.999), 2)})["ID"])
        key = f"{PREFIX}{group}/{self.holder}"
        held = Held(group, key, lease)
        try:
            self.call("kv/put", {"key": _b64(key), "value": _b64(self.holder), "lease": lease})
            deadline = time.monotonic() + wait
            while True:
                first = self.queue(group, limit)
                if key in first:
                    self.call("lease/keepalive", {"ID": lease})  # the full TTL, from now
                    return held
                if time.monotonic() >= deadline:
                    names = ", ".join(k.rsplit("/", 1)[-1] for k in first) or "nobody"
                    raise Unavailable(f"no place in cluster lock {group!r} within {wait:.0f} s "
                                      f"(held by {names})")
                self.call("lease/keepalive", {"ID": lease})
                time.sleep(LOOK)
        except BaseException:
            self.release(held)
            raise

    def queue(self, group: str, limit: int) -> list[str]:
        """The first ``limit`` keys of the group, oldest first: its holders."""
        prefix = f"{PREFIX}{group}/"
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        data = self.call("kv/range", {"key": _b64(prefix), "range_end": _b64(end),
                                      "sort_order": "ASCEND", "sort_target": "CREATE",
                                      "limit": limit, "keys_only": True})
        return [base64.b64decode(kv["key"]).decode() for kv in data.get("kvs", ())]

    def release(self, held: Held) -> None:
        """Revoke the lease (its key goes with it); an unreachable etcd lets it expire."""
        try:
            self.call("lease/revoke", {"ID": held.lease})
        except Unavailable:
            pass
