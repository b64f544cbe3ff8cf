"""Synthetic deployments for the safety tests: services, hieradata and provisioned rootfs trees.

``build()`` writes a Hiera 5 tree (``services/<service>.yaml`` then ``common.yaml``), one
``service.yaml`` and template per file, and a provisioned container rootfs per machine
(``etc/passwd``, ``etc/group`` and the destination directories), all below one base directory.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HIERA = """\
version: 5
defaults: {datadir: data, data_hash: yaml_data}
hierarchy:
  - {name: per service, path: "services/%{service}.yaml"}
  - {name: common, path: common.yaml}
"""
PASSWD = "root:x:0:0::/root:/bin/sh\nsvc:x:163:163::/var/lib/svc:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nsvc:x:163:\n"


@dataclass
class Layout:
    """The roots of a test deployment below one base directory (render's path options)."""

    base: Path
    TEMPLATES = "templates"

    @property
    def hieradata(self) -> Path:
        return self.base / "hieradata"

    @property
    def templates(self) -> Path:
        return self.base / self.TEMPLATES

    @property
    def machines(self) -> Path:
        return self.base / "machines"

    @property
    def host(self) -> Path:
        return self.base / "host"

    @property
    def state(self) -> Path:
        return self.base / "state"

    def rootfs(self, machine: str) -> Path:
        return self.machines / machine

    def roots(self, node: str) -> list[str]:
        return ["--hieradata", str(self.hieradata), "--templates", str(self.templates),
                "--machines-dir", str(self.machines), "--host-root", str(self.host),
                "--state-dir", str(self.state), "--node", node]


class Synth(Layout):
    def options(self, restart: bool = False) -> list[str]:
        return [*self.roots("node1.example.com"), *([] if restart else ["--no-restart"])]

    def set_data(self, data: dict[str, Any], service: str | None = None) -> None:
        path = self.hieradata / "data" / ("common.yaml" if service is None
                                          else f"services/{service}.yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data))


def build(base: Path, services: dict[str, list[dict[str, Any]]],
          data: dict[str, Any] | None = None, provision: bool = True) -> Synth:
    """``services``: name -> file entries (service.yaml's keys, plus ``text``: the template)."""
    synth = Synth(base)
    synth.hieradata.mkdir(parents=True)
    (synth.hieradata / "hiera.yaml").write_text(HIERA)
    synth.set_data(data or {})
    synth.host.mkdir(parents=True, exist_ok=True)
    for name, files in services.items():
        directory = synth.templates / name
        directory.mkdir(parents=True)
        entries = []
        for index, entry in enumerate(files):
            entry = dict(entry)
            template = entry.setdefault("template", f"f{index}.j2")
            (directory / template).write_text(entry.pop("text", "x\n"))
            entries.append(entry)
        (directory / "service.yaml").write_text(yaml.safe_dump({"files": entries}))
        if provision:
            provision_rootfs(synth.rootfs(name), entries)
    return synth


def provision_rootfs(rootfs: Path, entries: list[dict[str, Any]]) -> None:
    (rootfs / "etc").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc" / "passwd").write_text(PASSWD)
    (rootfs / "etc" / "group").write_text(GROUP)
    for entry in entries:
        if entry.get("root", "container") == "container":
            (rootfs / entry["dest"].lstrip("/")).parent.mkdir(parents=True, exist_ok=True)


def tree_hash(top: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Every entry below ``top`` (not following symlinks) with type, content hash, owner, mode.

    Symlinks are recorded by target, devices by number, FIFOs by kind; nothing is opened except
    regular files, so hashing a planted FIFO cannot hang.
    """
    result: dict[str, tuple[str, ...]] = {}
    for directory, dirs, files in os.walk(top):
        here = Path(directory)
        dirs[:] = [d for d in dirs if here / d not in skip]
        for name in [*dirs, *files]:
            path = here / name
            if path in skip:
                continue
            st = path.lstat()
            meta = (oct(st.st_mode), str(st.st_uid), str(st.st_gid))
            if stat.S_ISREG(st.st_mode):
                result[str(path)] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(), *meta)
            elif stat.S_ISLNK(st.st_mode):
                result[str(path)] = ("link", os.readlink(path), *meta)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                result[str(path)] = ("dev", str(st.st_rdev), *meta)
            else:
                result[str(path)] = ("other", "", *meta)
    return result


def temp_files(top: Path) -> list[Path]:
    return sorted(p for p in top.rglob(".render-tmp.*"))


SHADOW = "root:*:19000:0:99999:7:::\nsvc:!:19000::::::\n"
SECURETTY = "# /etc/securetty: consoles root may log in on\nconsole\ntty1\n"
ROOT_HASH = "$6$s4ltS4lt$" + "x" * 86
LINK = {"link": "/lib/systemd/system/systemd-networkd.service",
        "dest": "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
        "create_dirs": True}
LINE = {"line": "pts/0", "dest": "/etc/securetty"}
PASSWORD = {"password": {"lookup": "app::root::password_hash"}, "dest": "/etc/shadow"}
SENSITIVE_HASH = {"lookup_options": {"^.*::password_hash$": {"convert_to": "Sensitive"}}}


def build_edits(base: Path, edits: list[dict[str, Any]], data: dict[str, Any] | None = None,
                shadow: str | None = SHADOW, securetty: str | None = SECURETTY) -> Synth:
    """Service ``app``: one whole file (``/etc/app/app.conf``) and ``edits`` (link, line and
    password entries, service.yaml's keys), its rootfs with ``etc/shadow`` (0640 root:42, as
    Debian's) and ``etc/securetty`` unless None; the hash at ``app::root::password_hash``."""
    synth = build(base, {"app": [{"dest": "/etc/app/app.conf"}]},
                  data={**SENSITIVE_HASH, "app::root::password_hash": ROOT_HASH, **(data or {})})
    definition = synth.templates / "app" / "service.yaml"
    files = yaml.safe_load(definition.read_text())["files"]
    definition.write_text(yaml.safe_dump({"files": [*files, *edits]}))
    etc = synth.rootfs("app") / "etc"
    (etc / "group").write_text(GROUP + "shadow:x:42:\n")
    if shadow is not None:
        (etc / "shadow").write_text(shadow)
        os.chown(etc / "shadow", 0, 42)
        (etc / "shadow").chmod(0o640)
    if securetty is not None:
        (etc / "securetty").write_text(securetty)
    return synth
