"""lookup_options entries: compiled for matching, and read as Ruby reads them."""

from __future__ import annotations

import re
from typing import Any, Callable

from renderer.errors import HieraDataError, RenderError
from renderer.hiera.ruby import regexp

LOOKUP_OPTIONS = "lookup_options"  # as renderer.hiera.lookup names it

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



def shared(inv: Any, module: str | None, compile_for: Callable[[str | None], Options]) -> Options:
    """The lookup_options of ``inv``'s scope for ``module``: compiled by ``compile_for``, or
    taken from another scope that reads them from the same files (``shared_key``)."""
    key = None if inv.explain else shared_key(inv, module)
    compiled = None if key is None else inv.hiera._options.get(key)
    if compiled is None:
        compiled = compile_for(module)
        if key is not None:
            inv.hiera._options[key] = compiled
    return compiled


def shared_key(inv: Any, module: str | None) -> tuple[Any, ...] | None:
    """What the lookup_options of ``inv``'s scope (an ``_Invocation``) are compiled from, when
    any scope with the same key compiles the same: the same data files holding lookup_options
    at the same levels of every layer, none of them eyaml or a command, no lookup_options value
    interpolated. None: compile them for this scope alone. A host of 1,000 services, one scope
    each, then compiles them once."""
    hiera = inv.hiera
    configs = [hiera.global_config, hiera.config,
               hiera.module_config(module) if module is not None else None]
    key: list[Any] = [module]
    try:
        for config in configs:
            if config is None:
                key.append(None)
                continue
            paths: list[tuple[int, str, str]] = []  # the locations that hold lookup_options
            for index, locations in enumerate(inv.levels(config)):
                for location in locations:
                    if not location.exists:
                        continue  # read() skips it before anything else
                    if location.error is not None or location.eyaml is not None \
                            or location.backend is not None:  # no file: a command's answer
                        return None
                    data_file = hiera.data_file(location.path, location.function)
                    if LOOKUP_OPTIONS not in data_file.data:
                        continue  # adds nothing to the merge
                    if not data_file.plain(LOOKUP_OPTIONS):
                        return None
                    paths.append((index, location.path, location.function))
            key.append((id(config), tuple(paths)))
    except RenderError:  # the compilation reports it, as it would have
        return None
    return tuple(key)
