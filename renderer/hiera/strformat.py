"""``convert_to: [String, "%x"]``: Puppet's ``String.new(value, format)`` for scalar values.

Puppet's StringConverter picks a rule by the value's type and mostly hands the format to Ruby's
``Kernel.format`` (C's printf rules, which Python's ``%`` shares for d, e, f, g and s). The parts
that differ are written out here: ``%b``, ``%#o`` (``010``, not ``0o10``), booleans as ``%t`` and
``%y``, strings as ``%C``/``%u``/``%d``/``%t`` and ``%p`` (Puppet quoting), floats as ``%s`` (Ruby's
float text). Negative numbers in hex, octal or binary without a sign flag (Ruby's ``..f01``),
``%a`` and the container formats are refused as unsupported rather than printed differently.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from renderer.hiera.ruby import float_to_s

FORMAT = re.compile(r"%([\s\[+#0{<(|-]*)([1-9][0-9]*)?(?:\.([0-9]+))?([a-zA-Z])")


class Unsupported(Exception):
    """A format Puppet accepts and render cannot reproduce."""


class Refused(Exception):
    """A format Puppet refuses; the message is Puppet's."""


class _Format:
    __slots__ = ("flags", "width", "prec", "conv", "text")

    def __init__(self, text: str) -> None:
        match = FORMAT.fullmatch(text)
        if match is None:
            raise Refused(f"The format '{text}' is not a valid format on the form "
                          "'%<flags><width>.<prec><format>'")
        self.text = text
        self.flags, width, prec, self.conv = match.groups()
        self.width = int(width) if width else None
        self.prec = int(prec) if prec is not None else None
        if set(self.flags) & set("[{<(|"):
            raise Unsupported(f"container flags in '{text}'")

    @property
    def alt(self) -> bool:
        return "#" in self.flags

    def pad(self, text: str) -> str:
        """Width and justification."""
        if self.width is None:
            return text
        return text.ljust(self.width) if "-" in self.flags else text.rjust(self.width)

    def string(self, text: str) -> str:
        """``%s`` of a string: precision truncates, then the width."""
        if self.prec is not None:
            text = text[:self.prec]
        return self.pad(text)


def _integer(f: _Format, value: int) -> str:
    conv = f.conv
    if conv in "eEfgGa":
        return _float(f, float(value))
    if conv == "s" or conv == "p":
        return f.string(str(value))
    if conv == "c":
        if not 0 <= value <= 0x10FFFF:
            raise Refused("pack(U): value out of range")
        return f.string(chr(value))
    if conv not in "dxXobB":
        raise Refused(f"Illegal format '{conv}' specified for value of Integer type - expected "
                      "one of the characters 'dxXobBeEfgGaAspc'")
    signed = "+" in f.flags or " " in f.flags
    if value < 0 and conv != "d" and not signed:
        return _complement(f, value)
    sign = "-" if value < 0 else "+" if "+" in f.flags else " " if " " in f.flags else ""
    digits = _digits(abs(value), conv)
    if f.prec is not None:
        digits = digits.rjust(f.prec, "0")
    prefix = ""
    if f.alt and value != 0:
        prefix = {"x": "0x", "X": "0X", "b": "0b", "B": "0B"}.get(conv, "")
        if conv == "o" and not digits.startswith("0"):
            prefix = "0"
    head = sign + prefix
    if f.width and "0" in f.flags and "-" not in f.flags and f.prec is None:
        digits = digits.rjust(f.width - len(head), "0")  # zeros go after the sign and prefix
    return f.pad(head + digits)


def _digits(value: int, conv: str) -> str:
    if conv in "bB":
        return format(value, "b")
    return {"d": "%d", "x": "%x", "X": "%X", "o": "%o"}[conv] % value


def _complement(f: _Format, value: int) -> str:
    """Ruby's ``%x`` of a negative number: ``..`` and the two's complement digits, one leading
    all-ones digit kept (``-5`` is ``..fb``, ``..73`` in octal, ``..1011`` in binary)."""
    if f.prec is not None:
        raise Unsupported(f"'{f.text}' of a negative number with a precision")
    base = {"x": 16, "X": 16, "o": 8, "b": 2, "B": 2}[f.conv]
    size = 1
    while base ** size < -value:
        size += 1
    digits = _digits(base ** (size + 1) + value, f.conv)
    top = digits[0]
    digits = top + digits.lstrip(top)
    prefix = {"x": "0x", "X": "0X", "b": "0b", "B": "0B"}.get(f.conv, "") if f.alt else ""
    if f.width and "0" in f.flags and "-" not in f.flags:
        digits = digits.rjust(f.width - len(prefix) - 2, top)
    return f.pad(prefix + ".." + digits)


def _float(f: _Format, value: float) -> str:
    conv = f.conv
    if conv in "dxXobB":
        return _integer(f, int(value))
    if conv in "eEfgG":
        return f"%{f.flags}{f.width or ''}{'' if f.prec is None else '.' + str(f.prec)}{conv}" % (
            value,)
    if conv in "sp":
        return f.string(float_to_s(value))
    if conv in "aA":
        raise Unsupported(f"'{f.text}' (hexadecimal floats)")
    raise Refused(f"Illegal format '{conv}' specified for value of Float type - expected one "
                  "of the characters 'dxXobBeEfgGaAsp'")


def _boolean(f: _Format, value: bool) -> str:
    conv = f.conv
    words = {"t": str(value).lower(), "T": str(value), "y": "yes" if value else "no",
             "Y": "Yes" if value else "No"}
    if conv in words:
        text = words[conv]
        return f.string(text[0] if f.alt else text)
    if conv in "dxXobB":
        return _integer(f, int(value))
    if conv in "eEfgGaA":
        return _float(f, float(value))
    if conv in "sp":
        return f.string(words["t"])
    raise Refused(f"Illegal format '{conv}' specified for value of Boolean type - expected one "
                  "of the characters 'tTyYdxXobBeEfgGaAsp'")


def _string(f: _Format, value: str, quote: Callable[[str], str]) -> str:
    conv = f.conv
    changed = {"s": value, "c": value.capitalize(), "u": value.upper(), "d": value.lower(),
               "t": value.strip(),
               "C": "::".join(part.capitalize() for part in value.split("::"))}
    if conv == "p":
        if f.alt:
            raise Unsupported(f"'{f.text}' (Puppet's forced double quotes)")
        return f.string(quote(value))
    if conv not in changed:
        raise Refused(f"Illegal format '{conv}' specified for value of String type - expected "
                      "one of the characters 'cCudspt'")
    if f.alt and conv != "s":
        return f.string(quote(changed[conv]))
    return f.string(changed[conv])


def format_value(value: Any, text: str, quote: Callable[[str], str]) -> str:
    """``String.new(value, text)`` for a scalar; ``quote`` is Puppet's ``%p`` of a string."""
    f = _Format(text)
    kind = type(value)
    if kind is bool:
        return _boolean(f, value)
    if kind is int:
        return _integer(f, value)
    if kind is float:
        return _float(f, value)
    if kind is str:
        return _string(f, value, quote)
    raise Unsupported(f"a format for a value of type {kind.__name__}")


def container(value: Any, text: str, default: Callable[[Any], str]) -> str:
    """An array (``%a``, ``%s``, ``%p``) or hash (``%h``, ``%s``, ``%p``) in Puppet's default
    container format, width and precision ignored, as Puppet does; ``#`` (one element per line)
    and the delimiter flags are not supported."""
    f = _Format(text)
    kind, allowed = ("Array", "asp") if type(value) is list else ("Hash", "hsp")
    if f.conv not in allowed:
        raise Refused(f"Illegal format '{f.conv}' specified for value of {kind} type - expected "
                      f"one of the characters '{allowed}'")
    if f.alt:
        raise Unsupported(f"'{text}' (one element per line)")
    return default(value)
