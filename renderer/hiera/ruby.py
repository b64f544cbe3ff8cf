"""Ruby value semantics that Hiera results depend on.

Puppet's Hiera is Ruby code, and several observable results come from Ruby itself rather than from
Hiera: ``%{x}`` formats a non-string with ``to_s`` (``["a", 1]``, ``{"a"=>1}``, ``1.0e+20``); array
merges de-duplicate with ``eql?`` (so ``1`` and ``1.0`` are different) but knock out with ``==``
(so they are the same); sorting fails on mixed types; lookup_options patterns are Ruby regexps
whose ``^`` and ``$`` match at every line. This module gives those rules to the rest of the package.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

from renderer.hiera.sensitive import REDACTED, Sensitive


class Symbol:
    """A Ruby Symbol (``:name``). Puppet turns Symbol keys into strings and rejects Symbol values
    (except ``:default``, its ``default`` value)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f":{self.name}"


class Rejected(Exception):
    """A scalar Psych's safe_load refuses (a date or a time, renderer.hiera.psych): Puppet
    cannot read the file.

    The message never quotes the scalar (the line and column say where it is): the file failed
    to load, so whether its key is Sensitive, and the masker's knowledge of it, are unknown."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.line = mark.line + 1 if mark else None
        self.column = mark.column + 1 if mark else None


class RubyArgumentError(ValueError):
    """What Ruby raises as ArgumentError (a failed comparison while sorting)."""


STRIP = " \t\n\v\f\r\0"
"""What ``String#strip`` removes at both ends: ASCII whitespace and NUL (``"\\0 a \\0".strip`` is
``"a"``). Puppet strips interpolation expressions and key segments with it."""

NUMBER_BLANKS = " \t\n\v\f\r"
"""What ``Kernel#Integer`` and ``Kernel#Float`` skip around a number: C's ``isspace``, which is
not NUL (``Integer("\\v12\\f")`` is 12, ``Integer("12\\0")`` an ArgumentError)."""


def truthy(value: Any) -> bool:
    """Ruby truthiness: only nil and false are false (``0``, ``""`` and ``[]`` are true)."""
    return value is not None and value is not False


def class_name(value: Any) -> str:
    if value is None:
        return "NilClass"
    if value is True:
        return "TrueClass"
    if value is False:
        return "FalseClass"
    return {str: "String", int: "Integer", float: "Float", list: "Array",
            dict: "Hash"}.get(type(value), type(value).__name__)


class FloatKey(float):
    """A Float that is a hash key. Ruby keeps ``1`` and ``1.0`` apart as keys (``eql?``), where
    Python would merge them into one entry; data files make their float keys FloatKeys."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash((FloatKey, float(self)))

    def __eq__(self, other: object) -> bool:
        return type(other) is FloatKey and float(self) == float(other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __str__(self) -> str:
        return float_to_s(self)


# --- equality ------------------------------------------------------------------------------------

def eql_key(value: Any) -> Any:
    """A hashable key that is equal for two values exactly when Ruby's ``eql?`` says so."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is FloatKey:
        return (kind, value)
    if kind is list:
        return (list, tuple(eql_key(item) for item in value))
    if kind is dict:
        return (dict, frozenset((eql_key(k), eql_key(v)) for k, v in value.items()))
    if kind is Sensitive:
        return (Sensitive, eql_key(value.value))
    return (kind, id(value)) if value is not None and kind is not bool else (kind, value)


def equal(left: Any, right: Any) -> bool:
    """Ruby ``==``: numbers compare by value across Integer and Float, nothing else converts."""
    if left is right:
        return True
    lkind, rkind = type(left), type(right)
    if lkind in (int, float) and rkind in (int, float):
        return left == right
    if lkind is not rkind:
        return False
    if lkind is list:
        return len(left) == len(right) and all(map(equal, left, right))
    if lkind is dict:
        return len(left) == len(right) and all(
            k in right and equal(v, right[k]) for k, v in left.items())
    return bool(left == right)


# --- arrays --------------------------------------------------------------------------------------

def flatten(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in values:
        if type(item) is list:
            out.extend(flatten(item))
        else:
            out.append(item)
    return out


def union(*arrays: list[Any]) -> list[Any]:
    """``a | b``: elements of both in order of first appearance, de-duplicated with ``eql?``."""
    seen: set[Any] = set()
    out: list[Any] = []
    for array in arrays:
        for item in array:
            key = eql_key(item)
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out


def uniq(values: list[Any]) -> list[Any]:
    return union(values)


def delete(array: list[Any], item: Any) -> None:
    """``array.delete(item)``: remove every element ``==`` item, in place."""
    array[:] = [element for element in array if not equal(element, item)]


def delete_if(array: list[Any], predicate: Callable[[Any], bool]) -> None:
    """``array.delete_if``, in place and index by index like MRI.

    deep_merge's knockout deletes from the array it is iterating over when both sides of a merge
    are the same object; copying MRI's loop keeps those results identical to Puppet's.
    """
    i1 = i2 = 0
    while i1 < len(array):
        item = array[i1]
        if not predicate(item):
            if i1 != i2:
                array[i2] = item
            i2 += 1
        i1 += 1
    if i2 < len(array) and i2 < i1:
        del array[i2:]


def _compare(left: Any, right: Any) -> int:
    lkind, rkind = type(left), type(right)
    if lkind in (int, float) and rkind in (int, float) or lkind is rkind is str:
        return (left > right) - (left < right)
    if lkind is rkind is list:
        for a, b in zip(left, right):
            result = _compare(a, b)
            if result:
                return result
        return (len(left) > len(right)) - (len(left) < len(right))
    if equal(left, right):
        return 0
    raise RubyArgumentError(f"comparison of {class_name(left)} with {class_name(right)} failed")


def sort(array: list[Any]) -> None:
    """``array.sort!`` with Ruby's ``<=>``: mixed kinds (String and Integer, two hashes) fail."""
    array.sort(key=functools.cmp_to_key(_compare))


# --- strings -------------------------------------------------------------------------------------

_FLOAT_REPR = re.compile(r"(-?)(\d+)(?:\.(\d+))?(?:e([-+]\d+))?")


def float_to_s(value: float) -> str:
    """``Float#to_s``: shortest round-trip digits, exponent form below 1e-4 and from 1e16."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    sign, whole, frac, exp = _FLOAT_REPR.fullmatch(repr(value)).groups()  # type: ignore[union-attr]
    digits = whole + (frac or "")
    decpt = len(whole) + int(exp or 0)
    stripped = digits.lstrip("0")
    decpt -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    if digits == "0":
        return f"{sign}0.0"
    if 0 < decpt <= 15:
        if len(digits) <= decpt:
            return f"{sign}{digits}{'0' * (decpt - len(digits))}.0"
        return f"{sign}{digits[:decpt]}.{digits[decpt:]}"
    if -4 < decpt <= 0:
        return f"{sign}0.{'0' * -decpt}{digits}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}e{decpt - 1:+03d}"


_INSPECT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r",
                    "\f": "\\f", "\v": "\\v", "\b": "\\b", "\a": "\\a", "\x1b": "\\e"}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]|#[{$@]|[^\x00-\x7f]')


def _inspect_char(match: re.Match[str]) -> str:
    char = match.group()
    if char[0] == "#":
        return "\\" + char
    if char in _INSPECT_ESCAPES:
        return _INSPECT_ESCAPES[char]
    code = ord(char)
    if code < 0x80:
        return f"\\u{code:04X}"
    import unicodedata  # only for non-ASCII strings, which are rare in hieradata

    if unicodedata.category(char) not in ("Cn", "Zl", "Zp", "Cs"):
        return char
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\u{{{code:X}}}"


def inspect(value: Any) -> str:
    """``#inspect``, which ``to_s`` uses for the elements of arrays and hashes."""
    if type(value) is str:
        return '"' + _NEEDS_ESCAPE.sub(_inspect_char, value) + '"'
    if value is None:
        return "nil"
    if type(value) is list:
        return "[" + ", ".join(inspect(item) for item in value) + "]"
    if type(value) is dict:
        return "{" + ", ".join(f"{inspect(k)}=>{inspect(v)}" for k, v in value.items()) + "}"
    if type(value) is Sensitive:
        return f"#<{REDACTED}>"
    return to_s(value)


def to_s(value: Any) -> str:
    """``#to_s``: what a non-string becomes inside an interpolated string."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        return float_to_s(value)
    if kind is list or kind is dict:
        return inspect(value)
    return str(value)


# --- regexps -------------------------------------------------------------------------------------

_RUBY_ONLY = re.compile(r"\\\\|\\[zZhH]|\(\?<(?=[A-Za-z_])|\[:\w+:\]|\\[pP]\{\^?\w+\}")
_RUBY_TO_PYTHON = {"\\\\": "\\\\", "\\z": r"\Z", "\\Z": r"(?=\n?\Z)", "\\h": "[0-9a-fA-F]",
                   "\\H": "[^0-9a-fA-F]", "(?<": "(?P<"}
# POSIX bracket classes and \p{...} properties, for the ASCII that hieradata keys are made of.
_CLASSES = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z",
            "lower": "a-z", "space": r"\s", "blank": r" \t", "xdigit": "0-9A-Fa-f",
            "word": r"\w", "punct": r"!-/:-@\[-`{-~", "cntrl": r"\x00-\x1f\x7f",
            "print": r"\x20-\x7e", "graph": r"\x21-\x7e"}


def _translate(match: re.Match[str]) -> str:
    text = match.group()
    if text.startswith("[:"):  # inside a bracket already: [[:alpha:]]
        return _CLASSES.get(text[2:-2], text)
    if text[:2] in ("\\p", "\\P"):
        name = text[3:-1]
        negate = (text[1] == "P") != name.startswith("^")
        chars = _CLASSES.get(name.lstrip("^").lower())
        if chars is None:
            return text  # unknown property: Python reports it
        return f"[{'^' if negate else ''}{chars}]"
    return _RUBY_TO_PYTHON[text]


@functools.lru_cache(maxsize=256)
def regexp(source: str) -> re.Pattern[str]:
    """Compile a Ruby regexp: ``^``/``$`` match at line boundaries, ``\\z``, ``\\h``, ``(?<n>)``,
    ``[[:alpha:]]`` and ``\\p{Alpha}``."""
    translated = _RUBY_ONLY.sub(_translate, source)
    return re.compile(translated, re.MULTILINE)


# --- JSON ----------------------------------------------------------------------------------------

_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f",
                 "\b": "\\b"}
_JSON_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


JSON_MAX_NESTING = 100  # the json gem's default max_nesting


class JSONError(ValueError):
    """A value Ruby's JSON generator refuses (NaN, Infinity)."""


def _json_string(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes from !!binary that are not UTF-8
        raise JSONError("partial character in source, but hit end") from None
    return '"' + _JSON_NEEDS_ESCAPE.sub(
        lambda m: _JSON_ESCAPES.get(m.group()) or f"\\u{ord(m.group()):04x}", text) + '"'


def to_json(value: Any, depth: int = 0) -> str:
    """``value.to_json`` as Ruby's json gem writes it, which is what ``puppet lookup --render-as
    json`` prints: compact, UTF-8 left as is, floats as ``Float#to_s`` (``1.0e+20``), hash keys
    as their ``to_s``, Sensitive as its redacted ``to_s``; NaN, Infinity and more than 100 nested
    arrays or hashes are refused."""
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            shown = "NaN" if value != value else float_to_s(value)
            raise JSONError(f"{shown} not allowed in JSON")
        return float_to_s(value)
    if kind is list or kind is dict:
        if depth >= JSON_MAX_NESTING:
            raise JSONError(f"nesting of {JSON_MAX_NESTING} is too deep")
        if kind is list:
            return "[" + ",".join(to_json(item, depth + 1) for item in value) + "]"
        return "{" + ",".join(f"{_json_string(to_s(k))}:{to_json(v, depth + 1)}"
                              for k, v in value.items()) + "}"
    return _json_string(to_s(value) if kind is not Sensitive else REDACTED)
