"""ENC[PKCS7,...] tokens as hiera-eyaml 4.1+ makes them, for tests: OpenSSL's PKCS7.encrypt to a
certificate that holds only the public key (empty issuer, serial 0), AES-256-CBC, RSA PKCS#1 v1.5.
Debian's eyaml is 3.3, which addresses tokens to its certificate; this builds the other kind."""

from __future__ import annotations

import base64
import os

from asn1crypto import algos, cms, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import load_pem_public_key


def public_key(pem: bytes) -> rsa.RSAPublicKey:
    """The RSA key of a certificate (eyaml's public_key.pkcs7.pem) or of a bare public key."""
    key = (cx509.load_pem_x509_certificate(pem).public_key() if b"CERTIFICATE" in pem
           else load_pem_public_key(pem))
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def bare_key_token(plaintext: bytes, pem: bytes) -> str:
    """The token eyaml 4.1+ writes for ``plaintext`` (its recipient: issuer empty, serial 0)."""
    content_key, iv = os.urandom(32), os.urandom(16)
    padder = sym_padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(plaintext) + padder.finalize()) + \
        encryptor.finalize()
    recipient = cms.KeyTransRecipientInfo({
        "version": "v0",
        "rid": cms.RecipientIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber(
            {"issuer": x509.Name.build({}), "serial_number": 0})}),
        "key_encryption_algorithm": cms.KeyEncryptionAlgorithm({"algorithm": "rsaes_pkcs1v15"}),
        "encrypted_key": public_key(pem).encrypt(content_key, padding.PKCS1v15()),
    })
    envelope = cms.EnvelopedData({
        "version": "v0",
        "recipient_infos": [cms.RecipientInfo({"ktri": recipient})],
        "encrypted_content_info": cms.EncryptedContentInfo({
            "content_type": "data",
            "content_encryption_algorithm": algos.EncryptionAlgorithm(
                {"algorithm": "aes256_cbc", "parameters": iv}),
            "encrypted_content": ciphertext,
        }),
    })
    info = cms.ContentInfo({"content_type": "enveloped_data", "content": envelope})
    return "ENC[PKCS7," + base64.b64encode(info.dump()).decode() + "]"
