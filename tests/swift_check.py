"""Read a rendered /etc/swift with swift's own loader (tests/test_catalog_swift.py).

Runs under Debian's ``/usr/bin/python3`` with python3-swift (2.30), not render's virtualenv:
these files are swift's, and swift reads them with its own code, not oslo.config.

    swift_check.py ETC_SWIFT SCRATCH

prints one JSON document: what swift made of each file. ``swift.conf`` goes through
``validate_hash_conf`` and ``reload_storage_policies`` (``SWIFT_CONF_FILE`` pointed at it); each
server file through ``readconf`` (every section, as its daemons read them) and paste-deploy's
``loadcontext``, then ``loadapp`` builds each WSGI pipeline for real. The proxy needs rings:
SCRATCH gets one per ring type, built with swift's RingBuilder on the address and port that
the rendered storage server listens on (rings are the operators'; render never writes one),
and the proxy is loaded from a copy of its file whose only change is ``swift_dir = SCRATCH``.
Hash values are reported as SHA-256 digests, never as themselves.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from paste.deploy import loadwsgi
from swift.common import storage_policy, utils, wsgi
from swift.common.ring import RingBuilder

SERVERS = ("account", "container", "object")


def digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def build_ring(scratch: Path, kind: str, conf: dict) -> None:
    builder = RingBuilder(4, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "weight": 100.0, "device": "sdb1",
                     "ip": conf["bind_ip"], "port": int(conf["bind_port"])})
    builder.rebalance()
    builder.get_ring().save(str(scratch / f"{kind}.ring.gz"))


def pipeline(path: Path) -> list[str]:
    context = wsgi.loadcontext(loadwsgi.APP, str(path.resolve()))
    return [c.name for c in wsgi.PipelineWrapper(context).context.filter_contexts] + \
        [context.app_context.name]


def main(etc: Path, scratch: Path) -> dict:
    utils.SWIFT_CONF_FILE = str(etc / "swift.conf")
    utils.validate_hash_conf()
    storage_policy.reload_storage_policies()
    result: dict = {
        "hash": {"prefix": digest(utils.HASH_PATH_PREFIX),
                 "suffix": digest(utils.HASH_PATH_SUFFIX)},
        "policies": [{"index": p.idx, "name": p.name, "default": p.is_default}
                     for p in storage_policy.POLICIES],
        "files": {},
    }
    for name in ("proxy", *SERVERS):
        path = etc / f"{name}-server.conf"
        sections = utils.readconf(str(path))
        result["files"][path.name] = {
            "sections": sorted(s for s in sections if s not in ("__file__", "log_name")),
            # the app's section as the server reads it: [DEFAULT] merged in
            "app": {k: v for k, v in sections[f"app:{name}-server"].items()
                    if k not in ("__file__", "here")},
            "pipeline": pipeline(path),
        }
    for kind in SERVERS:
        build_ring(scratch, kind, result["files"][f"{kind}-server.conf"]["app"])
        app = wsgi.loadapp(str(etc / f"{kind}-server.conf"))
        result["files"][f"{kind}-server.conf"]["loaded"] = chain(app)
    proxy = scratch / "proxy-server.conf"
    proxy.write_text("".join(
        f"swift_dir = {scratch}\n" if line.startswith("swift_dir = ") else line
        for line in (etc / "proxy-server.conf").read_text().splitlines(keepends=True)))
    app = wsgi.loadapp(str(proxy))
    result["files"]["proxy-server.conf"]["loaded"] = chain(app)
    while app is not None and not hasattr(app, "memcache"):
        app = getattr(app, "app", None)
    result["memcache_servers"] = sorted(app.memcache._client_cache) if app else None
    return result


def chain(app: object) -> list[str]:
    """The classes of the loaded pipeline, outermost filter first, down to the app."""
    found = []
    while app is not None and len(found) < 50:
        found.append(f"{type(app).__module__}.{type(app).__name__}")
        app = getattr(app, "app", None) or getattr(app, "_app", None)
    return found


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2])), indent=1, sort_keys=True))
