"""The in-sync fast path: a signed manifest of every input a real in-sync run depended on.

In the spirit of git's index and ninja's log. A real run that leaves everything in sync (nothing
written, no restart owed or made, nothing held, no error, no note) stores, in the state dir's
``fastpath`` file, the ``lstat`` of every path it read or looked for (``absent`` for a missing
one; directories whose listing mattered), values that have no file (the node name), render's own
module files and version, and its invocation: the command line without ``--noop``, every
``RENDER_*`` variable, the working directory, the user, whether stdout/stderr are terminals.
Paths are recorded where they are read (renderer.manifest), not from a list, so a new read
site is covered by its call.

A later run whose invocation matches and that finds every entry unchanged prints what the full
run printed for that in-sync run (text or JSON, --noop or not) and exits 0, without importing
the pipeline (stdlib only here: os, stat, marshal, _blake2, fcntl). Any doubt is a full run:
no or a bad manifest, a MAC that does not verify under the host key, a different invocation,
an entry changed, an entry whose mtime or ctime is within GRANULARITY_NS of the run start the
manifest was recorded at (git's racy rule: the file may have changed again within one clock
tick), a lock another run holds, ``--no-fast-path``. The manifest file is MAC'd with keyed
BLAKE2b under ``hmac.key``, read through the same strict-modes walk as the state dir
(renderer.system.statedir, redone here without its imports).
"""

from __future__ import annotations

import os
import stat
import sys

from renderer.manifest import MANIFEST, VALUES, begin, decode, digest, end, fields, invocation

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms of this path)
if TYPE_CHECKING:
    from typing import NoReturn

GRANULARITY_NS = 1_000_000_000  # an entry this close to the recording start is racy
MAX_BYTES = 16 << 20
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

# --- where the state dir is ------------------------------------------------------------------


def state_dir(argv: list[str], environ: dict[str, str] | os._Environ[str]) -> str | None:
    """Where the full run would find the state dir (the manifest pins the one it used)."""
    for index, word in enumerate(argv):
        if word.startswith("--st"):
            if word.startswith("--state-dir="):
                return word.partition("=")[2]
            if word == "--state-dir" and index + 1 < len(argv):
                return argv[index + 1]
            return None
    if environ.get("RENDER_STATE_DIR"):
        return environ["RENDER_STATE_DIR"]
    name = environ.get("RENDER_CONFIG") or "/etc/render/render.conf"
    if any(w.startswith("--conf") for w in argv):
        return None
    found = "/var/lib/render"
    try:
        with open(name, "rb") as handle:
            text = handle.read(1 << 20).decode("utf-8")
    except FileNotFoundError:
        return found
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        key, sep, rest = line.partition("=")
        if sep and key.strip() in ("state-dir", "state_dir"):
            if line[:1].isspace():
                return None
            found = rest.strip()
    return found


# --- the state dir, light ----------------------------------------------------------------------


def open_state(path: str) -> int | None:
    """The state dir's fd after the strict-modes walk of renderer.system.statedir, or None
    (missing, a symlink on the way, not ours, writable by others: the full run says why)."""
    if not path.startswith("/") or "/." in path or "//" in path:
        return None
    uid = os.geteuid()
    fd = os.open("/", _DIR)
    below_sticky = False
    try:
        parts = [p for p in path.split("/") if p]
        for index, part in enumerate(parts):
            st = os.fstat(fd)
            below_sticky = below_sticky or bool(st.st_mode & stat.S_ISVTX and st.st_uid == 0)
            if not _trusted(st, uid, below_sticky=False, last=False):
                return None
            child = os.open(part, _DIR, dir_fd=fd)
            os.close(fd)
            fd = child
        st = os.fstat(fd)
        if not _trusted(st, uid, below_sticky, last=True):
            return None
    except OSError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _trusted(st: os.stat_result, uid: int, below_sticky: bool, last: bool) -> bool:
    if st.st_uid not in ((uid,) if below_sticky else (uid, 0)):
        return False
    sticky_root = bool(st.st_mode & stat.S_ISVTX) and st.st_uid == 0
    return not (st.st_mode & 0o022 and (last or not sticky_root))


def read_state(dirfd: int, name: str) -> bytes | None:
    """A regular, private file of ours in the state dir (opened O_NOFOLLOW, checked by fstat)."""
    try:
        fd = os.open(name, _FILE, dir_fd=dirfd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077 \
                or st.st_size > MAX_BYTES:
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


# --- the fast path -----------------------------------------------------------------------------


def _lock(dirfd: int, exclusive: bool) -> int | None:
    """The run's lock as renderer.lock takes it (the dir, then ``lock``), without waiting:
    -1 when only the directory is locked (a --noop with no lock file), None when busy."""
    import fcntl

    operation = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    try:
        fcntl.flock(dirfd, operation)
    except OSError:
        return None
    fd = -1
    try:
        flags = _FILE & ~os.O_RDONLY
        fd = os.open("lock", (os.O_RDWR | os.O_CREAT if exclusive else os.O_RDONLY) | flags,
                     0o600, dir_fd=dirfd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise OSError("not our lock file")
        fcntl.flock(fd, operation)
        there = os.stat("lock", dir_fd=dirfd, follow_symlinks=False)
        if (there.st_dev, there.st_ino) != (st.st_dev, st.st_ino):
            raise OSError("lock file replaced")
        if exclusive:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except FileNotFoundError:
        if exclusive:
            fcntl.flock(dirfd, fcntl.LOCK_UN)
            return None
    except OSError:
        if fd >= 0:
            os.close(fd)
        fcntl.flock(dirfd, fcntl.LOCK_UN)
        return None
    return fd


def _unlock(dirfd: int, fd: int) -> None:
    import fcntl

    if fd >= 0:
        os.close(fd)
    fcntl.flock(dirfd, fcntl.LOCK_UN)


def stale(record: dict[str, object]) -> str | None:
    """Why ``record`` cannot answer (an entry changed, racy, a value differs), or None."""
    limit = int(record["started"]) - GRANULARITY_NS  # type: ignore[call-overload]
    for path, was in record["entries"]:  # type: ignore[attr-defined]
        if was is not None and len(was) == 8 and max(was[3], was[4]) >= limit:
            return f"racy {path}"
        if fields(path) != was:
            return f"changed {path}"
    for name, was in record["values"].items():  # type: ignore[attr-defined]
        if name not in VALUES or VALUES[name]() != was:
            return f"changed value {name}"
    return None


def answer(argv: list[str], environ: dict[str, str] | os._Environ[str]) -> int | None:
    """The exit code of an in-sync run, its output printed; None: run the full path."""
    found = invocation(argv, environ)
    where = state_dir(argv, environ)
    if found is None or where is None:
        return _miss(environ, "invocation")
    key, noop = found
    dirfd = open_state(where)
    if dirfd is None:
        return _miss(environ, "state dir")
    try:
        held = _lock(dirfd, exclusive=not noop)
        if held is None:
            return _miss(environ, "locked")
        try:
            host = read_state(dirfd, "hmac.key")
            record = decode(read_state(dirfd, MANIFEST), host or b"").get(digest(key)) \
                if host is not None and len(host) == 32 else None
            if record is None or record.get("key") != key or record.get("state_dir") != where:
                return _miss(environ, "no record")
            why = stale(record)
            if why is not None:
                return _miss(environ, why)
            _publish(record, noop)
            out, err = record["out"][noop]  # type: ignore[index]
            sys.stdout.write(out)
            sys.stderr.write(err)
            sys.stdout.flush()
            _miss(environ, "hit")
            return 0
        finally:
            _unlock(dirfd, held)
    finally:
        os.close(dirfd)


def _miss(environ: dict[str, str] | os._Environ[str], why: str) -> int | None:
    """Tests only: ``RENDER_DEBUG_FASTPATH=FILE`` gets one line per run, ``hit`` or why not."""
    marker = environ.get("RENDER_DEBUG_FASTPATH")
    if marker:
        with open(marker, "a", encoding="utf-8") as handle:
            handle.write(f"{why}\n")
    return None


class _InSync:
    """One service as renderer.status.Status reads after an in-sync run."""

    def __init__(self, service: str, machine: str | None) -> None:
        self.service, self.machine = service, machine
        self.in_sync, self.files_pending, self.restarts_owed, self.errors = True, 0, 0, 0
        self.last_error, self.exit_code, self.changed, self.restarted = None, 0, 0, 0


def _publish(record: dict[str, object], noop: bool) -> None:
    """The fact, the metrics and the journal entries the full run would have written."""
    fact_file: str | None
    metrics_file: str | None
    journal: str
    fact_file, metrics_file, journal = record["outputs"]  # type: ignore[misc]
    quiet = journal == "never" or (journal == "auto" and not os.environ.get("JOURNAL_STREAM"))
    if not (fact_file or metrics_file) and quiet:
        return  # the journal module (socket) only when an entry may be sent
    from renderer import outputs

    items = [_InSync(s, m) for s, m in record["services"]]  # type: ignore[attr-defined]
    outputs.publish_statuses(items, 0, sys.stderr,  # type: ignore[arg-type]
                             noop=noop, fact_file=fact_file, metrics_file=metrics_file,
                             journal=journal)


def main(argv: list[str] | None = None) -> int:
    """The ``render`` command: the fast path when it can answer, else the full run."""
    words = sys.argv[1:] if argv is None else argv
    try:
        code = answer(words, os.environ)
    except Exception:  # noqa: BLE001 - any doubt is the full run, which reports it properly
        code = None
    if code is not None:
        return code
    found = invocation(words, os.environ)
    if found is not None and not found[1]:
        begin(words)  # only a run that may record a manifest notes what it reads
    from renderer.regexcache import seed

    seed()  # before the pipeline's modules compile their patterns
    from renderer.cli import main as full

    try:
        return full(words)
    finally:
        end()


def console() -> NoReturn:
    """The ``render`` command: ``main``, then flush and leave without the interpreter's
    shutdown (tearing down Jinja's and YAML's modules and objects costs 20-30 ms of a run Puppet
    and cron make constantly). Only here, never in ``main``, which tests and tools call in
    process. A flush that fails (a closed pipe) exits 120 unless the run failed already, as
    Python's own shutdown does. The cyclic collector stays off from the start, as cli.main keeps
    it off for the run: the modules a full run imports are never garbage, and collecting while
    they load costs a twentieth of a full render."""
    import gc

    gc.disable()
    try:
        code = main()
    except SystemExit as exc:  # --help, --version, usage errors (argparse)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120
    os._exit(code)
