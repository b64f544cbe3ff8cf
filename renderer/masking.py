"""Secret masking for diffs, reports and logs.

Nobody among the peer tools prints a redacted unified diff (see LESSONS.md); render does. A value is
masked as ``<redacted>#<8 hex>``: the hex is an HMAC-SHA256 of the value under a per-host key kept
in the state dir, so a reader sees *that* a secret changed without a log ever holding something a
weak password could be brute-forced from offline.

A value is secret when
1. hieradata marks its key ``convert_to: Sensitive`` (the Puppet way): every occurrence of that
   value is masked wherever it appears. A multi-line value (a PEM key) is known line by line: a
   line carrying one of its lines (at least ``_MIN_FRAGMENT`` characters, PEM armour excepted) is
   masked whole;
2. its option name matches SECRET_PATTERNS (matched against ``section.option``, lower case) and not
   NOT_SECRET. For URL options (``connection``, ``transport_url``, ``*_url``) only the password in
   the URL is masked, so a changed host stays readable;
3. it is the value of an option that is secret in the new file, recorded as secret by the last run
   (the state keeps the names, never the values), or declared in service.yaml
   (``secret_options``), on *both* sides of a diff: the old value of a rotated secret is not known
   to the masker, its option is. ``secret: true`` masks every value of the file.
Passwords inside any ``scheme://user:password@host`` are masked on every line, whatever the key.

An option's name (``option_name``) is ``section.option`` in lower case for ``key = value`` and
``key: value`` lines (``default`` before any ``[section]``); for other lines its first word, and
the second when that is a plain word (haproxy's ``stats auth``); a line of one word (a line of a
PEM key, an indented continuation) is named ``section.+``: every such line of the section shares
the name, so a rotated key that changed length or armour is still masked whole.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

REDACTED = "<redacted>"

SECRET_PATTERNS: tuple[str, ...] = (
    r"pass(word|wd|phrase)?$",       # password, admin_password, rabbit_pass, passwd
    r"secret",                       # secret, metadata_proxy_shared_secret, secret_key
    r"(^|[._])(private_|auth_|api_)?keys?$",  # key, memcache_secret_key, auth_key, api_key
    r"(^|[._])tokens?($|[._])",      # admin_token, token, and the whole [token] section ...
    r"credential",
    r"_auth$",                       # wsrep_sst_auth (user:password), sasl_auth, ...
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
    # limits and feature switches named after what they limit or enable
    "*.max_*", "*.enabled_*",
    # auth_* options that name a mechanism or a place, never a credential
    "*.auth_url", "*.auth_type", "*.auth_strategy", "*.auth_version", "*.auth_section",
    "*.auth_uri", "*.auth_protocol", "*.auth_host", "*.auth_port", "*.auth_plugin",
    "*.auth_method", "*.auth_methods", "*.auth_mechanism", "*.auth_mechanisms",
    "*.www_authenticate_uri", "*.use_auth", "*.no_auth", "*.skip_auth", "*.require_auth",
)

_SECRET_RE = re.compile("|".join(f"(?:{p})" for p in SECRET_PATTERNS))
_URL_OPTION_RE = re.compile(r"(connection|url)$")
_SECTION_RE = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_ASSIGN_RE = re.compile(
    r"""^(?P<pre>\s*["']?)(?P<key>[A-Za-z0-9_.\-]+)(?P<sep>["']?\s*[=:]\s*["']?)"""
    r"""(?P<value>.*?)(?P<post>["']?\s*,?\s*)$""")
# scheme://user:password@ and, for multi-host transport URLs, the greedy span up to the last '@'.
_URL_CREDS_RE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^\s]*)@")
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z_-]*\Z")
_ARMOUR_RE = re.compile(r"-----(BEGIN|END) [A-Z0-9 ]+-----\Z")
MIN_SUBSTRING = 4
_MIN_FRAGMENT = 12  # a line of a multi-line secret shorter than this is not looked for alone




def _not_secret_matchers() -> tuple[frozenset[str], tuple[str, ...], tuple[str, ...],
                                    tuple[str, ...]]:
    """NOT_SECRET split by shape: exact names, ``*suffix``, ``*middle*``, and the patterns of
    any other shape (matched with fnmatch). The same answers as fnmatchcase on every pattern,
    without compiling 38 regular expressions at every start (a tenth of a full render)."""
    exact, suffixes, middles, other = set(), [], [], []
    for pattern in NOT_SECRET:
        if "[" in pattern or "?" in pattern:
            other.append(pattern)
        elif "*" not in pattern:
            exact.add(pattern)
        elif pattern.count("*") == 1 and pattern.startswith("*"):
            suffixes.append(pattern[1:])
        elif pattern.count("*") == 2 and pattern.startswith("*") and pattern.endswith("*"):
            middles.append(pattern[1:-1])
        else:
            other.append(pattern)
    return frozenset(exact), tuple(suffixes), tuple(middles), tuple(other)


_NOT_EXACT, _NOT_SUFFIXES, _NOT_MIDDLES, _NOT_OTHER = _not_secret_matchers()


def is_secret_option(section: str | None, option: str) -> bool:
    return _is_secret(f"{(section or 'default').lower()}.{option.lower()}")


@functools.lru_cache(maxsize=4096)
def _is_secret(qualified: str) -> bool:
    """Memoised: a host of 1,000 services asks about the same few hundred option names."""
    if not _SECRET_RE.search(qualified):
        return False
    return not (qualified in _NOT_EXACT or qualified.endswith(_NOT_SUFFIXES)
                or any(middle in qualified for middle in _NOT_MIDDLES)
                or (_NOT_OTHER and _fnmatch_any(qualified, _NOT_OTHER)))


def _fnmatch_any(name: str, patterns: tuple[str, ...]) -> bool:
    import fnmatch

    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def secret_strings(value: Any) -> list[str]:
    """Every scalar inside a (Sensitive) value, as it would appear in text."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*secret_strings(k), *secret_strings(v))]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in secret_strings(item)]
    if value is None or isinstance(value, bool):
        return []
    return [str(value)]


def option_name(line: str, section: str | None) -> str | None:
    """The stable name of the option a line sets (see the module docstring); None for a blank
    line or a section header."""
    where = (section or "default").lower()
    match = _ASSIGN_RE.match(line)
    if match and match["value"].strip("="):  # not a base64 line's padding
        return f"{where}.{match['key'].lower()}"
    words = line.split()
    if not words or _SECTION_RE.match(line):
        return None
    if len(words) == 1:
        return f"{where}.+"
    if _WORD_RE.match(words[1]):
        return f"{where}.{words[0].lower()} {words[1].lower()}"
    return f"{where}.{words[0].lower()}"


def declared(names: Iterable[str], name: str | None) -> bool:
    """Whether ``name`` (``section.option``) is among ``names``; a name without a section
    (``kek``) stands for that option in every section."""
    if name is None:
        return False
    option = name.split(".", 1)[1]
    return any(n == name or n == option for n in names)


class Masker:
    """Masks known secret values and secret-looking options, line by line."""

    def __init__(self, key: bytes, values: Iterable[str] = ()) -> None:
        self._key = key
        self._values: set[str] = set()
        self._fragments: set[str] = set()
        self._short: set[str] = set()
        # known values of at least MIN_SUBSTRING characters by their first MIN_SUBSTRING: a
        # line is scanned once, whatever the number of secrets (a host of 1,000 services has
        # thousands), and adding a service's secrets costs only those secrets
        # (the lengths of those values, so a shared prefix costs a set lookup per length)
        self._by_prefix: dict[str, set[int]] = {}
        self.learned: list[str] | None = None  # set: new values are also kept here, in order
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        for value in values:
            if not value:
                continue
            if value in self._values:
                continue
            self._values.add(value)
            if self.learned is not None:
                self.learned.append(value)  # a planning worker sends them back (renderer.fanout)
            if len(value) >= MIN_SUBSTRING:
                self._by_prefix.setdefault(value[:MIN_SUBSTRING], set()).add(len(value))
            if "\n" in value or "\r" in value:
                for part in value.splitlines():
                    part = part.strip()
                    if len(part) >= _MIN_FRAGMENT and not _ARMOUR_RE.match(part):
                        self._fragments.add(part)
                    elif part and not _ARMOUR_RE.match(part):
                        self._short.add(part)  # masked where it is a whole line

    def tag(self, value: str) -> str:
        from renderer.digest import hmac_sha256

        digest = hmac_sha256(self._key, value.encode("utf-8", "surrogateescape"))
        return f"{REDACTED}#{digest.hex()[:8]}"

    def _mask_url(self, text: str, tag: Callable[[str], str]) -> str:
        return _URL_CREDS_RE.sub(lambda m: f"{m['head']}{tag(m['pw'])}@", text)

    def _mask_known(self, text: str, tag: Callable[[str], str]) -> str:
        """Every occurrence of a known value, the longest first (a secret that contains
        another is masked whole, never half), then the shorter ones in what is left."""
        index = self._by_prefix
        if not index:
            return text
        # the prefixes the text holds: its MIN_SUBSTRING-grams, built and intersected in C
        grams = set(map("".join, zip(*(text[i:] for i in range(MIN_SUBSTRING)))))
        hits = grams.intersection(index)
        if not hits:
            return text
        values = self._values
        found = []  # (-length, start, value) of every occurrence
        for prefix in hits:
            lengths = index[prefix]
            start = text.find(prefix)
            while start >= 0:
                for length in lengths:
                    value = text[start:start + length]
                    if value in values:
                        found.append((-length, start, value))
                start = text.find(prefix, start + 1)
        if not found:
            return text
        found.sort()
        taken: list[tuple[int, int, str]] = []
        for length, start, value in found:
            end = start - length
            if all(end <= s or start >= e for s, e, _ in taken):
                taken.append((start, end, value))
        taken.sort()
        parts, position = [], 0
        for start, end, value in taken:
            parts += [text[position:start], tag(value)]
            position = end
        parts.append(text[position:])
        return "".join(parts)

    def _mask_fragments(self, line: str, tag: Callable[[str], str]) -> str | None:
        """A line carrying a line of a multi-line secret, masked whole (indent and end kept)."""
        if line.strip() not in self._short and \
                not any(fragment in line for fragment in self._fragments):
            return None
        return _whole(line, tag)

    def mask_line(self, line: str, section: str | None = None,
                  tag: Callable[[str], str] | None = None, secret: bool = False) -> str:
        """One line; ``secret``: its option is secret whatever its value (both sides)."""
        tag = tag or self.tag
        if self._fragments or self._short:
            whole = self._mask_fragments(line, tag)
            if whole is not None:
                return whole
        match = _ASSIGN_RE.match(line)
        if match and match["value"]:
            key, value = match["key"], match["value"]
            # a URL with credentials keeps its host readable, whatever the option's name
            url_option = _URL_CREDS_RE.search(value) is not None
            if value in self._values:
                masked = tag(value)  # short Sensitive values are caught here only
            elif secret:
                masked = self._mask_url(value, tag) if url_option else tag(value)
            elif not secret and not is_secret_option(section, key):
                masked = value
            elif _URL_OPTION_RE.search(key.lower()):
                # only the password inside a URL is secret; a URL without one stays readable
                masked = self._mask_url(value, tag) if "://" in value else value
            else:
                masked = tag(value)
            line = line[:match.start("value")] + masked + line[match.end("value"):]
        elif secret and line.strip() and not _SECTION_RE.match(line):
            line = _after_name(line, tag)
        return self._mask_known(self._mask_url(line, tag), tag)

    def mask_text(self, text: str, tag: Callable[[str], str] | None = None) -> str:
        """A message (an error, a note, explain output): every line through mask_line; a line
        of a multi-line secret is masked where it stands, so the rest of the message reads."""
        if not text:
            return text
        tag = tag or self.tag
        for fragment in sorted(self._fragments, key=len, reverse=True):
            if fragment in text:
                text = text.replace(fragment, tag(fragment))
        return "".join(self.mask_line(line, None, tag) for line in text.splitlines(keepends=True))

    def mask_lines(self, lines: Iterable[str], tag: Callable[[str], str] | None = None,
                   names: Iterable[str] = (), whole: bool = False) -> list[str]:
        """Mask every line, tracking ``[section]`` headers so options are judged in context.

        ``names``: options secret whatever their value (on both sides of a diff); ``whole``: every
        value of the file is secret (``secret: true``)."""
        names = frozenset(names)
        section: str | None = None
        masked = []
        for line in lines:
            header = _SECTION_RE.match(line)
            if header:
                section = header.group(1).strip()
                masked.append(line)
                continue
            secret = whole or (bool(names) and declared(names, option_name(line, section)))
            masked.append(self.mask_line(line, section, tag, secret))
        return masked

    def secret_names(self, text: str, names: Iterable[str] = ()) -> frozenset[str]:
        """The options of ``text`` that hold a secret now, with those ``names`` declares (the
        state records them; never a value)."""
        section: str | None = None
        found = set()
        names = frozenset(names)

        def flag(value: str) -> str:
            return "\0"

        for line in text.splitlines(keepends=True):
            header = _SECTION_RE.match(line)
            if header:
                section = header.group(1).strip()
                continue
            name = option_name(line, section)
            if name is None:
                continue
            masked = self.mask_line(line, section, flag)
            if masked != line and option_name(masked, section) != name:
                name = f"{(section or 'default').lower()}.+"  # the name itself was secret
            if masked != line or declared(names, name):
                found.add(name)
        return frozenset(found)

    def holds_secret(self, text: str) -> bool:
        """True when masking would hide something: such a new file defaults to mode 0640."""
        return bool(self.secret_names(text))


def _whole(line: str, tag: Callable[[str], str]) -> str:
    body = line.rstrip("\r\n")
    stripped = body.strip()
    if not stripped:
        return line
    start = body.index(stripped)
    return body[:start] + tag(stripped) + line[len(body):]


def _after_name(line: str, tag: Callable[[str], str]) -> str:
    """A secret line that is not ``key = value``: its name (one or two words) stays."""
    body = line.rstrip("\r\n")
    words = body.split()
    keep = 2 if len(words) > 2 and _WORD_RE.match(words[1]) else 1
    if len(words) <= keep:
        return _whole(line, tag)
    match = re.match(r"\s*" + r"\s+".join(re.escape(w) for w in words[:keep]) + r"\s+", body)
    if match is None:
        return _whole(line, tag)
    return body[:match.end()] + tag(body[match.end():].rstrip()) + line[len(body.rstrip()):]
