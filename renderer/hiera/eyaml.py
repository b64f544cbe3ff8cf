"""``lookup_key: eyaml_lookup_key``: hiera-eyaml's tokens, decrypted as Puppet's function does.

Puppet reads the level's whole YAML file, then decrypts only the key being looked up: a file whose
other keys hold tokens for a key nobody has needs no private key. Each string of the value (not
the hash keys) that matches ``.*ENC\\[.*?\\]`` (on one line) is cut into tokens with the gem's
hiera parser (``ENC[(\\w+,)?[A-Za-z0-9+/ =\\n]+?]``, the whitespace then dropped), every token is
replaced by its plaintext, the whole string loses one trailing newline (Ruby's ``chomp``), and
only then is it interpolated. The scheme defaults to PKCS7.

Options, as hiera-eyaml 4.x/5.x reads them for a lookup (no CLI defaults, no ``EYAML_CONFIG``:
those are the ``eyaml`` command's): ``pkcs7_private_key_env_var`` (the PEM in that variable),
then ``pkcs7_b64_private_key_env_var`` (base64 of the PEM), then ``pkcs7_private_key`` (a file);
``pkcs7_public_key`` is only needed to encrypt. ``ENC[GPG,...]`` (the hiera-eyaml-gpg plugin):
the ``gpg`` command with ``$HIERA_EYAML_GPG_GNUPGHOME``, else ``gpg_gnupghome``, which must be
an existing directory (in a lookup the plugin has no default home).

``render preview`` sets ``Hiera.sealed``: a token it cannot decrypt (no key on a CI runner)
renders as a placeholder derived from its ciphertext, so two revisions compare without the
plaintext and without printing the token.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import subprocess
from typing import Any

_ENCRYPTED = re.compile(r"ENC\[[^\n]*?\]")  # the function's `encrypted?`: Ruby's `.` stops at \n
_TOKEN = re.compile(r"ENC\[(\w+,)?([a-zA-Z0-9+/ =\n]+?)\]", re.ASCII)
_WHITESPACE = re.compile(r"[ \t\r\n\f\v]")
_STRING_TOKEN = re.compile(r"ENC\[(\w+,)?([a-zA-Z0-9+/=]+?)\]", re.ASCII)
DEFAULT_SCHEME = "PKCS7"
SEALED_PREFIX = "eyaml-sealed-"  # renderer.preview finds the placeholders by it


class EyamlError(Exception):
    """Why a value cannot be decrypted; the caller names the key, file and level."""


def decrypt_value(value: Any, options: dict[str, Any], secrets: list[str],
                  sealed: set[str] | None = None) -> Any:
    """``value`` with every token of its strings decrypted (hash keys are left as they are);
    each plaintext is appended to ``secrets``. ``sealed`` (render preview): a token that cannot
    be decrypted becomes a placeholder (``sealed_placeholder``) instead of an error."""
    kind = type(value)
    if kind is str:
        return decrypt_string(value, options, secrets, sealed) if _ENCRYPTED.search(value) \
            else value
    if kind is list:
        return [decrypt_value(item, options, secrets, sealed) for item in value]
    if kind is dict:
        return {k: decrypt_value(v, options, secrets, sealed) for k, v in value.items()}
    return value


def sealed_placeholder(scheme: str, cipher: str) -> str:
    """What an undecryptable token renders as in a preview: the same for the same ciphertext,
    another for another, and never the ciphertext itself (a digest of it, masked too)."""
    import hashlib

    digest = hashlib.sha256(f"{scheme.upper()},{cipher}".encode()).hexdigest()
    return f"{SEALED_PREFIX}{digest[:16]}"


def decrypt_string(text: str, options: dict[str, Any], secrets: list[str],
                   sealed: set[str] | None = None) -> str:
    parts: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        parts.append(text[position:match.start()])
        position = match.end()
        token = _STRING_TOKEN.fullmatch(_WHITESPACE.sub("", match.group()))
        if token is None:  # cannot happen: the class is the hiera one minus whitespace
            raise EyamlError("malformed ENC token")
        scheme = token.group(1)[:-1] if token.group(1) else DEFAULT_SCHEME
        try:
            plain = decrypt_token(scheme, token.group(2), options)
        except EyamlError:
            if sealed is None:
                raise
            plain = sealed_placeholder(scheme, token.group(2))
            sealed.add(plain)
        secrets.append(plain)
        parts.append(plain)
    parts.append(text[position:])
    return _chomp("".join(parts))


def _chomp(text: str) -> str:
    for ending in ("\r\n", "\n", "\r"):
        if text.endswith(ending):
            return text[:-len(ending)]
    return text


def _decode64(text: str) -> bytes:
    """Ruby's lenient ``Base64.decode64``: padding may be missing."""
    try:
        return base64.b64decode(text + "=" * (-len(text.rstrip("=")) % 4), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise EyamlError(f"the token is not base64: {exc}") from None


def decrypt_token(scheme: str, cipher: str, options: dict[str, Any]) -> str:
    scheme_name = scheme.upper()
    if scheme_name == "PKCS7":
        from renderer.hiera import pkcs7

        try:
            plain = pkcs7.decrypt(_decode64(cipher), private_key_pem(options))
        except pkcs7.Pkcs7Error as exc:
            raise EyamlError(f"PKCS7: {exc}") from None
    elif scheme_name == "GPG":
        plain = gpg_decrypt(_decode64(cipher), options)
    else:
        raise EyamlError(f"Could not find hiera-eyaml encryptor: {scheme}")
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise EyamlError(f"{scheme}: the plaintext is not UTF-8") from None


def _option(options: dict[str, Any], name: str) -> str | None:
    value = options.get(name)
    return None if value is None or value is False else str(value)


def private_key_pem(options: dict[str, Any]) -> bytes:
    """The PEM of the level's private key, from where hiera-eyaml's PKCS7 encryptor reads it."""
    env_var = _option(options, "pkcs7_private_key_env_var")
    b64_env_var = _option(options, "pkcs7_b64_private_key_env_var")
    path = _option(options, "pkcs7_private_key")
    if env_var:
        if env_var not in os.environ:
            raise EyamlError(f"PKCS7: env {env_var} is not set")
        return os.environ[env_var].encode()
    if b64_env_var:
        if b64_env_var not in os.environ:
            raise EyamlError(f"PKCS7: env {b64_env_var} is not set")
        return _decode64(os.environ[b64_env_var])
    if not path:
        raise EyamlError("PKCS7: pkcs7_private_key is not defined")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise EyamlError(f"PKCS7: file {path} does not exist") from None
    except OSError as exc:
        raise EyamlError(f"PKCS7: file {path}: {exc.strerror}") from None


def gpg_decrypt(data: bytes, options: dict[str, Any]) -> bytes:
    """``gpg --decrypt`` in the plugin's GNUPGHOME; never asks for a passphrase (a lookup
    cannot answer one)."""
    home = os.environ.get("HIERA_EYAML_GPG_GNUPGHOME") or _option(options, "gpg_gnupghome")
    if not home:
        raise EyamlError("GPG: No GPG home directory configured, check gpg_gnupghome "
                         "configuration value is correct")
    if not os.path.isdir(home):
        raise EyamlError(f"GPG: Configured GPG home directory {home} doesn't exist, check "
                         "gpg_gnupghome configuration value is correct")
    command = ["gpg", "--batch", "--quiet", "--no-tty", "--pinentry-mode", "error",
               "--homedir", home]
    try:
        done = subprocess.run([*command, "--decrypt"], input=data, capture_output=True,
                              timeout=300, check=False)
    except FileNotFoundError:
        raise EyamlError("GPG: the gpg command is not installed") from None
    except subprocess.TimeoutExpired:
        raise EyamlError("GPG: gpg did not answer in 300 s") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        raise EyamlError(f"GPG: failed to decrypt (check gpg_gnupghome and that its key is a "
                         f"recipient): {reason}")
    return done.stdout


def level_value(hiera: Any, inv: Any, location: Any, key: str, value: Any) -> tuple[Any, bool]:
    """The value of ``key`` in an eyaml level's file, decrypted (before interpolation), and
    whether a token was decrypted. Decrypted once per run; a failure is a HieraDataError naming
    the key, the level and the file, never the token."""
    from renderer.errors import HieraDataError
    from renderer.hiera.interpolate import interpolate

    options = interpolate(location.eyaml, inv, False)
    cache_key = (location.path, key, repr(sorted(options.items(), key=repr)))
    cached = hiera.decrypted.get(cache_key)
    if cached is None:
        secrets: list[str] = []
        try:
            cached = (decrypt_value(value, options, secrets, hiera.sealed), bool(secrets))
        except EyamlError as exc:
            raise HieraDataError(f"key '{key}' in hierarchy '{location.level}' cannot be "
                                 f"decrypted: {exc}", path=location.path) from None
        hiera.secrets.update(secrets)
        hiera.decrypted[cache_key] = cached
    return cached
