"""Parsed YAML kept in the state dir, so a full render with unchanged files never imports PyYAML.

Importing PyYAML and parsing hiera.yaml, the data files and service.yaml cost a tenth of a full
render of one service, every run, for files that rarely change. A real run stores what each file
parsed to in ``<state-dir>/cache/yaml``, under the digest of its exact bytes and of what read
it (the kind below and render's version): a changed file is another entry, so nothing here
depends on timestamps. A later run that finds the entry uses it, ``--noop`` included, which
writes none. Only what parsed without error is stored: a file with an error is parsed every
time, so its message is always the parser's own.

Values are stored with ``marshal``, which keeps dict order, int, float, bool and str apart and
shared objects shared. The Ruby types the loaders make (renderer.hiera.ruby's ``Symbol`` and
``FloatKey``) are stored tagged in tuples, which YAML never produces, and an entry says whether
it holds any, so most entries are loaded without a walk. Like the template cache
(renderer.bccache), entries are read and written only through the checked state-dir directory,
each with an HMAC-SHA256 under a key derived from the host key, verified before ``marshal``
reads a byte; an entry that fails is ignored and parsed afresh.

Data files hold the site's secrets, and the state dir keeps none (a backup of it, or a password
rotated since, must not give one away). Each entry is therefore encrypted under a key derived
from the file's own bytes (SHAKE-256 of that key as the keystream): only a reader holding the
very file can open it, and what it opens is that file's content again. An entry of a file that
changed since is noise; a real run that stored new entries removes the ones it did not use once
there are many more of them than it used.
"""

from __future__ import annotations

import marshal
import os
from _sha3 import shake_256
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from renderer import __version__
from renderer.digest import SIZE, compare_digest, hmac_sha256, sha256
from renderer.errors import ApplyError
from renderer.hiera.ruby import FloatKey, Symbol

if TYPE_CHECKING:
    from renderer.system.statedir import Directory

MAX_ENTRY = 16 << 20  # what a bounded data file parses to stays far below this
SPARE = 256  # entries kept beyond twice those a run used, before it removes the others
_SYMBOL, _FLOAT_KEY = "\0render:Symbol", "\0render:FloatKey"
_T = TypeVar("_T")


def cache_key(host_key: bytes) -> bytes:
    """The cache's own key: the masking key is never used for anything else as it is."""
    return hmac_sha256(host_key, b"render yaml cache v1")


class ParseCache:
    """``--noop`` (``writable`` false) uses what earlier real runs parsed and stores nothing."""

    def __init__(self, directory: Directory, key: bytes, writable: bool) -> None:
        self.directory = directory
        self.key = key
        self.writable = writable
        self.used: set[str] = set()
        self.stored = False

    def parsed(self, kind: str, raw: bytes, parse: Callable[[], _T]) -> _T:
        """What ``parse`` makes of ``raw``: from the cache when a real run stored it."""
        name = sha256(f"{kind}\0{__version__}\0".encode() + raw).hexdigest() + ".marshal"
        secret = hmac_sha256(b"render yaml cache content key v1", raw)
        self.used.add(name)
        try:
            data = self.directory.read(name, MAX_ENTRY)
        except (ApplyError, OSError):
            data = None  # not a file we could have written
        if data is not None and len(data) > SIZE:
            mac, sealed = data[:SIZE], data[SIZE:]
            if compare_digest(mac, hmac_sha256(self.key, name.encode() + b"\0" + sealed)):
                try:
                    tagged, value = marshal.loads(_xor(sealed, secret))
                    return _mapped(value, _untag) if tagged else value
                except (ValueError, TypeError, EOFError):
                    pass
        value = parse()
        if self.writable:
            self._store(name, secret, value)
        return value

    def _store(self, name: str, secret: bytes, value: Any) -> None:
        try:
            tagged = not _plain(value)
            stored = _mapped(value, _tag) if tagged else value
            sealed = _xor(marshal.dumps((tagged, stored)), secret)
            self.directory.write(name, hmac_sha256(self.key, name.encode() + b"\0" + sealed)
                                 + sealed, durable=False)
            self.stored = True
        except (ValueError, RecursionError, ApplyError, OSError):
            pass  # a value marshal cannot store, or a cache that cannot be written: time only

    def prune(self) -> None:
        """After a real run that stored entries: the unused ones go when they are many."""
        if not (self.writable and self.stored):
            return
        try:
            names = [n for n in os.listdir(self.directory.fd) if n.endswith(".marshal")]
        except OSError:
            return
        if len(names) > 2 * len(self.used) + SPARE:
            for name in names:
                if name not in self.used:
                    try:
                        self.directory.remove(name)
                    except (ApplyError, OSError):
                        continue  # not a file of ours: the state dir's checks said why


def _xor(data: bytes, secret: bytes) -> bytes:
    """``data`` XOR the SHAKE-256 keystream of ``secret``: sealing and opening alike."""
    stream = shake_256(secret).digest(len(data))
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(
        len(data), "little")


def parse_cache(system: Any, host_key: bytes, writable: bool) -> ParseCache | None:
    """The run's cache, in the state dir the System checks (``--noop`` creates nothing)."""
    directory = system.cache_dir("cache/yaml", create=writable)
    return None if directory is None else ParseCache(directory, cache_key(host_key), writable)


_ACTIVE: list[ParseCache] = []


@contextmanager
def using(cache: ParseCache | None) -> Iterator[None]:
    """The run owner's cache for the loaders while the run plans (renderer.runner)."""
    if cache is None:
        yield
        return
    _ACTIVE.append(cache)
    try:
        yield
    finally:
        _ACTIVE.remove(cache)
    cache.prune()


def take() -> tuple[list[str], bool]:
    """In a planning worker (renderer.fanout): the entries it used and whether it stored any,
    for the run owner's prune, which must not remove what the workers used."""
    if not _ACTIVE:
        return [], False
    cache = _ACTIVE[-1]
    return sorted(cache.used), cache.stored


def merge(used: tuple[list[str], bool]) -> None:
    """A worker's ``take``, added to this process's cache."""
    if _ACTIVE:
        _ACTIVE[-1].used.update(used[0])
        _ACTIVE[-1].stored = _ACTIVE[-1].stored or used[1]


def parsed(kind: str, raw: bytes, parse: Callable[[], _T]) -> _T:
    """``parse()``, or the stored result for these exact bytes when a run's cache is active."""
    return _ACTIVE[-1].parsed(kind, raw, parse) if _ACTIVE else parse()


_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    """Only types marshal restores exactly (not their subclasses, not tuples)."""
    kind = type(value)
    if kind is dict:
        return all(_plain(k) and _plain(v) for k, v in value.items())
    if kind is list:
        return all(map(_plain, value))
    return kind in _PLAIN


def _mapped(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """``value`` rebuilt with ``leaf`` applied to everything but its dicts and lists."""
    kind = type(value)
    if kind is dict:
        return {_mapped(k, leaf): _mapped(v, leaf) for k, v in value.items()}
    if kind is list:
        return [_mapped(item, leaf) for item in value]
    return leaf(value)


def _tag(value: Any) -> Any:
    kind = type(value)
    if kind is Symbol:
        return (_SYMBOL, value.name)
    if kind is FloatKey:
        return (_FLOAT_KEY, float(value))
    if kind in _PLAIN:
        return value
    raise ValueError(f"cannot store a {kind.__name__}")


def _untag(value: Any) -> Any:
    if type(value) is tuple:
        return Symbol(value[1]) if value[0] == _SYMBOL else FloatKey(value[1])
    return value
