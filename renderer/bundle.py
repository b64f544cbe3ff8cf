"""Bundles: every lookup a node's services make, resolved on the Puppet server, for an agent node
that has neither the hieradata nor the eyaml key.

``render bundle SERVICE...`` (renderer.bundle_command; run by the Puppet function
``render::bundle`` while the server compiles the node's catalog, with the node's ``$facts`` and
``$trusted``) drives each service through the run's own steps (bind, render, override) on a
``Capture``: the recorder of ``render show`` that also keeps every answer as the pipeline asked
for it, keyed by what the caller passed (key, merge argument, the scope's ``machine``),
``lookup_options`` and ``keys_with_prefix`` included. ``render --bundle FILE`` on the node
answers the same questions from the file (``BundleHiera`` stands in for ``Hiera``), so the node
renders exactly what the server resolved; a question the bundle lacks fails its service in one
line that says to run Puppet again.

Values keep Ruby's shapes and their Sensitive wrappers at any depth: a list is ``{"a": [...]}``,
a hash ``{"h": [[key, value], ...]}`` (keys need not be strings), a Sensitive ``{"s": value}``, a
Symbol ``{"y": name}``; scalars are themselves. ``--encrypt-to CERT`` wraps the whole document in
a CMS envelope (AES-256-CBC, RSA key transport, ``openssl cms``) to the agent's certificate, so
the catalog, PuppetDB and the file hold only ciphertext; the node opens it with its Puppet
private key (``--bundle-key``). The file is trusted like the state dir: root-owned, no group or
other access, not a symlink, at most ``MAX_BUNDLE`` bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

from renderer.errors import LookupNotFound, RenderError
from renderer.hiera import NOT_GIVEN, Sensitive
from renderer.recorder import Recorder
from renderer.scope import Scope

FORMAT = "render-bundle"
VERSION = 1
MAX_BUNDLE = 16 << 20
PEM = b"-----BEGIN "
AGAIN = "run Puppet again (puppet agent --test) to refresh it"


class BundleError(RenderError):
    """The bundle cannot be read, or cannot answer a lookup."""


# --- values ---------------------------------------------------------------------------------------

def encode(value: Any) -> Any:
    """A Hiera value as tagged JSON (see the module docstring)."""
    from renderer.hiera.psych import Symbol

    if isinstance(value, Sensitive):
        return {"s": encode(value.value)}
    if isinstance(value, dict):
        return {"h": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"a": [encode(v) for v in value]}
    if isinstance(value, Symbol):
        return {"y": str(value.name)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise BundleError(f"cannot put a {type(value).__name__} value in a bundle")


def decode(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    (tag, inner), = data.items()
    if tag == "s":
        return Sensitive(decode(inner))
    if tag == "h":
        return {_hashable(decode(k)): decode(v) for k, v in inner}
    if tag == "a":
        return [decode(v) for v in inner]
    from renderer.hiera.psych import Symbol

    return Symbol(inner)


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def sensitive_leaves(value: Any, secrets: Any) -> Any:
    """``value`` with each scalar that holds one of ``secrets`` wrapped in Sensitive."""
    if isinstance(value, Sensitive) or value is None or isinstance(value, bool):
        return value
    if isinstance(value, dict):
        return {k: sensitive_leaves(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sensitive_leaves(v, secrets) for v in value]
    text = str(value)
    return Sensitive(value) if any(secret and secret in text for secret in secrets) else value


def answer_key(kind: str, key: str, merge: Any, scope: Scope) -> str:
    """What a question is: its kind, the key, the merge as the caller passed it, and the scope's
    ``machine`` (the only variable that differs between a service's lookups)."""
    return json.dumps([kind, key, merge, scope.variables.get("machine")], sort_keys=True)


# --- the server side ------------------------------------------------------------------------------

_ABSENT: Any = object()


class Capture(Recorder):
    """The recorder of ``render show``, keeping every answer the pipeline was given."""

    def __init__(self, hiera: Any) -> None:
        super().__init__(hiera)
        self.answers: dict[str, dict[str, Any]] = {}

    def lookup(self, key: str, scope: Scope, merge: str | dict[Any, Any] | None = None,
               default: Any = NOT_GIVEN, *, explain: Any = None) -> Any:
        name = answer_key("lookup", key, merge, scope)
        try:
            value = super().lookup(key, scope, merge=merge, default=_ABSENT, explain=explain)
        except RenderError as exc:  # a data error: the node fails with the same line
            from renderer.masking import Masker

            self.answers[name] = {"error": Masker(b"").mask_text(exc.message), "path": exc.path,
                                  "line": exc.line, "column": exc.column}
            raise
        if value is _ABSENT:
            self.answers[name] = {"found": False}
            if default is NOT_GIVEN:
                raise LookupNotFound(key)
            return default
        stored = value
        if getattr(self.hiera, "last_secret", False):
            # an eyaml plaintext or a command backend's value: Sensitive on the node too, leaf by
            # leaf, so the node masks what the server masks (not the plain items beside it)
            stored = sensitive_leaves(value, getattr(self.hiera, "secrets", ()))
        self.answers[name] = {"found": True, "value": encode(stored)}
        return value

    def lookup_options(self, key: str, scope: Scope) -> dict[Any, Any]:
        value = super().lookup_options(key, scope)
        self.answers[answer_key("options", key, None, scope)] = {"value": encode(value)}
        return value

    def keys_with_prefix(self, prefix: str, scope: Scope) -> list[str]:
        keys = super().keys_with_prefix(prefix, scope)
        self.answers[answer_key("prefix", prefix, None, scope)] = {"value": list(keys)}
        return keys


def data_digest(directory: Path) -> str:
    """sha256 over the hieradata tree (relative names and contents): which data made it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and not p.is_symlink()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def encrypt(text: bytes, certificate: str) -> bytes:
    """``text`` in a PEM CMS envelope to ``certificate`` (AES-256-CBC, RSA key transport)."""
    return _openssl(["cms", "-encrypt", "-aes256", "-binary", "-outform", "PEM", certificate],
                    text, certificate)


def decrypt(envelope: bytes, key: str) -> bytes:
    """The interface a pure-Python PKCS7 decryption (asn1crypto) can take over."""
    return _openssl(["cms", "-decrypt", "-inform", "PEM", "-binary", "-inkey", key],
                    envelope, key)


def _openssl(args: list[str], data: bytes, path: str) -> bytes:
    try:
        done = subprocess.run(["openssl", *args], input=data, capture_output=True, check=False,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BundleError(f"openssl {args[1]} failed: {exc}", path=path) from exc
    if done.returncode != 0:
        reason = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["?"])[0]
        raise BundleError(f"openssl {args[1]} failed: {reason[:200]}", path=path)
    return done.stdout


# --- the node side --------------------------------------------------------------------------------

def read_trusted(path: Path) -> bytes:
    """The file's bytes if root (or this user) owns it, nobody else may read or write it, it is
    no symlink and no larger than MAX_BUNDLE."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        why = "a symlink; refusing it" if exc.errno == 40 else exc.strerror
        raise BundleError(f"cannot read the bundle: {why}", path=path) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BundleError("the bundle is not a regular file", path=path)
        if st.st_uid not in (0, os.geteuid()):
            raise BundleError(f"the bundle is owned by uid {st.st_uid}, not root", path=path)
        if st.st_mode & 0o077:
            raise BundleError(f"the bundle has mode {stat.S_IMODE(st.st_mode):04o}: others may "
                              "read or change it (want 0600)", path=path)
        from renderer.bounds import read_bounded, size_text

        data = read_bounded(fd, st.st_size, MAX_BUNDLE)
        if data is None:
            raise BundleError(f"the bundle is larger than {size_text(MAX_BUNDLE)}", path=path)
        return data
    finally:
        os.close(fd)


def load(path: Path, key: str | None) -> dict[str, Any]:
    from renderer import manifest

    manifest.note(path)  # the fast path answers only while the bundle (and its key) stand still
    data = read_trusted(path)
    encrypted = data.startswith(PEM)
    if encrypted and key:
        manifest.note(key)
    if encrypted:
        if not key:
            raise BundleError("the bundle is encrypted: give --bundle-key (this node's Puppet "
                              "private key, `puppet config print hostprivkey`)", path=path)
        data = decrypt(data, key)
    try:
        document = json.loads(data)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        if encrypted:
            # RSA PKCS#1 v1.5: openssl answers a wrong key with a random content key (its
            # defence against padding oracles), so a wrong key mostly fails in openssl and
            # sometimes yields bytes that are no JSON
            raise BundleError(f"the bundle does not open with --bundle-key {key} (openssl "
                              "decrypted no bundle: another node's key?)", path=path) from exc
        raise BundleError(f"not a bundle (bad JSON: {getattr(exc, 'msg', exc)})",
                          path=path) from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT \
            or document.get("version") != VERSION or not isinstance(document.get("services"),
                                                                     dict):
        raise BundleError(f"not a version {VERSION} render bundle", path=path)
    return document


class BundleHiera:
    """The Hiera face the pipeline uses, answered from a bundle; the scope's ``service``
    variable says whose answers."""

    def __init__(self, document: dict[str, Any], path: Path) -> None:
        self.services = document["services"]
        self.path = path
        self.made_by = document.get("render")

    def _answer(self, kind: str, key: str, merge: Any, scope: Scope) -> dict[str, Any]:
        service = str(scope.variables.get("service"))
        entry = self.services.get(service)
        if not isinstance(entry, dict) or not isinstance(entry.get("answers"), dict):
            raise BundleError(f"the bundle has no answers for service {service}: {AGAIN}",
                              path=self.path)
        answer = entry["answers"].get(answer_key(kind, key, merge, scope))
        if not isinstance(answer, dict):
            what = {"lookup": "a lookup of", "options": "the lookup_options of",
                    "prefix": "the keys starting with"}[kind]
            merge_text = f" (merge {json.dumps(merge)})" if merge is not None else ""
            raise BundleError(f"the bundle has no answer to {what} '{key}'{merge_text} for "
                              f"service {service}{self._versions()}: {AGAIN}", path=self.path)
        if "error" in answer:
            raise BundleError(str(answer["error"]), path=answer.get("path"),
                              line=answer.get("line"), column=answer.get("column"))
        return answer

    def _versions(self) -> str:
        from renderer import __version__

        if self.made_by == __version__:
            return ""
        return f" (the bundle was made by render {self.made_by}, this is {__version__})"

    def lookup(self, key: str, scope: Scope, merge: str | dict[Any, Any] | None = None,
               default: Any = NOT_GIVEN, *, explain: Any = None) -> Any:
        answer = self._answer("lookup", key, merge, scope)
        if answer.get("found"):
            return decode(answer.get("value"))
        if default is NOT_GIVEN:
            raise LookupNotFound(key)
        return default

    def lookup_options(self, key: str, scope: Scope) -> dict[Any, Any]:
        value = decode(self._answer("options", key, None, scope).get("value"))
        return value if isinstance(value, dict) else {}

    def keys_with_prefix(self, prefix: str, scope: Scope) -> list[str]:
        return [str(k) for k in self._answer("prefix", prefix, None, scope).get("value", [])]
