"""The template cache: compiled templates that render loads only if it can prove it wrote them.

Jinja's own ``FileSystemBytecodeCache`` reopens a path and marshal-loads whatever it finds: with
root running the result, a file planted there is code run as root. This cache reads and writes
only through the checked fd of ``<state-dir>/cache/jinja`` (renderer.system.statedir: regular
files, ours, private, bounded), and each file carries an HMAC-SHA256, under a key derived from
the host key (``hmac.key``), of the template's cache key and the bytes. The HMAC is verified
before Jinja sees a byte; a file that fails is ignored (the template is compiled again) and
overwritten by the next real run.
"""

from __future__ import annotations

import io

from renderer.digest import SIZE, compare_digest, hmac_sha256
from renderer.errors import ApplyError
from renderer.jinjaimport import jinja2
from renderer.system.statedir import Directory

MAX_ENTRY = 16 << 20  # a compiled template larger than this is not ours
_MAC = SIZE


def cache_key(host_key: bytes) -> bytes:
    """The cache's own key: the masking key is never used for anything else as it is."""
    return hmac_sha256(host_key, b"render jinja bytecode cache v1")


class SignedBytecodeCache(jinja2.BytecodeCache):
    """``--noop`` (``writable`` false) uses compiled templates from earlier runs, writes none."""

    def __init__(self, directory: Directory, key: bytes, writable: bool) -> None:
        self.directory = directory
        self.key = key
        self.writable = writable

    def _mac(self, name: str, payload: bytes) -> bytes:
        return hmac_sha256(self.key, name.encode() + b"\0" + payload)

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        name = f"{bucket.key}.cache"
        try:
            data = self.directory.read(name, MAX_ENTRY)
        except (ApplyError, OSError):
            return  # not a file we could have written: compile afresh
        if data is None or len(data) < _MAC:
            return
        mac, payload = data[:_MAC], data[_MAC:]
        if compare_digest(mac, self._mac(name, payload)):
            bucket.load_bytecode(io.BytesIO(payload))

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if not self.writable:
            return
        name = f"{bucket.key}.cache"
        out = io.BytesIO()
        bucket.write_bytecode(out)
        payload = out.getvalue()
        try:
            self.directory.write(name, self._mac(name, payload) + payload, durable=False)
        except (ApplyError, OSError):
            pass  # a cache that cannot be written costs time, never the run

    def clear(self) -> None:
        pass
