#!/usr/bin/env python3
"""Lay out a new service: ``make new-service NAME=foo``.

Writes what a service needs to render on its first dry run, and nothing else:

* ``service_templates/<name>/service.yaml``: one INI file in the container ``<name>`` and the
  shared container block (``- include: container``, from ``_lib/container.yaml``);
* ``service_templates/<name>/<name>.conf.j2``: a starter template reading two keys;
* ``hieradata/data/services/<name>.yaml``: those two keys (the "Per service" level).

A name that is not a valid service name (renderer.names), a subcommand (``lookup``) or one
that already has a folder or a data file is refused, and nothing is written. Exit 0 when the
files were written, 64 for a bad name, 73 (EX_CANTCREAT) for an existing one.

    new_service.py NAME [--templates DIR] [--hieradata DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# names.py imports nothing but ``re``: no virtualenv needed to run this
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from renderer.names import SUBCOMMANDS, is_name  # noqa: E402

SERVICE_YAML = """\
# {name}: what it is, and which unit reads its files (machine "{name}").
machine: {name}
files:
  - template: {name}.conf.j2
    dest: /etc/{name}/{name}.conf
    owner: root
    group: root
    mode: "0640"
    validate: ini
    oslo_namespaces: []   # the oslo.config namespaces of an OpenStack service; [] for none
    restart: unit:{name}
  - include: container   # _lib/container.yaml: the .nspawn, host0 and macvlan files
"""

TEMPLATE = """\
{{#- Shared macros: {{% from "openstack.j2" import database, keystone_authtoken with context %}}
    (see README "Add a service" for the keys each one reads). -#}}
# Managed by render from hieradata. Local edits are reported and then replaced.
[DEFAULT]
debug={{{{ lookup('{name}::debug') }}}}
listen_port={{{{ lookup('{name}::listen_port') }}}}
"""

DATA = """\
---
# What only {name} reads (the "Per service" level: services/%{{service}}.yaml). Shared facts
# (endpoints, memcached, RabbitMQ, the database host) are in common.yaml, passwords in
# credentials.yaml, the container's network attachments in network.yaml
# (network::containers.{name}).
{name}::debug: false
{name}::listen_port: 8080
"""


def check_name(name: str, templates: Path, hieradata: Path) -> tuple[int, str] | None:
    """(exit code, message) when ``name`` cannot be a new service, else None."""
    if not is_name(name):
        return 64, f"invalid service name {name!r}: use [a-z0-9][a-z0-9_.-]*"
    if name in SUBCOMMANDS:
        return 64, f"{name!r} is a subcommand (render {name}), not a service name"
    for path in (templates / name, hieradata / "data" / "services" / f"{name}.yaml"):
        if path.exists() or path.is_symlink():
            return 73, f"{path} already exists: pick another name"
    return None


def create(name: str, templates: Path, hieradata: Path) -> list[Path]:
    """Write the three files; returns their paths."""
    folder = templates / name
    data = hieradata / "data" / "services" / f"{name}.yaml"
    folder.mkdir()
    written = [folder / "service.yaml", folder / f"{name}.conf.j2", data]
    written[0].write_text(SERVICE_YAML.format(name=name))
    written[1].write_text(TEMPLATE.format(name=name))
    data.parent.mkdir(parents=True, exist_ok=True)
    with open(data, "x") as handle:  # never over a file made meanwhile
        handle.write(DATA.format(name=name))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Lay out a new render service.")
    parser.add_argument("name")
    parser.add_argument("--templates", type=Path, default=Path("service_templates"))
    parser.add_argument("--hieradata", type=Path, default=Path("hieradata"))
    args = parser.parse_args(argv)
    refused = check_name(args.name, args.templates, args.hieradata)
    if refused is not None:
        print(f"new-service: {refused[1]}", file=sys.stderr)
        return refused[0]
    for path in create(args.name, args.templates, args.hieradata):
        print(f"new-service: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
