#!/usr/bin/env python3
"""Provision demo container root filesystems for ``make run``.

render refuses to write into a container that does not exist (a missing rootfs means the machine
is not provisioned yet), so the demo first creates, for every machine the sample catalog writes
into, what a provisioned container would hold: ``etc/passwd`` and ``etc/group`` with the users
and groups its files are owned by, the directories its packages create, and the package files
render edits (``etc/shadow``, ``etc/securetty``). Which machines exist
is decided by the data (several services may share one), so the catalog is bound to the
hieradata exactly as render binds it. Existing files are left alone, so a second ``make run`` is
quiet.

    demo_machines.py TEMPLATES MACHINES HIERADATA [NODE]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from renderer.hiera import Hiera
from renderer.runner import bind_in_scope
from renderer.scope import build_scope
from renderer.services import Root, list_services, load_service

FIRST_UID = 200  # system uids inside the demo containers; real containers bring their own
SHADOW_GID = 42  # Debian's
NODE = "controller1.example.com"


def machine_files(templates: Path, hieradata: Path, node: str = NODE
                  ) -> dict[str, list[tuple[Path, str | None, str | None]]]:
    """machine -> (destination, owner, group) of every file the catalog puts in it."""
    hiera = Hiera.load(hieradata / "hiera.yaml")
    scope = build_scope(node, None, [])
    machines: dict[str, list[tuple[Path, str | None, str | None]]] = {}
    for name in list_services(templates):
        service, _ = bind_in_scope(load_service(templates, name), scope, lambda: hiera)
        for spec in service.files:
            if spec.root is Root.CONTAINER:
                machine = spec.machine or service.machine
                machines.setdefault(machine, []).append(
                    (Path(str(spec.dest)), spec.owner, spec.group))
    return machines


def provision(templates: Path, machines: Path, hieradata: Path | None = None,
              node: str = NODE) -> None:
    """``hieradata`` defaults to the ``hieradata`` folder next to ``templates``."""
    hieradata = hieradata or templates.parent / "hieradata"
    for machine, files in machine_files(templates, hieradata, node).items():
        rootfs = machines / machine
        users = {"root": 0}
        for dest, owner, group in files:
            for name in (owner, group):
                if name is not None and not name.isdigit() and name not in users:
                    users[name] = FIRST_UID + len(users)
            (rootfs / dest.parent.relative_to("/")).mkdir(parents=True, exist_ok=True)
        (rootfs / "etc").mkdir(parents=True, exist_ok=True)
        passwd, group_file = rootfs / "etc/passwd", rootfs / "etc/group"
        if not passwd.exists():
            passwd.write_text("".join(f"{n}:x:{i}:{i}:{n}:/var/lib/{n}:/usr/sbin/nologin\n"
                                      for n, i in users.items()))
        if not group_file.exists():
            group_file.write_text("".join(f"{n}:x:{i}:\n" for n, i in users.items())
                                  + f"shadow:x:{SHADOW_GID}:\n")
        _package_files(rootfs, users)


def _package_files(rootfs: Path, users: dict[str, int]) -> None:
    """What the base packages of a real container hold and render edits: ``etc/shadow``
    (0640 root:shadow, every password locked) and ``etc/securetty``."""
    shadow, securetty = rootfs / "etc/shadow", rootfs / "etc/securetty"
    if not shadow.exists():
        shadow.write_text("".join(f"{n}:*:19000:0:99999:7:::\n" for n in users))
        os.chown(shadow, os.getuid(), SHADOW_GID if os.getuid() == 0 else os.getgid())
        shadow.chmod(0o640)
    if not securetty.exists():
        securetty.write_text("# Managed by the container's packages; render adds pts/0.\n"
                             "console\ntty1\n")


if __name__ == "__main__":
    provision(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]),
              *(sys.argv[4:5] or [NODE]))
