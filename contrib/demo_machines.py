#!/usr/bin/env python3
"""Provision demo container root filesystems for ``make run``.

render refuses to write into a container that does not exist (a missing rootfs means the machine
is not provisioned yet), so the demo first creates, for every sample service, what a provisioned
container would hold: ``etc/passwd`` and ``etc/group`` with the service's users, and the
directories its packages create. Existing files are left alone, so a second ``make run`` is quiet.
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

import yaml

FIRST_UID = 200  # system uids inside the demo containers; real containers bring their own


def provision(templates: Path, machines: Path) -> None:
    for definition in sorted(templates.glob("[!_]*/service.yaml")):
        service = yaml.safe_load(definition.read_text())
        machine = service.get("machine", definition.parent.name)
        rootfs = machines / machine
        users = {"root": 0}
        for entry in service["files"]:
            if entry.get("root", "container") != "container":
                continue
            for key in ("owner", "group"):
                name = entry.get(key)
                if isinstance(name, str) and name not in users:
                    users[name] = FIRST_UID + len(users)
            directory = rootfs / PurePosixPath(entry["dest"]).parent.relative_to("/")
            directory.mkdir(parents=True, exist_ok=True)
        (rootfs / "etc").mkdir(parents=True, exist_ok=True)
        passwd, group = rootfs / "etc/passwd", rootfs / "etc/group"
        if not passwd.exists():
            passwd.write_text("".join(f"{n}:x:{i}:{i}:{n}:/var/lib/{n}:/usr/sbin/nologin\n"
                                      for n, i in users.items()))
        if not group.exists():
            group.write_text("".join(f"{n}:x:{i}:\n" for n, i in users.items()))


if __name__ == "__main__":
    provision(Path(sys.argv[1]), Path(sys.argv[2]))
