"""Observe: read the actual state of every destination, and check that it can be written.

This is the only step before the plan that reads the managed trees, and it reads through the
System, so ``--noop`` (a DryRunSystem delegating its reads) sees and checks exactly what a real
run does. Every "can this be written" check lives here, not in the write path: the destination's
type and its directory (``read_file`` refuses symlinks, devices, FIFOs and a missing directory
without ``create_dirs``), the owner's name in the root's own passwd/group, and an id inside a
private-users range. Both modes therefore fail alike, before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from renderer.errors import ApplyError, MissingDirectoryError, MissingRootError
from renderer.services import FileSpec, Kind, Root, Service
from renderer.system import Actual, System
from renderer.system.checks import shift
from renderer.targets import Roots, Target


class Observed(NamedTuple):
    """One destination as it is, and the owner it must get (in the root's own terms)."""

    target: Target
    path: str                   # for people: root + dest
    actual: Actual | None       # None: the file does not exist (or neither does its directory)
    uid: int
    gid: int
    temps: tuple[str, ...] = ()  # temp files a killed run left next to it


def observe_file(spec: FileSpec, service: Service, roots: Roots, system: System) -> Observed:
    target = roots.target(spec, service.machine)
    root = roots.root_of(target)
    path = roots.display(target)
    try:
        actual = read_actual(system, root, spec)
    except MissingRootError as exc:
        message = (f"container rootfs does not exist: machine {target.machine!r} is not "
                   "provisioned yet" if spec.root is Root.CONTAINER else "host root does not exist")
        raise MissingRootError(message, path=exc.path) from exc
    except MissingDirectoryError:
        if not spec.create_dirs:
            raise
        actual = None
    uid = _resolve_id(spec.owner, "passwd", actual.uid if actual else 0, system, target, roots,
                      service, spec)
    gid = _resolve_id(spec.group, "group", actual.gid if actual else 0, system, target, roots,
                      service, spec)
    base = system.uid_base(root)
    shift(uid, base, "uid", path)  # the same check staging makes: fail now, in both modes
    shift(gid, base, "gid", path)
    temps = tuple(system.stale_temps(root, spec.dest, spec.follow_symlink))
    return Observed(target, path, actual, uid, gid, temps)


def read_actual(system: System, root: Path, spec: FileSpec) -> Actual | None:
    """The destination as it is: a link's target (never followed), or a file's bytes."""
    if spec.kind is Kind.LINK:
        return system.read_link(root, spec.dest)
    return system.read_file(root, spec.dest, follow=spec.follow_symlink)


def _resolve_id(name: str | None, database: str, fallback: int, system: System, target: Target,
                roots: Roots, service: Service, spec: FileSpec) -> int:
    """A user or group id in the root's own terms (``database``: ``passwd`` or ``group``)."""
    if name is None:
        return fallback
    if name.isascii() and name.isdigit():
        return int(name)  # checked against MAX_ID by shift() below
    root = roots.root_of(target)
    table = system.ids(root, database)
    if name not in table:
        kind = "user" if database == "passwd" else "group"
        where = f"container {target.machine}" if target.root is Root.CONTAINER \
            else f"host {root}"
        raise ApplyError(f"{kind} {name!r} does not exist in {where} ({root}/etc/{database})",
                         path=spec.source or service.definition, line=spec.line)
    return table[name]
