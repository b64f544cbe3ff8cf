"""Secret masking for diffs, reports and logs.

Nobody among the peer tools prints a redacted unified diff (see LESSONS.md); render does. A value is
masked as ``<redacted>#<8 hex>``: the hex is an HMAC-SHA256 of the value under a per-host key kept
in the state dir, so a reader sees *that* a secret changed without a log ever holding something a
weak password could be brute-forced from offline.

A value is secret when
1. hieradata marks its key ``convert_to: Sensitive`` (the Puppet way): every occurrence of that
   value is masked wherever it appears, or
2. its option name matches SECRET_PATTERNS (matched against ``section.option``, lower case) and not
   NOT_SECRET. For URL options (``connection``, ``transport_url``, ``*_url``) only the password in
   the URL is masked, so a changed host stays readable.
Passwords inside any ``scheme://user:password@host`` are masked on every line, whatever the key.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable

REDACTED = "<redacted>"

SECRET_PATTERNS: tuple[str, ...] = (
    r"pass(word|wd|phrase)?$",       # password, admin_password, rabbit_pass, passwd
    r"secret",                       # secret, metadata_proxy_shared_secret, secret_key
    r"(^|[._])(private_|auth_|api_)?keys?$",  # key, memcache_secret_key, auth_key, api_key
    r"(^|[._])tokens?($|[._])",      # admin_token, token, and the whole [token] section ...
    r"credential",
    r"(^|[._])connection$",          # [database] connection, slave_connection
    r"(^|[._])transport_url$",
    r"(^|[._])[a-z0-9]*_?url$",      # any URL: only credentials inside it are masked
)

# ... except the options that only look secret.
NOT_SECRET: tuple[str, ...] = (
    "token.provider", "token.expiration", "token.caching", "token.cache_time",
    "token.cache_on_issue", "token.revoke_by_id", "token.allow_expired_window",
    "token.allow_rescope_scoped_token", "token.infer_roles", "token.enforce_token_bind",
    "*.token_cache_time", "*.service_token_roles", "*.service_token_roles_required",
    "*.send_service_user_token", "*.key_repository", "*.max_active_keys", "*.max_token_size",
)

_SECRET_RE = re.compile("|".join(f"(?:{p})" for p in SECRET_PATTERNS))
_URL_OPTION_RE = re.compile(r"(connection|url)$")
_SECTION_RE = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_ASSIGN_RE = re.compile(
    r"""^(?P<pre>\s*["']?)(?P<key>[A-Za-z0-9_.\-]+)(?P<sep>["']?\s*[=:]\s*["']?)"""
    r"""(?P<value>.*?)(?P<post>["']?\s*,?\s*)$""")
# scheme://user:password@ and, for multi-host transport URLs, the greedy span up to the last '@'.
_URL_CREDS_RE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^\s]*)@")
_MIN_SUBSTRING = 4


def is_secret_option(section: str | None, option: str) -> bool:
    qualified = f"{(section or 'default').lower()}.{option.lower()}"
    if not _SECRET_RE.search(qualified):
        return False
    return not any(fnmatch.fnmatchcase(qualified, pattern) for pattern in NOT_SECRET)


class Masker:
    """Masks known secret values and secret-looking options, line by line."""

    def __init__(self, key: bytes, values: Iterable[str] = ()) -> None:
        self._key = key
        self._values: set[str] = set()
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        self._values.update(v for v in values if v)
        self._by_length = sorted(self._values, key=len, reverse=True)

    def tag(self, value: str) -> str:
        import hashlib  # loading OpenSSL is only worth it when there is something to mask
        import hmac

        digest = hmac.new(self._key, value.encode("utf-8", "surrogateescape"), hashlib.sha256)
        return f"{REDACTED}#{digest.hexdigest()[:8]}"

    def _mask_url(self, text: str, tag: Callable[[str], str]) -> str:
        return _URL_CREDS_RE.sub(lambda m: f"{m['head']}{tag(m['pw'])}@", text)

    def _mask_known(self, text: str, tag: Callable[[str], str]) -> str:
        for value in self._by_length:
            if len(value) >= _MIN_SUBSTRING and value in text:
                text = text.replace(value, tag(value))
        return text

    def mask_line(self, line: str, section: str | None = None,
                  tag: Callable[[str], str] | None = None) -> str:
        tag = tag or self.tag
        match = _ASSIGN_RE.match(line)
        if match and match["value"]:
            key, value = match["key"], match["value"]
            if value in self._values:
                masked = tag(value)  # short Sensitive values are caught here only
            elif not is_secret_option(section, key):
                masked = value
            elif _URL_OPTION_RE.search(key.lower()):
                # only the password inside a URL is secret; a URL without one stays readable
                masked = self._mask_url(value, tag) if "://" in value else value
            else:
                masked = tag(value)
            line = line[:match.start("value")] + masked + line[match.end("value"):]
        return self._mask_known(self._mask_url(line, tag), tag)

    def mask_lines(self, lines: Iterable[str],
                   tag: Callable[[str], str] | None = None) -> list[str]:
        """Mask every line, tracking ``[section]`` headers so options are judged in context."""
        section: str | None = None
        masked = []
        for line in lines:
            header = _SECTION_RE.match(line)
            if header:
                section = header.group(1).strip()
            masked.append(self.mask_line(line, section, tag))
        return masked

    def holds_secret(self, text: str) -> bool:
        """True when masking would hide something: such a new file defaults to mode 0640."""
        lines = text.splitlines(keepends=True)
        return self.mask_lines(lines, tag=lambda value: "\0") != lines
