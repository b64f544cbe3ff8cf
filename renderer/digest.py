"""SHA-256 and HMAC-SHA256 without OpenSSL: the interpreter's own ``_sha256``.

``hashlib`` and ``hmac`` load ``_hashlib``, which links OpenSSL's libcrypto: 2-3 ms at the start
of every full render, a fortieth of it, for hashing a few kilobytes of config files and keys.
The built-in module gives the same digests (tests/test_digest.py compares both on every length
around the block size); HMAC is RFC 2104 over it, as ``hmac.new`` computes it. An interpreter
built without the built-in hashes uses ``hashlib``'s.
"""

from __future__ import annotations

from _operator import _compare_digest as compare_digest  # hmac's, without OpenSSL
from collections.abc import Callable
from typing import Any


def _builtin() -> Callable[..., Any]:
    import importlib

    for module in ("_sha256", "_sha2"):  # CPython 3.11's name, then 3.12's
        try:
            return importlib.import_module(module).sha256
        except ImportError:
            continue
    from hashlib import sha256 as openssl  # a build without the built-in hashes

    return openssl


sha256: Callable[..., Any] = _builtin()
BLOCK = 64  # SHA-256's block size, HMAC's key length
SIZE = 32
_INNER = bytes(x ^ 0x36 for x in range(256))
_OUTER = bytes(x ^ 0x5C for x in range(256))

__all__ = ["SIZE", "compare_digest", "hmac_sha256", "sha256"]


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """``hmac.new(key, message, hashlib.sha256).digest()``."""
    if len(key) > BLOCK:
        key = sha256(key).digest()
    key = key.ljust(BLOCK, b"\0")
    inner = sha256(key.translate(_INNER))
    inner.update(message)
    return sha256(key.translate(_OUTER) + inner.digest()).digest()
