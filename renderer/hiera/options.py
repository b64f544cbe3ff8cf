"""lookup_options entries: compiled for matching, and read as Ruby reads them."""

from __future__ import annotations

import re
from typing import Any

from renderer.errors import HieraDataError
from renderer.hiera.ruby import regexp

# lookup_options compiled: the entries by exact key, and the (pattern, entry) pairs of the keys
# that are regexps, in order.
Options = tuple[dict[Any, Any], list[tuple[re.Pattern[str], Any]]]


def compile_options(merged: dict[Any, Any]) -> Options:
    """Exact keys in a dict, ``^`` keys as regexps in their order (first match wins)."""
    exact: dict[Any, Any] = {}
    patterns: list[tuple[re.Pattern[str], Any]] = []
    for key, options in merged.items():
        if type(key) is str and key.startswith("^"):
            try:
                patterns.append((regexp(key), options))
            except re.error as exc:  # an invalid pattern breaks every lookup, as in Puppet
                raise HieraDataError(f"lookup_options pattern {key!r}: {exc}") from exc
        else:
            exact[key] = options
    return exact, patterns


def sensitive(convert_to: Any) -> bool:
    """Whether ``convert_to`` makes the value Sensitive (``--explain`` then masks it)."""
    name = convert_to[0] if type(convert_to) is list and convert_to else convert_to
    return type(name) is str and name.strip() == "Sensitive"


def option(options: Any, name: str) -> Any:
    """``options[name]`` as Ruby evaluates it; a string option (a mistake) yields a substring."""
    if type(options) is dict:
        return options.get(name)
    if type(options) is str:
        return name if name in options else None
    if options is not None:
        raise HieraDataError(f"lookup_options entry must be a hash, got {options!r}")
    return None

