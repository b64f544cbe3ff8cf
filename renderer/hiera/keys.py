"""Dotted keys: ``a.b.0`` and ``'"a.b".c'``, split and dug into as Puppet's ``SubLookup`` does.

The same rules serve lookup keys and ``%{facts.os.family}``: a segment of digits indexes an array
(and only an array), a quoted segment may contain dots, and digging into a string or a number is an
error rather than "not found".
"""

from __future__ import annotations

import re
from typing import Any, Callable

from renderer.errors import DigError
from renderer.hiera.ruby import STRIP, class_name

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__slots__": ()})()
"""No value for this key. ``None`` is a value (YAML ``~``), so "not found" needs its own marker."""

_SPECIAL = re.compile(r"['\".]")
_SEGMENTS = re.compile(r"([ \t\r\n\f\v]*\"[^\"]+\"[ \t\r\n\f\v]*|[ \t\r\n\f\v]*'[^']+'"
                       r"[ \t\r\n\f\v]*|[^'\".]+)")
_INTEGER = re.compile(r":?[+-]?[0-9]+")


def split_key(key: str, error: Callable[[str], Exception]) -> list[Any]:
    """Segments of ``key``; integers where a segment is all digits. ``error`` builds the failure."""
    if not _SPECIAL.search(key):
        return [key]
    parts = _SEGMENTS.split(key)
    while parts and parts[-1] == "":  # Ruby's String#split drops trailing empty fields
        parts.pop()
    if not parts or parts.pop(0) != "" or not parts:
        raise error("Syntax error")
    count = len(parts)
    segments = [part for part in parts if part != "."]
    if len(segments) * 2 != count + 1:
        raise error("Syntax error")
    result: list[Any] = []
    for segment in segments:
        segment = segment.strip(STRIP)
        if segment[:1] in ("'", '"'):
            result.append(segment[1:-1])
        elif _INTEGER.fullmatch(segment):
            result.append(0 if segment[0] == ":" else int(segment))  # Ruby ":5".to_i is 0
        else:
            result.append(segment)
    return result


def dig(key: str, segments: list[Any], value: Any) -> Any:
    """Follow ``segments`` into ``value``; MISSING when a hash key or array index is absent."""
    for segment in segments:
        if value is None:
            return MISSING
        if type(segment) is int and type(value) is list:
            if not 0 <= segment < len(value):
                return MISSING
        elif type(value) is dict:
            if segment not in value:
                return MISSING
        elif type(value) is int:  # Ruby: Integer has [] (a bit) but no include?
            raise DigError(f"undefined method `include?' for {value}:Integer (digging "
                           f"'{segment}' from key '{key}')")
        else:
            raise DigError(f"Data Provider type mismatch: Got {class_name(value)} when a "
                           f"hash-like object was expected to access value using '{segment}' "
                           f"from key '{key}'")
        value = value[segment]
    return value
