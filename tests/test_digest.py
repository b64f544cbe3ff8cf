"""renderer.digest: the built-in SHA-256 and its HMAC give exactly hashlib's and hmac's bytes.

Masks, state records and the template cache's MACs were written with hashlib and hmac before;
one differing byte would show every secret's mask as changed and recompile every template.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from renderer.digest import SIZE, compare_digest, hmac_sha256, sha256

LENGTHS = (0, 1, 31, 32, 55, 56, 63, 64, 65, 127, 128, 129, 1000)


def test_sha256_is_hashlibs() -> None:
    for length in LENGTHS:
        data = os.urandom(length)
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
        streamed = sha256(data[:length // 2])
        streamed.update(data[length // 2:])
        assert streamed.digest() == hashlib.sha256(data).digest()
    assert sha256().digest_size == SIZE


def test_hmac_sha256_is_hmacs_for_every_key_length() -> None:
    for key_length in LENGTHS:
        for length in (0, 1, 64, 200):
            key, message = os.urandom(key_length), os.urandom(length)
            assert hmac_sha256(key, message) == hmac.new(key, message, hashlib.sha256).digest()


def test_rfc4231_case_2() -> None:
    """A published vector, so the test does not only compare two implementations."""
    assert hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


def test_compare_digest() -> None:
    assert compare_digest(b"ab", b"ab") and not compare_digest(b"ab", b"ac")
