"""The preview figure's site: a git repository of the sample (every service on every node, by
``render::services``) with two branches, a memcached server added and a password rotated on
the second, and ``count`` onceover factsets whose nodes differ by name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVICES = ["cinder", "glance", "haproxy", "heat", "horizon", "host-network", "keystone",
            "mariadb", "memcached", "neutron", "nova", "placement", "rabbitmq"]


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def build(base: Path, count: int) -> list[str]:
    """The repository and the factsets under ``base``; returns ``render preview``'s options."""
    repo = base / "site"
    shutil.copytree(REPO / "hieradata", repo / "hieradata")
    shutil.copytree(REPO / "service_templates", repo / "service_templates")
    data = repo / "hieradata" / "data"
    with (data / "common.yaml").open("a") as handle:
        handle.write(f"\nrender::services: {json.dumps(SERVICES)}\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "sample")
    common, credentials = data / "common.yaml", data / "credentials.yaml"
    common.write_text(common.read_text().replace("  - 192.0.2.22\n",
                                                 "  - 192.0.2.22\n  - 192.0.2.23\n"))
    credentials.write_text(credentials.read_text().replace("Kst0ne-db-S3cret", "Kst0ne-new-1"))
    _git(repo, "checkout", "-qb", "change")
    _git(repo, "commit", "-qam", "memcached added, keystone's password rotated")
    nodes = base / "nodes"
    nodes.mkdir()
    for index in range(count):
        name = f"node{index:04d}"
        (nodes / f"{name}.json").write_text(json.dumps({"name": f"{name}.example.com", "values": {
            "clientcert": f"{name}.example.com", "fqdn": f"{name}.example.com",
            "hostname": name, "domain": "example.com", "os": {"family": "Debian"}}}))
    return ["--repo", str(repo), "--from", "main", "--to", "change", "--nodes", str(nodes)]
