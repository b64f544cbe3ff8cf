"""Sensitive: what ``lookup_options`` ``convert_to: Sensitive`` returns.

Puppet wraps the value so that logs, reports and ``puppet lookup`` print ``Sensitive [value
redacted]`` instead of the secret. render does the same: only code that asks for ``.value`` sees it,
so a stray ``print``, ``repr`` or log line cannot leak a password.
"""

from __future__ import annotations

from typing import Any

REDACTED = "Sensitive [value redacted]"


class Sensitive:
    """A value that must not be shown. Equal when the wrapped values are equal, as in Puppet."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sensitive) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]  # the wrapped value may be a list or dict
