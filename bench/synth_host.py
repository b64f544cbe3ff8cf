#!/usr/bin/env python3
"""A synthetic host of N services, to measure how render scales (make bench, profiling).

It is the sample catalog's shape at a larger size: the sample hieradata and the shared ``_lib``
(container block, OpenStack macros), plus ``svc0001``...: each a container service whose own
INI file uses the ``_lib`` macros (database, keystone_authtoken with the memcached servers), a
per-service data file with an INI override, two Sensitive credentials in the common data and an
entry in ``network::containers`` (so the container block's dotted lookups dig into a hash of N
entries, as on a real large host). Each service writes ``files`` files: the container block's
``.nspawn`` and ``host0`` network, and ``files - 2`` INI files of its own (at least one). The
host's copy of the container block leaves out its edits inside the container (the networkd link,
securetty, shadow: renderer.edits), so ``files`` counts every destination, as issue 11's figures do.

    python bench/synth_host.py DIR --services N [--files 3]

prints the render options for the host built in DIR (``render --noop --all $(...)``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NODE = "controller1.example.com"

_TEMPLATE = """\
{% from "openstack.j2" import database, keystone_authtoken with context %}
# Managed by render: file @INDEX@ of @NAME@.
[DEFAULT]
debug={{ lookup('@NAME@::debug') }}
workers={{ lookup('@NAME@::workers', default=2) }}

[keystone_authtoken]
{{ keystone_authtoken('@NAME@') }}

[database]
{{ database('@NAME@') }}
"""

_FILE = """\
  - template: @NAME@-@INDEX@.conf.j2
    dest: /etc/@NAME@/@NAME@-@INDEX@.conf
    owner: @NAME@
    group: @NAME@
    mode: "0640"
    validate: ini
    restart: @RESTART@
"""


def service_names(services: int) -> list[str]:
    return [f"svc{index:04d}" for index in range(1, services + 1)]


def without_edits(text: str) -> str:
    """The container block without its ``link``, ``line`` and ``password`` entries (with the
    comment lines just above them); every other line as the catalog has it."""
    blocks: list[list[str]] = [[]]  # the head, then per entry: its comments, itself, its keys
    comments: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("  #"):
            comments.append(line)
            continue
        if line.startswith("  - "):
            blocks.append([])
        blocks[-1] += comments + [line]
        comments = []
    kept = [b for b in blocks if not re.match(r"(\s*#.*\n)*  - (link|line|password):",
                                               "".join(b))]
    if len(kept) != len(blocks) - 3:
        sys.exit("synth_host: the container block no longer has its three edits")
    return "".join(line for block in kept for line in block) + "".join(comments)


def build(base: Path, services: int, files: int = 3, restart: str = "unit:@NAME@") -> list[str]:
    """Build the host in ``base`` (created; must not hold one already); the render options.
    ``restart``: what a change to a service's own files restarts (``container`` for hosts whose
    systemd runs stand-in containers only, as bench/restart_ns.py)."""
    base = Path(base)
    hieradata, templates = base / "hieradata", base / "templates"
    shutil.copytree(REPO / "hieradata", hieradata)
    templates.mkdir(parents=True)
    shutil.copytree(REPO / "service_templates" / "_lib", templates / "_lib")
    block = templates / "_lib" / "container.yaml"
    block.write_text(without_edits(block.read_text()))
    own = max(files - 2, 1)
    names = service_names(services)
    data = hieradata / "data"
    network = data / "network.yaml"
    text = network.read_text()
    if not text.rstrip().splitlines()[-1].startswith("    "):
        sys.exit("synth_host: network::containers is no longer the last key of network.yaml")
    with network.open("a") as out:  # more entries of network::containers, the last key
        out.writelines(f"  {name}:\n    networks: {{}}\n" for name in names)
    with (data / "credentials.yaml").open("a") as out:
        for name in names:
            out.write(f"\n{name}::database::name: {name}\n{name}::database::user: {name}\n"
                      f"{name}::database::password: '{name}-db-S3cret'\n"
                      f"{name}::keystone::user: {name}\n"
                      f"{name}::keystone::password: '{name}-ks-S3cret'\n")
    for name in names:
        (data / "services" / f"{name}.yaml").write_text(
            f"---\n{name}::debug: false\n{name}::config::{name}-1.conf:\n"
            f"  DEFAULT:\n    max_request_body_size: 114688\n")
        folder = templates / name
        folder.mkdir()
        entries = "".join(_FILE.replace("@RESTART@", restart).replace("@NAME@", name)
                          .replace("@INDEX@", str(index))
                          for index in range(1, own + 1))
        (folder / "service.yaml").write_text(
            f"# {name}: a synthetic container service.\nmachine: {name}\nfiles:\n{entries}"
            "  - include: container\n")
        for index in range(1, own + 1):
            (folder / f"{name}-{index}.conf.j2").write_text(
                _TEMPLATE.replace("@NAME@", name).replace("@INDEX@", str(index)))
    sys.path.insert(0, str(REPO / "contrib"))
    from demo_machines import provision

    provision(templates, base / "machines", hieradata, NODE)
    (base / "host").mkdir()
    return ["--hieradata", str(hieradata), "--templates", str(templates),
            "--machines-dir", str(base / "machines"), "--host-root", str(base / "host"),
            "--state-dir", str(base / "state"), "--node", NODE]


def change_common(base: Path) -> None:
    """A change to common data every service's own files read (the memcached servers of
    keystone_authtoken), so every service restarts; a second call changes it back."""
    path = base / "hieradata" / "data" / "common.yaml"
    text = path.read_text()
    old, new = "192.0.2.22", "192.0.2.23"
    if old not in text and new not in text:
        sys.exit(f"synth_host: {old} is no longer in {path}")
    path.write_text(text.replace(old, new) if old in text else text.replace(new, old))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--services", type=int, required=True)
    parser.add_argument("--files", type=int, default=3)
    args = parser.parse_args(argv)
    print(" ".join(build(args.dir, args.services, args.files)))


if __name__ == "__main__":
    main()
