"""The manifest of a run: every input it depended on, recorded where it is read.

renderer.fastpath answers from it. The read sites (hiera data and globs, the template loader,
service definitions, the config file, facts, the System's reads of a root, state records and
the host key) call ``note``: the ``lstat`` fields any write changes (device, inode, size, mtime
and ctime in nanoseconds, mode, owner) are taken then, or None for a missing path, so a file
that appears later is a change too. A directory whose listing mattered (a glob's, a service
search path's, a destination's for stale temp files) is noted as itself: an entry added or
removed changes its mtime. An edit's input is its destination (a container's ``securetty`` or
``shadow``, an enabled unit's link: renderer.edits), noted by the same read of a root, a link by
its own ``lstat``, never followed. Values with no file (the node name) are computed here
(``value``), so the fast path computes them alike; what no entry can show (a systemctl query)
``taint``s the run, which then records nothing. Stdlib only and nothing at import: every run
imports this.
"""

from __future__ import annotations

import os
import stat
import sys
import time

MANIFEST = "fastpath"   # in the state dir
FORMAT = 1
_NOOP = ("--noop", "--check")
_REFUSE = ("--no-fast-path", "--help", "--version", "--list", "--noop", "--check", "--rollback")
MAX_RECORDS = 8         # invocations kept (e.g. cron's --noop --all and Puppet's --all)

# --- recording (the full run) -----------------------------------------------------------------

_entries: dict[str, tuple[int, ...] | None] | None = None  # path -> lstat fields; None: absent
_values: dict[str, str] = {}
_tainted: list[str] = []
_started = 0
argv: list[str] | None = None  # the command line of the run being recorded


def begin(words: list[str]) -> None:
    """Start collecting (``main``, before the run reads anything, the config file first)."""
    global _entries, _started, argv
    _entries, _started, argv = {}, time.time_ns(), list(words)
    _values.clear()
    _tainted.clear()


def collecting() -> bool:
    return _entries is not None


def end() -> None:
    global _entries
    _entries = None


def detach() -> None:
    """A planning worker's notes start afresh (renderer.fanout); ``take`` hands them over."""
    global _entries
    if _entries is not None:
        _entries = {}
    _values.clear()
    _tainted.clear()


def take() -> tuple[dict[str, tuple[int, ...] | None] | None, dict[str, str], list[str]]:
    return _entries, dict(_values), list(_tainted)


def merge(entries: dict[str, tuple[int, ...] | None] | None, values: dict[str, str],
          tainted: list[str]) -> None:
    """A worker's notes, in service order: a path noted earlier keeps its first lstat."""
    if _entries is not None and entries:
        for key, found in entries.items():
            _entries.setdefault(key, found)
    for name, text in values.items():
        _values.setdefault(name, text)
    _tainted.extend(reason for reason in tainted if reason not in _tainted)


def fields(path: str) -> tuple[int, ...] | None:
    """The lstat fields any write changes, or None for a missing path. Any other error is a
    value too (-1 and the errno): it must stay the same."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return (-1, exc.errno or 0)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode,
            st.st_uid, st.st_gid)


def note(path: object) -> None:
    """``path`` was read or looked for: its lstat now (the first time) goes in the manifest."""
    if _entries is not None:
        key = os.path.abspath(os.fspath(path))  # type: ignore[call-overload]
        if key not in _entries:
            _entries[key] = fields(key)


def note_chain(root: object, dest: str, follow: bool = False) -> None:
    """Every component of ``dest`` inside ``root`` (a replaced directory or a planted symlink
    changes one of them); ``follow``: a final symlink is resolved inside the root, as
    renderer.confine does, and its target noted too."""
    if _entries is None:
        return
    top = os.path.abspath(os.fspath(root))  # type: ignore[call-overload]
    note(top)
    pending = [p for p in reversed(dest.split("/")) if p]
    here, hops = top, 0
    while pending and hops < 40:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            here = os.path.dirname(here) if len(here) > len(top) else top
            continue
        path = os.path.join(here, part)
        note(path)
        entry = _entries.get(path)
        if entry is not None and len(entry) == 8 and stat.S_ISLNK(entry[5]) \
                and (pending or follow):
            hops += 1
            try:
                target = os.readlink(path)
            except OSError:
                return
            pending.extend(p for p in reversed(target.split("/")) if p)
            here = top if target.startswith("/") else here
            continue
        here = path


def note_glob(pattern: str) -> None:
    """The directories a glob looks into: a new match changes one of their mtimes."""
    if _entries is None:
        return
    import glob

    parts = pattern.split("/")
    first = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    for depth in range(max(first, 1), len(parts)):  # the directories listed, not above
        prefix = "/".join(parts[:depth]) or "/"
        if "**" in parts[depth - 1]:
            for found in glob.glob(prefix, recursive=True):
                note(found)
            return
        for found in (glob.glob(prefix) if glob.has_magic(prefix) else [prefix]):
            note(found)


def value(name: str) -> str:
    """A fact with no file behind it, computed here so the fast path computes it alike."""
    found = VALUES[name]()
    _values[name] = found
    return found


def taint(reason: str) -> None:
    """Something this run depended on that no entry can show (a systemctl query)."""
    _tainted.append(reason)


VALUES = {"nodename": lambda: os.uname().nodename}


def record(records: dict[bytes, dict[str, object]], key: tuple[object, ...], where: str,
           out: dict[bool, tuple[str, str]], services: list[tuple[str, str | None]],
           outputs: tuple[str | None, str | None, str]) -> dict[bytes, dict[str, object]] | None:
    """This run's record added to ``records`` (the oldest dropped past MAX_RECORDS); None when
    something it depended on cannot be recorded."""
    if _entries is None or _tainted:
        return None
    for module in list(sys.modules.values()):  # render's own code: an upgrade is a change
        name = getattr(module, "__name__", "")
        if name == "renderer" or name.startswith("renderer."):
            path = getattr(module, "__file__", None)
            if path:
                note(path)
    kept = {k: v for k, v in records.items() if k != digest(key)}
    while len(kept) >= MAX_RECORDS:
        kept.pop(min(kept, key=lambda k: kept[k]["started"]))  # type: ignore[arg-type,return-value]
    kept[digest(key)] = {"key": key, "state_dir": where, "started": _started,
                         "entries": list(_entries.items()), "values": dict(_values),
                         "out": out, "services": services, "outputs": outputs}
    return kept


def mac(key: bytes, data: bytes) -> bytes:
    from _blake2 import blake2b

    return blake2b(data, key=key[:64], person=b"render-fastpath").digest()


def decode(raw: bytes | None, key: bytes) -> dict[bytes, dict[str, object]]:
    """The records of a manifest whose MAC verifies; {} for anything else."""
    import marshal
    from _operator import _compare_digest as compare_digest  # hmac's, without OpenSSL

    if raw is None or len(raw) < 64:
        return {}
    if not compare_digest(raw[:64], mac(key, raw[64:])):
        return {}
    try:
        records = marshal.loads(raw[64:])
    except (ValueError, EOFError, TypeError):
        return {}
    return records if isinstance(records, dict) else {}


def encode(records: dict[bytes, dict[str, object]], key: bytes) -> bytes:
    import marshal

    body = marshal.dumps(records)
    return mac(key, body) + body


def digest(key: tuple[object, ...]) -> bytes:
    from _blake2 import blake2b

    return blake2b(repr(key).encode()).digest()  # marshal's bytes depend on refcounts


# --- the invocation ----------------------------------------------------------------------------


def invocation(argv: list[str], environ: dict[str, str] | os._Environ[str]
               ) -> tuple[tuple[object, ...], bool] | None:
    """What must match, and whether this is --noop; None when the words leave any doubt (an
    abbreviated option argparse would expand, ``--``, a short option but ``-q``)."""
    from renderer import __version__

    words, noop, skip = [], False, False
    for word in argv:
        option = word.partition("=")[0]
        if skip or word in _NOOP or option == "--systemctl":  # no effect on an in-sync run
            noop = noop or word in _NOOP
            skip = word == "--systemctl"
            continue
        if word in ("--", "lookup", "show") or (word.startswith("-") and not word.startswith("--")
                            and word != "-q"):
            return None
        if option.startswith("--") and any(o.startswith(option) for o in _REFUSE):
            return None  # --noop's own abbreviations too: argparse would take them as --noop
        words.append(word)
    env = tuple(sorted((k, v) for k, v in environ.items() if k in ("NO_COLOR", "TERM")
                       or (k.startswith("RENDER_") and k != "RENDER_DEBUG_FASTPATH")))
    ttys = tuple(_isatty(fd) for fd in (1, 2))
    key = (FORMAT, __version__, tuple(words), env, os.getcwd(), os.geteuid(), ttys, sys.version)
    return key, noop


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
