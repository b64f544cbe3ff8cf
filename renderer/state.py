"""State: what render last did, so restarts are decided from records and not from this run's writes.

Per service, one small JSON file in the state dir (``services/<service>.json``) holds:

- ``units``: per restart action (keyed by its kind, machine and unit, so new action kinds fit), the
  hash of the config set the unit was last successfully (re)started with. A run restarts the unit
  whenever the current hash differs, even if it wrote nothing itself: a restart that failed after
  the write (or a run killed between write and restart) is retried by the next run, which is where
  confd, consul-template and Ansible handlers lose restarts.
- ``files``: per destination (keyed by its target, ``container:<machine>:<path>`` or
  ``host:-:<path>``, never by how the roots are spelled), the hash of what render last wrote there
  (or found in sync) and when,
  so a pending change can be told apart as an edit outside render or a hieradata/template change;
  the last N versions it replaced (the bytes live in ``versions/<service>/<sha256>``, 0600); and
  ``secret_options``, the names of the options that held secrets (only when there are any).

Everything here is pure: parsing, hashing and classification. Reading and writing the files goes
through the System (``read_state``/``write_state``), so ``--noop`` runs the same code and only
drops the writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from enum import Enum
from typing import Any, NamedTuple

from renderer.digest import sha256
from renderer.errors import ApplyError

FORMAT = 2  # 1 keyed files and config sets on display paths; renderer.statefile migrates it
# Bump when the hash input changes; renderer.statefile then re-hashes records that were in sync
# (v1 hashed display paths, v2 target keys), so an upgrade restarts nothing.
HASH_SCHEME = "v2"
DEFAULT_KEEP = 5


class Origin(Enum):
    """Why a file differs from its target; what a reviewer needs to know before it is replaced."""

    NEW = "new"            # render never wrote it and it does not exist
    MISSING = "missing"    # render wrote it before and it is gone
    EDITED = "edited"      # the file is not what render last wrote (or render never wrote it)
    DATA = "data"          # the file is what render last wrote; hieradata or a template changed
    NONE = "none"          # in sync


class Version(NamedTuple):
    """A replaced file: its bytes (``blob``, a sha256 in the versions dir) or absent (None)."""

    blob: str | None
    uid: int
    gid: int
    mode: int
    at: str


class FileRecord(NamedTuple):
    hash: str | None                     # file_hash() of what render last wrote or found in
    at: str                              # sync; None: only versions are known so far
    versions: tuple[Version, ...] = ()   # oldest first
    # the names (never the values) of the options that held a secret in what render last wrote
    # (renderer.masking.option_name), so the next diff masks them on the old side even once the
    # option is gone; optional in the file, so records written before it load as they are
    secret_options: tuple[str, ...] = ()


class UnitRecord(NamedTuple):
    hash: str        # config_hash() the unit last (re)started with successfully
    at: str
    down: bool = False  # render's own restart left it stopped: start it again, not try-restart
    # down because it failed under a confining file render kept (apply): not started again
    # while ``hash`` (the config set it failed with) is still the current one
    held: bool = False


class ServiceState:
    """One service's records. Mutable on purpose: apply updates it and writes it once per run.

    The records are NamedTuples, not frozen dataclasses: they are as immutable, and creating
    the classes costs a twentieth, which counts on the 85 ms in-sync path.
    """

    def __init__(self, units: dict[str, UnitRecord] | None = None,
                 files: dict[str, FileRecord] | None = None, legacy: bool = False) -> None:
        self.units = units if units is not None else {}
        self.files = files if files is not None else {}
        self.legacy = legacy  # read from format 1: keys are display paths until migrated
        self.upgraded = legacy  # ... and then written in the current format, changed or not

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServiceState) and (self.units, self.files) == \
            (other.units, other.files)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def blobs(self) -> set[str]:
        return {v.blob for r in self.files.values() for v in r.versions if v.blob}


def state_name(service: str) -> str:
    return f"services/{service}.json"


def blob_name(service: str, blob: str) -> str:
    return f"versions/{service}/{blob}"


def timestamp(seconds: float | None = None) -> str:
    """UTC with microseconds: it also tells runs apart (``--rollback`` undoes the last one).
    Never part of a hash."""
    seconds = time.time() if seconds is None else seconds
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + \
        f".{int(seconds % 1 * 1e6):06d}Z"


def shown(at: str) -> str:
    """A timestamp for people: to the second."""
    return at[:19] + "Z" if len(at) > 19 else at


def action_key(action: Any) -> str:
    """A restart action's identity: ``<kind>:<machine or ->:<unit>``, for any action kind."""
    return f"{action.kind.value}:{action.machine or '-'}:{action.unit}"


def blob_hash(data: bytes) -> str:
    return sha256(data).hexdigest()


def file_hash(data: bytes, uid: int, gid: int, mode: int) -> str:
    """Content, owner and mode: a chmod is as much a change as an edit. No timestamps."""
    digest = sha256(f"{uid}:{gid}:{mode:o}\n".encode())
    digest.update(data)
    return digest.hexdigest()


def config_hash(files: Iterable[tuple[str, str]], scheme: str = HASH_SCHEME) -> str:
    """The hash of a unit's config set from ``(target key, file_hash)`` pairs.

    Normalised: each path counted once, in sorted order, so the order of service.yaml entries or a
    file listed for two reasons cannot change it (TripleO's restart storms came from both).
    """
    digest = sha256(scheme.encode())
    for key, hashed in sorted(dict(files).items()):
        digest.update(f"\n{key}\t{hashed}".encode())
    return f"{scheme}:{digest.hexdigest()}"


def classify(record: FileRecord | None, actual: str | None, desired: str) -> tuple[Origin, str]:
    """Why a file differs: ``actual`` and ``desired`` are file_hash() values (None: no file)."""
    if actual == desired:
        return Origin.NONE, ""
    if actual is None:
        if record is None or record.hash is None:
            return Origin.NEW, "new file"
        return Origin.MISSING, "file missing"
    if record is None or record.hash is None:
        return Origin.EDITED, "edited outside render, never written by render"
    if actual != record.hash:
        also = "; hieradata/template change too" if desired != record.hash else ""
        return Origin.EDITED, f"edited outside render since {shown(record.at)}{also}"
    return Origin.DATA, "hieradata/template change"


# --- (de)serialisation ------------------------------------------------------------------------

def parse(data: bytes | None, where: object) -> ServiceState:
    """The state file's records; a corrupt file is an error (guessing could lose a restart)."""
    if data is None:
        return ServiceState()
    try:
        document = json.loads(data)
        if document.get("format") not in (1, FORMAT):
            raise ValueError(f"unknown format {document.get('format')!r}")
        return ServiceState(
            units={key: UnitRecord(str(u["hash"]), str(u["at"]), bool(u.get("down", False)),
                                     bool(u.get("held", False)))
                   for key, u in document.get("units", {}).items()},
            files={path: FileRecord(f["hash"] and str(f["hash"]), str(f["at"]), tuple(
                Version(_blob(v["blob"]), int(v["uid"]), int(v["gid"]), int(v["mode"]),
                        str(v["at"]))
                for v in f.get("versions", ())), _names(f.get("secret_options", [])))
                for path, f in document.get("files", {}).items()},
            legacy=document["format"] == 1)
    except RecursionError:
        raise ApplyError("corrupt state file (nested too deeply); move it away to start afresh",
                         path=where) from None
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise ApplyError(f"corrupt state file ({exc}); move it away to start afresh (the next "
                         "run then records what it finds)", path=where) from None


def _blob(value: object) -> str | None:
    """A kept version's name is a sha256, 64 lowercase hex digits, and nothing else: it becomes
    a path in the state dir that render reads and deletes."""
    if value is None or (isinstance(value, str) and len(value) == 64
                         and all(c in "0123456789abcdef" for c in value)):
        return value
    raise ValueError(f"kept version {str(value)[:80]!r} is not a sha256")


def _names(names: Any) -> tuple[str, ...]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("secret_options is not a list of names")
    return tuple(names)


def dumps(state: ServiceState) -> bytes:
    return (json.dumps(document(state), indent=1) + "\n").encode()


def fingerprint(state: ServiceState) -> str:
    """Equal exactly when ``dumps`` is (the same document through json's C encoder, without
    the indent that makes json fall back to Python): a loaded record is compared, not written."""
    return json.dumps(document(state), separators=(",", ":"))


def document(state: ServiceState) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "units": {key: {"hash": u.hash, "at": u.at, **({"down": True} if u.down else {}),
                      **({"held": True} if u.held else {})}
                  for key, u in sorted(state.units.items())},
        "files": {key: {"hash": f.hash, "at": f.at, "versions": [
            {"blob": v.blob, "uid": v.uid, "gid": v.gid, "mode": v.mode, "at": v.at}
            for v in f.versions], **({"secret_options": sorted(f.secret_options)}
                                     if f.secret_options else {})}
            for key, f in sorted(state.files.items())},
    }


# --- record updates ---------------------------------------------------------------------------

def push_version(state: ServiceState, key: str, version: Version, keep: int) -> None:
    """Remember what is about to be replaced; keep the newest ``keep`` versions."""
    record = state.files.get(key)
    versions = (*record.versions, version) if record else (version,)
    versions = versions[-keep:] if keep > 0 else ()
    state.files[key] = record._replace(versions=versions) if record else \
        FileRecord(None, version.at, versions)


def record_file(state: ServiceState, key: str, hashed: str, at: str,
                secret_options: Iterable[str] | None = None) -> None:
    """``secret_options``: the secret option names of what is now there (None: unchanged)."""
    record = state.files.get(key) or FileRecord(hashed, at)
    record = record._replace(hash=hashed, at=at)
    if secret_options is not None:
        record = record._replace(secret_options=tuple(sorted(secret_options)))
    state.files[key] = record


def drop_versions_from(state: ServiceState, key: str, version: Version) -> None:
    """After restoring ``version``: forget it and everything newer, so the next rollback goes
    one step further back (an undo stack, not a toggle)."""
    record = state.files[key]
    index = record.versions.index(version)
    state.files[key] = record._replace(versions=record.versions[:index])
