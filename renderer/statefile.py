"""Statefile: render's state dir as the pipeline sees it, all of it through the System.

Per service a record file (``services/<service>.json``, see renderer.state) and the kept versions
of replaced files (``versions/<service>/<sha256>``, 0600 in a 0700 dir: config files hold
secrets); per host the masking key (``hmac.key``). A replaced file is kept before render writes
over it, so the automatic rollback of a failed restart and ``--rollback`` can put it back; a file
render created is kept as "absent". ``--noop`` runs the same code and the DryRunSystem drops the
writes.

It also upgrades format-1 records once, without a restart storm: those keyed files and config
sets on display paths (``f"{root}{dest}"``), so they are matched against the spellings the roots
may have had, and a unit whose recorded config set is what is on disk now gets the same record
in the new scheme instead of a restart.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from renderer import manifest
from renderer import state as st
from renderer.errors import ApplyError
from renderer.system import Actual, System
from renderer.targets import Roots, Target

ABSENT = "absent"  # stands for a missing file in the hash of a config set
KEY_NAME = "hmac.key"
KEY_SIZE = 32


def load(system: System, service: str) -> st.ServiceState:
    name = st.state_name(service)
    manifest.note(system.state_path(name))
    return st.parse(system.read_state(name), system.state_path(name))


DEFAULT_KEY_SOURCE = "etc/ssh/ssh_host_ed25519_key"  # under the host root
_KEY_SOURCE_MAX = 1 << 20
_KEY_LABEL = b"render hmac.key v1"


def host_key(system: System, create: bool, source: str | os.PathLike[str] | None = None) -> bytes:
    """The per-host HMAC key for masked values (``hmac.key`` in the state dir).

    Without one it is derived, so that a host that only ever runs ``--noop`` (which writes
    nothing) masks a value the same way on every run: HMAC-SHA256 over ``source``, a file only
    root can read that stays as long as the host (its SSH host private key by default). The first
    real run stores that same key, so masks do not change when such a host gets a real run, and
    stay the same if the SSH key is rotated later. One that is there but not what render writes
    (32 bytes in a private regular file of ours: read_state checks the rest) is refused, never
    replaced: it may be someone's plant. With no usable source (missing, not a regular
    file, not owned by this user, readable by group or others) the key is random: stored by a real
    run, so only ``--noop`` runs before the first real one mask differently each time.
    """
    manifest.note(system.state_path(KEY_NAME))
    key = system.read_state(KEY_NAME)
    if key is not None and len(key) != KEY_SIZE:
        raise ApplyError(f"host key is {len(key)} bytes, not {KEY_SIZE}; refusing to use or "
                         "replace it (move it away to start afresh)",
                         path=system.state_path(KEY_NAME))
    if key is None:
        seed = read_key_source(source) if source is not None else None
        if seed:
            from renderer.digest import hmac_sha256

            key = hmac_sha256(_KEY_LABEL, seed)
        else:
            key = os.urandom(KEY_SIZE)
        if create:
            system.write_state(KEY_NAME, key)
    return key


def read_key_source(path: str | os.PathLike[str]) -> bytes | None:
    """The bytes of a root-only regular file, or None: never follows a symlink, never blocks
    on a FIFO, never reads a file another user could have written or read."""
    import stat

    manifest.note(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() \
                or info.st_mode & 0o077 or not 0 < info.st_size <= _KEY_SOURCE_MAX:
            return None
        data = os.read(fd, _KEY_SOURCE_MAX + 1)
        return data if 0 < len(data) <= _KEY_SOURCE_MAX else None
    except OSError:
        return None
    finally:
        os.close(fd)


def blob(system: System, service: str, blob: str) -> bytes:
    data = system.read_state(st.blob_name(service, blob))
    if data is None or st.blob_hash(data) != blob:
        raise ApplyError("kept version is missing or damaged",
                         path=system.state_path(st.blob_name(service, blob)))
    return data


class Store:
    """One service's state as loaded, and the blobs it may have to clean up when it is saved."""

    def __init__(self, service: str, state: st.ServiceState) -> None:
        self.service = service
        self.state = state
        self.saved = "" if state.upgraded else st.fingerprint(state)  # an upgrade is always written
        self.known = state.blobs()   # blobs on disk that this state may stop referring to

    def keep(self, system: System, replaced: Iterable[tuple[str, Actual | None]], keep: int,
             at: str) -> None:
        """Store what is about to be replaced: ``(target key, actual or None)`` pairs."""
        for key, before in replaced:
            if before is not None and before.oversize:
                continue  # never read (renderer.bounds): nothing to keep
            if before is None:
                version = st.Version(None, 0, 0, 0, at)
            else:
                blob = st.blob_hash(before.data)
                if blob not in self.known and keep > 0:
                    system.write_state(st.blob_name(self.service, blob), before.data, 0o600)
                    self.known.add(blob)
                version = st.Version(blob, before.uid, before.gid, before.mode, at)
            st.push_version(self.state, key, version, keep)

    def save(self, system: System) -> None:
        """Write the state file when it changed, then drop blobs nothing refers to any more."""
        now = st.fingerprint(self.state)
        if now != self.saved:
            system.write_state(st.state_name(self.service), st.dumps(self.state), 0o600)
            self.saved = now
        referenced = self.state.blobs()
        for blob in sorted(self.known - referenced):
            system.remove_state(st.blob_name(self.service, blob))
        self.known = referenced


# --- the one-time upgrade of format 1 ------------------------------------------------------------

def migrate_files(state: st.ServiceState, targets: Iterable[Target], roots: Roots) -> None:
    """Re-key format-1 file records from display paths to targets (records of files the
    service no longer has are dropped, and with them their kept versions)."""
    if not state.legacy:
        return
    files = {}
    for target in targets:
        for spelled in roots.spellings(target):
            if spelled in state.files:
                files[target.key] = state.files[spelled]
                break
    state.files = files


def migrate_units(state: st.ServiceState, sets: dict[str, list[tuple[Target, str]]],
                  roots: Roots) -> None:
    """Re-hash format-1 unit records. ``sets``: per action key, the config set as it is on
    disk now, ``(target, file_hash or ABSENT)``. A record that matches it under one of the
    roots' spellings is that same config in the new scheme; any other stays as it is, and the
    unit restarts as the old release would have restarted it."""
    if not state.legacy:
        return
    for action_key, pairs in sets.items():
        record = state.units.get(action_key)
        if record is None or not record.hash.startswith("v1:"):
            continue
        for index in range(3):
            spelled = [(roots.spellings(target)[index], hashed) for target, hashed in pairs]
            if st.config_hash(spelled, scheme="v1") == record.hash:
                state.units[action_key] = record._replace(
                    hash=st.config_hash((t.key, h) for t, h in pairs))
                break
    state.legacy = False

