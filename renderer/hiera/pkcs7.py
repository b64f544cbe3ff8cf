"""ENC[PKCS7,...]: a CMS EnvelopedData, its content key sent to an RSA key (PKCS#1 v1.5).

hiera-eyaml 3.x addresses the token to a certificate (issuer and serial), 4.1+ to a bare public
key (empty issuer, serial 0); the gem decrypts either with the first recipient and its private
key, and so does this. PyCA ``cryptography`` decrypts PKCS#7 only from 45 on (and never the
second kind), Debian 12 ships 38: asn1crypto parses the envelope and cryptography's RSA and AES
primitives, present in every version, decrypt it. Both are imported only here, on the first token.
"""

from __future__ import annotations

from typing import Any

_CIPHERS = {"aes": 16}  # block size; AES-128/192/256-CBC, whichever the envelope names
_KEYS: dict[bytes, Any] = {}  # PEM -> loaded key: loading checks the key, ~50-600 ms each time


class Pkcs7Error(Exception):
    """Why a token cannot be decrypted (never its content)."""


def decrypt(der: bytes, private_key_pem: bytes) -> bytes:
    """The plaintext of one EnvelopedData, with the first recipient's RSA private key."""
    from asn1crypto import cms
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    try:
        info = cms.ContentInfo.load(der)
        if info["content_type"].native != "enveloped_data":
            raise Pkcs7Error(f"not an enveloped-data token ({info['content_type'].native})")
        envelope = info["content"]
        recipients = envelope["recipient_infos"]
        if not len(recipients) or recipients[0].name != "ktri":
            raise Pkcs7Error("the token has no key-transport recipient")
        recipient = recipients[0].chosen
        encrypted_key = recipient["encrypted_key"].native
        content = envelope["encrypted_content_info"]
        algorithm = content["content_encryption_algorithm"]
        cipher_name = algorithm.encryption_cipher
        iv = algorithm.encryption_iv
        ciphertext = content["encrypted_content"].native or b""
    except (ValueError, TypeError, KeyError) as exc:
        raise Pkcs7Error(f"not a PKCS7 token: {exc}") from None
    if cipher_name not in _CIPHERS or algorithm.encryption_mode != "cbc":
        raise Pkcs7Error(f"unsupported content cipher {algorithm['algorithm'].native}")
    key = _private_key(private_key_pem)
    try:
        content_key = key.decrypt(encrypted_key, padding.PKCS1v15())
        decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
    except ValueError:
        raise Pkcs7Error("the private key does not decrypt this token") from None
    size = padded[-1] if padded else 0
    if not 1 <= size <= _CIPHERS[cipher_name] or padded[-size:] != bytes([size]) * size:
        raise Pkcs7Error("the private key does not decrypt this token (bad padding)")
    return padded[:-size]


def _private_key(pem: bytes) -> Any:
    """The RSA key of ``pem``, loaded once per run. The site's own key file is trusted: its
    consistency check (cryptography >= 39 can skip it) is what makes loading slow."""
    key = _KEYS.get(pem)
    if key is not None:
        return key
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        try:
            key = serialization.load_pem_private_key(pem, None,
                                                     unsafe_skip_rsa_key_validation=True)
        except TypeError:  # cryptography 38 (Debian 12): no such parameter
            key = serialization.load_pem_private_key(pem, None)
    except (ValueError, TypeError) as exc:
        raise Pkcs7Error(f"the private key cannot be read: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise Pkcs7Error("the private key is not an RSA key")
    _KEYS[pem] = key
    return key
