"""``lookup_options`` ``convert_to``: Puppet's ``new(Type, value, *args)`` for the common types.

Supported: Sensitive, Integer (radix, abs), Float (abs), Numeric (abs), String, Boolean, Array
(wrap) and Hash, with the string parsing of Puppet 7 (``"0755"`` is octal for Integer but decimal
for Float, ``"- 5"`` is -5, ``"1_000"`` is refused). Any other type, or String/Hash with format
arguments, is a ConversionError naming the gap instead of a silent difference from Puppet.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from renderer.errors import ConversionError
from renderer.hiera import types
from renderer.hiera.merge import type_name
from renderer.hiera.ruby import NUMBER_BLANKS, float_to_s
from renderer.hiera.sensitive import Sensitive

_INTEGER = re.compile(r"[+-]?\s*(?:\d+|0[xX][0-9A-Fa-f]+|0[bB][01]+)", re.ASCII)
_FLOAT = re.compile(r"[+-]?\s*(?:(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE]-?\d+)?|0[xX][0-9A-Fa-f]+"
                    r"|0[0-7]+|0[bB][01]+)", re.ASCII)
_NUMERIC = re.compile(r"[ \t]*([-+]?)[ \t]*((0[xX][0-9A-Fa-f]+)|(0?\d+)((?:\.\d+)?"
                      r"(?:[eE]-?\d+)?))[ \t]*", re.ASCII)
_SIGN_SPACE = re.compile(r"([+-])[ \t]+(.*)")
_PREFIXES = {16: "0x", 2: "0b", 8: "0o", 10: "0d"}


class _Refused(Exception):
    """The conversion failed; the message is Puppet's reason."""


def _ruby_integer(text: str, radix: int | None = None) -> int:
    """Ruby ``Integer(text[, radix])``: a leading 0 means octal, surrounding blanks are fine."""
    digits = text.strip(NUMBER_BLANKS)
    sign = digits[0] if digits[:1] in ("+", "-") else ""
    digits = digits[len(sign):]
    base = radix or 10
    prefix = digits[:2].lower()
    if radix is None and prefix in ("0x", "0b", "0o"):
        base, digits = {"0x": 16, "0b": 2, "0o": 8}[prefix], digits[2:]
    elif radix is None and len(digits) > 1 and digits[0] == "0":
        base, digits = 8, digits[1:]
    elif radix is not None and prefix == _PREFIXES[radix]:
        digits = digits[2:]
    try:
        if not digits or not digits[0].isalnum():
            raise ValueError
        return int(sign + digits, base)
    except ValueError:
        raise _Refused(f'invalid value for Integer(): "{text}"') from None


def _retry_without_sign_space(convert: Callable[[str], Any], text: str) -> Any:
    """Puppet retries ``"- 5"`` as ``"-5"`` and keeps the first error if that fails too."""
    try:
        return convert(text)
    except _Refused:
        match = _SIGN_SPACE.fullmatch(text)
        if match:
            try:
                return convert(match.group(1) + match.group(2))
            except _Refused:
                pass
        raise


def _ruby_float(text: str) -> float:
    """Ruby ``Float(text)``: decimal or hexadecimal, surrounding blanks are fine."""
    stripped = text.strip(NUMBER_BLANKS)
    unsigned = stripped.lstrip("+-")
    try:
        if unsigned[:2].lower() == "0x":
            return float(int(stripped[:len(stripped) - len(unsigned)] + unsigned[2:], 16))
        if "_" not in stripped:
            return float(stripped)
    except ValueError:
        pass
    raise _Refused(f'invalid value for Float(): "{text}"')


def _flag(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise _Refused(f"the '{name}' argument expects a Boolean value, got {type_name(value)}")
    return value


def _to_integer(value: Any, radix: Any = "default", absolute: bool = False) -> int:
    if radix not in ("default", 2, 8, 10, 16) or type(radix) is bool:
        raise _Refused(f"Illegal radix: {radix}, expected 2, 8, 10, 16, or default")
    kind = type(value)
    if kind is bool:
        result = int(value)
    elif kind is int:
        result = value
    elif kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise _Refused(f"{float_to_s(value)}")
        result = int(value)
    elif kind is str and _INTEGER.fullmatch(value):
        base = None if radix == "default" else radix
        result = _retry_without_sign_space(lambda text: _ruby_integer(text, base), value)
    else:
        raise _Refused(_cannot(value, "Integer"))
    return abs(result) if _flag(absolute, "abs") else result


def _to_float(value: Any, absolute: bool = False) -> float:
    kind = type(value)
    if kind in (bool, int, float):
        result = float(value)
    elif kind is str and _FLOAT.fullmatch(value):
        if value[0] == "0" and len(value) == 1:
            raise _Refused("undefined method `casecmp' for nil:NilClass")  # Puppet 7 does this
        if value[0] == "0" and value[1] in "bB":
            result = float(_ruby_integer(value))
        else:
            result = _retry_without_sign_space(_ruby_float, value)
    else:
        raise _Refused(_cannot(value, "Float"))
    return abs(result) if _flag(absolute, "abs") else result


def _to_numeric(value: Any, absolute: bool = False) -> int | float:
    kind = type(value)
    if kind in (bool, int, float):
        result = int(value) if kind is bool else value
    elif kind is str and _FLOAT.fullmatch(value):
        if value[0] == "0" and value[1:2].lower() in ("b", "x"):
            result = _ruby_integer(value)
        else:
            result = _to_n(value)
    else:
        raise _Refused(_cannot(value, "Numeric"))
    return abs(result) if _flag(absolute, "abs") else result


def _to_n(text: str) -> int | float:
    """Puppet's ``Utils.to_n``: an integer unless there is a fraction or an exponent."""
    match = _NUMERIC.fullmatch(text)
    if match is None:
        raise _Refused(_cannot(text, "Numeric"))
    sign, number, _, whole, fraction = match.groups()
    if not fraction:
        result = _ruby_integer(number)
        return -result if sign == "-" else result
    if whole is not None and int(whole) == 0 and re.fullmatch(r"\.?0*[eE].*", fraction):
        raise _Refused(_cannot(text, "Numeric"))
    result_f = float(number)
    return -result_f if sign == "-" else result_f


def _to_boolean(value: Any) -> bool:
    kind = type(value)
    if kind is bool:
        return value
    if kind in (int, float):
        return value != 0
    if kind is str and value.lower() in ("true", "yes", "y", "false", "no", "n"):
        return value.lower() in ("true", "yes", "y")
    raise _Refused(_cannot(value, "Boolean"))


def _to_array(value: Any, wrap: bool = False) -> list[Any]:
    kind = type(value)
    if kind is list:
        return value
    if _flag(wrap, "wrap"):
        return [value]
    if kind is dict:
        return [[k, v] for k, v in value.items()]
    if kind is str:
        return list(value)
    if kind is int:
        return list(range(value))
    raise _Refused(_cannot(value, "Array"))


def _to_hash(value: Any) -> dict[Any, Any]:
    kind = type(value)
    if kind is dict:
        return value
    if kind is list and value and all(type(item) is list and len(item) == 2 for item in value):
        items = [element for pair in value for element in pair]
    elif kind in (list, str):
        items = list(value)
    elif kind is int:
        items = list(range(value))
    else:
        raise _Refused(_cannot(value, "Hash"))
    if len(items) % 2:
        raise _Refused("odd number of arguments for Hash")
    try:
        return dict(zip(items[0::2], items[1::2]))
    except TypeError:
        raise _Refused("render cannot use an array or hash as a hash key") from None


def _to_string(value: Any, fmt: Any = None) -> str:
    """Puppet's default string conversion: ``%f`` floats, quoted strings inside containers; with
    a format, ``renderer.hiera.strformat`` (containers take only ``%s`` and ``%p``)."""
    if fmt is not None:
        return _formatted(value, fmt)
    if type(value) is float:
        return _format_float(value)
    if type(value) in (list, dict):
        return _quoted(value)
    if value is None:
        return ""
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


def _formatted(value: Any, fmt: Any) -> str:
    from renderer.hiera import strformat

    if type(fmt) is not str:
        raise _Refused("render supports a format string, not a map of formats, for String")
    try:
        if type(value) in (list, dict):
            return strformat.container(value, fmt, _quoted)
        return strformat.format_value(value, fmt, _puppet_quote)
    except strformat.Refused as exc:
        raise _Refused(str(exc)) from None
    except strformat.Unsupported as exc:
        raise ConversionError(f"render does not support String formats like {exc}") from None


def _format_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Inf" if value > 0 else "-Inf"
    return f"{value:f}"


def _quoted(value: Any) -> str:
    """``%p``, the format of the elements of arrays and hashes."""
    kind = type(value)
    if kind is str:
        return _puppet_quote(value)
    if value is None:
        return "undef"
    if kind is float:
        return float_to_s(value)
    if kind is list:
        return "[" + ", ".join(map(_quoted, value)) + "]"
    if kind is dict:
        return "{" + ", ".join(f"{_quoted(k)} => {_quoted(v)}" for k, v in value.items()) + "}"
    return _to_string(value)


def _puppet_quote(text: str) -> str:
    """Single quotes unless there is a control character, then Puppet double-quoted syntax."""
    if any(ord(char) < 0x20 for char in text):
        escapes = {"\t": "\\t", "\n": "\\n", "\r": "\\r", '"': '\\"', "$": "\\$",
                   "\\": "\\\\"}
        return '"' + "".join(escapes.get(char) or (f"\\u{{{ord(char):X}}}" if ord(char) < 0x20
                                                    else char) for char in text) + '"'
    out = ["'"]
    escaped = False
    for char in text:  # a backslash is kept with the character after it, as Puppet does
        if escaped:
            out.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append("\\'" if char == "'" else char)
    out.append("\\'" if escaped else "'")
    return "".join(out)


def _cannot(value: Any, target: str) -> str:
    if type(value) is str:
        return f"The string '{value}' cannot be converted to {target}"
    shown = "Sensitive" if type(value) is Sensitive else type_name(value)
    return f"Value of type {shown} cannot be converted to {target}"


_CONVERTERS: dict[str, Callable[..., Any]] = {
    "Sensitive": lambda value: value if type(value) is Sensitive else Sensitive(value),
    "Integer": _to_integer, "Float": _to_float, "Numeric": _to_numeric,
    "Boolean": _to_boolean, "Array": _to_array, "Hash": _to_hash, "String": _to_string}
_MAX_ARGUMENTS = {"Sensitive": 0, "Integer": 2, "Float": 1, "Numeric": 1, "Boolean": 0,
                  "Array": 1, "Hash": 0, "String": 1}


# Types Puppet can create that render cannot (their values are not hieradata types).
_UNSUPPORTED = frozenset(("Timestamp", "Timespan", "SemVer", "SemVerRange", "Regexp", "Binary",
                          "Type", "Iterator", "Runtime", "Object", "Init", "URI", "Error"))


def convert(value: Any, convert_to: Any, key: str) -> Any:
    """Apply a ``convert_to`` option (a type, or ``[type, args...]``) to a found value: Puppet's
    ``new(Type, value, *args)``, which keeps a value that already is an instance of the type, and
    checks what it creates against the whole type (``Integer[0, 10]``, ``Array[String]``)."""
    spec = convert_to if type(convert_to) is list else [convert_to]
    name = spec[0] if spec else None
    try:
        if type(name) is not str:
            raise types.TypeSyntaxError(name)
        ptype = types.parse(name)
    except types.TypeSyntaxError:
        raise ConversionError(f"Invalid data type in lookup_options for key '{key}' could not "
                              f"parse '{name}'") from None
    args = spec[1:]
    if not args and types.instance(ptype, value):
        return value
    try:
        result = _new(ptype, value, args, key)
    except _Refused as exc:
        raise ConversionError(f"The convert_to lookup_option for key '{key}' raised error: "
                              f"{exc}") from exc
    if not types.instance(ptype, result):
        raise ConversionError(f"The convert_to lookup_option for key '{key}' raised error: "
                              f"Converted value from {ptype}.new() has wrong type")
    return result


def _new(ptype: types.PType, value: Any, args: list[Any], key: str) -> Any:
    """The base type's ``new``: Optional[T] and NotUndef[T] create a T."""
    if ptype.name in ("Optional", "NotUndef") and ptype.params and isinstance(
            ptype.params[0], types.PType):
        return _new(ptype.params[0], value, args, key)
    base = types.BASE.get(ptype.name, ptype.name)
    converter = _CONVERTERS.get(base)
    if converter is None:
        if base in _UNSUPPORTED:
            raise ConversionError(f"The convert_to lookup_option for key '{key}': render does "
                                  f"not support converting to {base}")
        raise _Refused(f"Creation of new instance of type '{ptype}' is not supported")
    if len(args) > _MAX_ARGUMENTS[base]:
        raise ConversionError(f"The convert_to lookup_option for key '{key}': render does not "
                              f"support the arguments {args!r} for {base}")
    return converter(value, *args)
