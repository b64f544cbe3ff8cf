"""Puppet data types as ``lookup_options`` ``convert_to`` names them: parsed, and tested against.

``convert_to: "Array[String]"`` is Puppet's ``new(Array[String], value)``, which returns the value
unchanged when it already is an instance of the type, and otherwise converts it with the base
type's ``new`` (Integer, Float, Numeric, String, Boolean, Array, Hash, Sensitive; ``Optional[T]``
converts to T, ``Tuple`` like Array, ``Struct`` like Hash) and then checks the result against the
whole type, so ``Integer[0, 10]`` refuses ``"50"``. This module parses the type expressions and
answers ``instance(type, value)`` for the types hieradata can hold; ``convert`` does the rest.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from renderer.hiera.merge import is_data
from renderer.hiera.ruby import regexp
from renderer.hiera.sensitive import Sensitive

_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Z]\w*(?:::[A-Z]\w*)*)|(?P<word>[a-z_]\w*)"
    r"|(?P<float>[+-]?\d+\.\d+(?:[eE][+-]?\d+)?)|(?P<int>[+-]?(?:0[xX][0-9a-fA-F]+|\d+))"
    r"|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(?P<regexp>/(?:[^/\\]|\\.)*/)"
    r"|(?P<punct>[\[\],]))", re.ASCII)
_Tokens = list[tuple[str | None, str]]  # (group name, text)
DEFAULT = object()  # the ``default`` keyword in a parameter list (an open bound)


class TypeSyntaxError(ValueError):
    """Not a type expression (``integer``, ``Array[``)."""


class PType:
    """A type name and its parameters (types, numbers, strings, regexps or DEFAULT)."""

    __slots__ = ("name", "params")

    def __init__(self, name: str, params: list[Any]) -> None:
        self.name = name
        self.params = params

    def __str__(self) -> str:
        def show(param: Any) -> str:
            if param is DEFAULT:
                return "default"
            if type(param) is str:
                return repr(param)
            if isinstance(param, re.Pattern):
                return f"/{param.pattern}/"
            return str(param)
        return self.name + (f"[{', '.join(map(show, self.params))}]" if self.params else "")


def parse(text: str) -> PType:
    tokens = [(m.lastgroup, m.group(m.lastgroup or 0)) for m in _TOKEN.finditer(text)]
    if "".join(value for _, value in tokens).replace(" ", "") != re.sub(r"\s", "", text):
        raise TypeSyntaxError(text)
    position, result = _type(tokens, 0)
    if position != len(tokens):
        raise TypeSyntaxError(text)
    return result


def _type(tokens: _Tokens, position: int) -> tuple[int, PType]:
    if position >= len(tokens) or tokens[position][0] != "name":
        raise TypeSyntaxError("a type name")
    name = tokens[position][1]
    position += 1
    params: list[Any] = []
    if position < len(tokens) and tokens[position] == ("punct", "["):
        position += 1
        while True:
            position, param = _param(tokens, position)
            params.append(param)
            if position < len(tokens) and tokens[position] == ("punct", ","):
                position += 1
                continue
            if position < len(tokens) and tokens[position] == ("punct", "]"):
                return position + 1, PType(name, params)
            raise TypeSyntaxError("] expected")
    return position, PType(name, params)


def _param(tokens: _Tokens, position: int) -> tuple[int, Any]:
    if position >= len(tokens):
        raise TypeSyntaxError("a parameter")
    kind, value = tokens[position]
    if kind == "name":
        return _type(tokens, position)
    if kind == "word":
        return position + 1, DEFAULT if value == "default" else value
    if kind == "int":
        return position + 1, int(value, 0) if "x" in value.lower() else int(value)
    if kind == "float":
        return position + 1, float(value)
    if kind == "str":
        return position + 1, re.sub(r"\\(.)", r"\1", value[1:-1])
    if kind == "regexp":
        return position + 1, regexp(value[1:-1])
    raise TypeSyntaxError(value)


# --- instance? -----------------------------------------------------------------------------------

def _bound(params: list[Any], index: int, default: Any) -> Any:
    value = params[index] if index < len(params) else DEFAULT
    return default if value is DEFAULT else value


def _in_range(value: Any, params: list[Any]) -> bool:
    return _bound(params, 0, float("-inf")) <= value <= _bound(params, 1, float("inf"))


def _sized(size: int, params: list[Any], first: int) -> bool:
    return _in_range(size, params[first:first + 2])


def _element_type(params: list[Any]) -> tuple[Any, int]:
    """Array[T, min, max] or Array[min, max]: the element type (None for any) and where the
    size bounds start."""
    if params and isinstance(params[0], PType):
        return params[0], 1
    return None, 0


def instance(ptype: PType, value: Any) -> bool:
    """Puppet's ``Type.instance?(value)`` for the types hieradata values can have (any other type
    name has no instances here)."""
    check = _INSTANCE.get(ptype.name)
    return check is not None and check(ptype.params, value)


# One check per type name: ``check(params, value)``.

def _any(params: list[Any], value: Any) -> bool:
    return True


def _data(params: list[Any], value: Any) -> bool:
    return is_data(value)


def _rich_data(params: list[Any], value: Any) -> bool:
    return is_data(value) or type(value) is Sensitive


def _scalar(params: list[Any], value: Any) -> bool:
    return type(value) in (str, int, float, bool)


def _undef(params: list[Any], value: Any) -> bool:
    return value is None


def _inner(params: list[Any], value: Any) -> bool:
    """Optional[T] and NotUndef[T] for a value that is not undef: T a type, or a string (an Enum
    of one), or nothing."""
    inner = params[0] if params else None
    if type(inner) is str:
        return value == inner
    return inner is None or instance(inner, value)


def _optional(params: list[Any], value: Any) -> bool:
    return value is None or _inner(params, value)


def _not_undef(params: list[Any], value: Any) -> bool:
    return value is not None and _inner(params, value)


def _integer(params: list[Any], value: Any) -> bool:
    return type(value) is int and _in_range(value, params)


def _float(params: list[Any], value: Any) -> bool:
    return type(value) is float and _in_range(value, params)


def _numeric(params: list[Any], value: Any) -> bool:
    return type(value) in (int, float) and _in_range(value, params)


def _boolean(params: list[Any], value: Any) -> bool:
    return type(value) is bool


def _string(params: list[Any], value: Any) -> bool:
    return type(value) is str and _sized(len(value), params, 0)


def _enum(params: list[Any], value: Any) -> bool:
    """Enum[values...], and a True last parameter for case-insensitive matching."""
    fold = bool(params) and params[-1] is True
    values = [p for p in params if type(p) is str]
    if fold:
        return type(value) is str and value.lower() in (v.lower() for v in values)
    return type(value) is str and (not values or value in values)


def _pattern(params: list[Any], value: Any) -> bool:
    return type(value) is str and (not params or any(
        (p if isinstance(p, re.Pattern) else regexp(p)).search(value) for p in params))


def _array(params: list[Any], value: Any) -> bool:
    element, first = _element_type(params)
    return type(value) is list and _sized(len(value), params, first) and (
        element is None or all(instance(element, item) for item in value))


def _tuple(params: list[Any], value: Any) -> bool:
    """Tuple[T1, T2, ..., min, max]: the last type repeats up to max; by default exactly one
    element per type."""
    types = [p for p in params if isinstance(p, PType)]
    bounds = params[len(types):]
    if type(value) is not list or not _in_range(len(value), bounds or [len(types), len(types)]):
        return False
    return all(instance(types[min(i, len(types) - 1)], item)
               for i, item in enumerate(value)) if types else True


def _hash(params: list[Any], value: Any) -> bool:
    """Hash[K, V, min, max] or Hash[min, max]."""
    if type(value) is not dict:
        return False
    if len(params) >= 2 and isinstance(params[0], PType):
        return _sized(len(value), params, 2) and all(
            instance(params[0], k) and instance(params[1], v) for k, v in value.items())
    return _sized(len(value), params, 0)


def _collection(params: list[Any], value: Any) -> bool:
    return type(value) in (list, dict) and _sized(len(value), params, 0)


def _variant(params: list[Any], value: Any) -> bool:
    return any(instance(p, value) for p in params if isinstance(p, PType))


def _sensitive(params: list[Any], value: Any) -> bool:
    return type(value) is Sensitive and (not params or instance(params[0], value.value))


_INSTANCE: dict[str, Callable[[list[Any], Any], bool]] = {
    "Any": _any, "Data": _data, "RichData": _rich_data, "Scalar": _scalar,
    "ScalarData": _scalar, "Undef": _undef, "Optional": _optional, "NotUndef": _not_undef,
    "Integer": _integer, "Float": _float, "Numeric": _numeric, "Boolean": _boolean,
    "String": _string, "Enum": _enum, "Pattern": _pattern, "Array": _array, "Tuple": _tuple,
    "Hash": _hash, "Collection": _collection, "Variant": _variant, "Sensitive": _sensitive,
}


# The base type whose ``new`` a type uses.
BASE = {"Tuple": "Array", "Struct": "Hash"}
