"""``import yaml`` without its start-up regular expression: a seventh of a full render's imports.

PyYAML's pure-Python ``Reader`` compiles ``NON_PRINTABLE``, a negated class over the whole of
Unicode, when the module is imported (7 ms: ``re`` builds a 64 K-entry map for it), although the
libyaml loader render uses never runs it. The same set written as the short list of what it
excludes compiles in a tenth of the time; it is put in ``re``'s cache under PyYAML's own pattern
text, so PyYAML gets a pattern that matches exactly the same characters (tests/test_yamlimport.py
checks every code point). Another PyYAML whose text differs simply compiles its own.
"""

from __future__ import annotations

import re
import sys

# PyYAML's yaml/reader.py, character for character, and its complement.
READER_PATTERN = "[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010ffff]"
EXCLUDED = "[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x84\x86-\x9F\uD800-\uDFFF\uFFFE\uFFFF]"


def _seed() -> None:
    cache = getattr(re, "_cache", None)
    if "yaml" not in sys.modules and isinstance(cache, dict):
        cache.setdefault((str, READER_PATTERN, 0), re.compile(EXCLUDED))


_seed()

import yaml  # noqa: E402 - after the seed, on purpose

__all__ = ["yaml"]
