"""``%{...}`` interpolation, as Puppet's ``Lookup::Interpolation`` does it.

The behaviour that matters, each copied from Puppet: expressions are found with ``%\\{[^}]*\\}`` (so
an unclosed ``%{`` stays literal); ``%{}``, ``%{::}`` and ``%{''}`` are empty; a looked-up or scope
value is interpolated again (a fact may itself hold ``%{...}``) under a recursion guard; a
non-string is formatted with Ruby's ``to_s``; ``alias()`` must be the whole string and keeps the
value's type; the method syntax is refused where Puppet refuses it (hierarchy paths). Hash keys
inside values are interpolated too.

The invocation passed around (``inv``) is a ``Resolver``: the lookup being made
(``renderer.hiera.lookup``), which supplies variables, the recursion guard and nested lookups.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Protocol

from renderer.errors import InterpolationError
from renderer.hiera.keys import MISSING, dig, split_key
from renderer.hiera.ruby import STRIP, to_s

_EXPRESSION = re.compile(r"%\{([^}]*)\}")
# Ruby's ^ and $ match at line breaks, and \w is ASCII.
_METHOD = re.compile(r"^(\w+)\((?:\"([^\"]+)\"|'([^']+)')\)$", re.MULTILINE | re.ASCII)
_EMPTY = frozenset(("", "::", '""', "''", '"::"', "'::'"))
_LOOKUPS = frozenset(("lookup", "hiera", "alias"))


class Resolver(Protocol):
    """What interpolation, and hierarchy resolution, ask of the lookup they serve."""

    def variable(self, name: str) -> Any:
        """A scope variable (``x``, ``::x``, ``facts``); None when it is not set."""

    def check(self, name: str, resolve_name: Callable[[], Any]) -> Any:
        """``resolve_name()``, with ``name`` on the stack of names being resolved (a name already
        there is a recursion error)."""

    def interpolation_lookup(self, key: str) -> Any:
        """``%{lookup('k')}``, ``hiera`` and ``alias``: a full lookup, ``""`` when not found."""


def interpolate(value: Any, inv: Resolver, allow_methods: bool) -> Any:
    """A copy of ``value`` with every string interpolated (containers are always new objects,
    so merging may change them in place, as Puppet's deep merge does)."""
    kind = type(value)
    if kind is str:
        return _string(value, inv, allow_methods) if "%{" in value else value
    if kind is list:
        return [interpolate(item, inv, allow_methods) for item in value]
    if kind is dict:
        return {interpolate(k, inv, allow_methods): interpolate(v, inv, allow_methods)
                for k, v in value.items()}
    return value


def method_call(text: str) -> str | None:
    """The first ``%{name('arg')}`` in ``text``, for the check that paths use none."""
    for match in _EXPRESSION.finditer(text):
        expression = match.group(1).strip(STRIP)
        if expression not in _EMPTY and _METHOD.search(expression):
            return match.group()
    return None


def _string(subject: str, inv: Resolver, allow_methods: bool) -> Any:
    parts: list[str] = []
    position = 0
    for match in _EXPRESSION.finditer(subject):
        parts.append(subject[position:match.start()])
        position = match.end()
        expression = match.group(1).strip(STRIP)
        if expression in _EMPTY:
            continue
        method, key = _method_and_key(expression, allow_methods)
        if method == "alias" and subject != match.group():
            raise InterpolationError("'alias' interpolation is only permitted if the expression "
                                     f"is equal to the entire string: {subject}")
        value = _evaluate(method, key, inv, subject)
        if method == "alias":
            return value
        name = f"scope:{key}" if method == "scope" else key
        value = inv.check(name, lambda: interpolate(value, inv, allow_methods))
        parts.append(to_s(value))
    parts.append(subject[position:])
    return "".join(parts)


def _method_and_key(expression: str, allow_methods: bool) -> tuple[str, str]:
    match = _METHOD.search(expression)
    if match is None:
        return "scope", expression
    if not allow_methods:
        raise InterpolationError("Interpolation using method syntax is not allowed in this "
                                 f"context: %{{{expression}}}")
    return match.group(1), match.group(2) or match.group(3)


def _evaluate(method: str, key: str, inv: Resolver, subject: str) -> Any:
    if method in _LOOKUPS:
        return inv.interpolation_lookup(key)
    if method == "scope":
        return scope_value(key, inv, subject)
    if method == "literal":
        return key
    raise InterpolationError(f"Unknown interpolation method '{method}' in: {subject}")


def scope_value(key: str, inv: Resolver, subject: str) -> Any:
    """A variable (``x``, ``::x``, ``facts.os.family``); None when it is not set."""
    segments = split_key(key, lambda problem: InterpolationError(
        f"{problem} in string: {subject}"))
    value = inv.variable(str(segments[0]))
    if value is None or len(segments) == 1:
        return value
    found = dig(key, segments[1:], value)
    return None if found is MISSING else found
