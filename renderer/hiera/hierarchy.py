"""Hierarchy levels resolved for one scope: which data files each level reads, in order.

Paths are interpolated with the scope (``%{facts.x}``, ``%{trusted.certname}``, ``%{service}``)
but may not call functions. ``paths`` keep their order and include files that do not exist (they
are skipped when read); ``glob``/``globs`` list only the files that exist, in Ruby's ``Dir.glob``
order (sorted per directory, braces expanded first); ``mapped_paths`` give one path per element of
a scope variable.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from renderer import manifest
from renderer.errors import HieraConfigError
from renderer.hiera.config import HieraConfig, Level
from renderer.hiera.interpolate import Resolver, interpolate, scope_value


class Location:
    """One data file of a level, and whether it existed when the hierarchy was resolved."""

    __slots__ = ("level", "path", "exists", "original", "error", "function", "eyaml", "backend")

    def __init__(self, level: str, path: str, exists: bool, original: str = "",
                 error: str | None = None, function: str = "yaml_data",
                 eyaml: dict[str, Any] | None = None, backend: Any = None) -> None:
        self.backend = backend  # a command level's Level.backend, else None
        self.function = function  # the level's data function (Level.function)
        self.eyaml = eyaml  # an eyaml_lookup_key level's options (Level.eyaml), else None
        self.level = level
        self.path = path
        self.exists = exists
        self.original = original  # the path or glob as hiera.yaml declares it (for --explain)
        self.error = error  # the level's Level.error

    def __repr__(self) -> str:
        return f"Location({self.level!r}, {self.path!r}, exists={self.exists})"


def resolve(config: HieraConfig, inv: Resolver) -> list[tuple[Location, ...]]:
    """The locations of every level, highest priority first."""
    return [_locations(level, inv) for level in config.levels]


def _locations(level: Level, inv: Resolver) -> tuple[Location, ...]:
    if level.kind == "none":  # a command level without locations: one call, no path
        return (Location(level.name, "", True, "", None, level.function, None, level.backend),)
    if level.kind == "uris":  # a command level's uris: always "exist", as in Puppet
        return tuple(Location(level.name, interpolate(spec, inv, False), True, spec, None,
                              level.function, None, level.backend) for spec in level.specs)
    datadir = interpolate(level.datadir, inv, False)
    if level.kind == "paths":
        paths = [(os.path.join(datadir, interpolate(spec, inv, False)), spec)
                 for spec in level.specs]
        return tuple(Location(level.name, path, _exists(path), spec, level.error,
                              level.function, level.eyaml, level.backend)
                     for path, spec in paths)
    if level.kind == "globs":
        return tuple(Location(level.name, path, True, spec, level.error, level.function,
                              level.eyaml, level.backend)
                     for spec in level.specs
                     for path in ruby_glob(os.path.join(datadir, interpolate(spec, inv, False)))
                     if not os.path.isdir(path))
    return _mapped(level, datadir, inv)


def _mapped(level: Level, datadir: str, inv: Resolver) -> tuple[Location, ...]:
    variable, key, template = level.specs
    values = scope_value(variable, inv, "mapped_path[0]")
    if values is None or values == "" or values == [] or values == {}:
        return ()
    if type(values) is str:
        values = [values]
    elif type(values) is dict:
        values = [[k, v] for k, v in values.items()]
    elif type(values) is not list:
        raise HieraConfigError(f"hierarchy '{level.name}': mapped_paths variable '{variable}' "
                               f"must be a string, an array or a hash")
    locations = []
    for value in values:
        path = os.path.join(datadir, interpolate(template, _Element(inv, key, value), False))
        locations.append(Location(level.name, path, _exists(path), template, level.error,
                                  level.function, level.eyaml, level.backend))
    return tuple(locations)


class _Element:
    """The resolver a ``mapped_paths`` template is interpolated with: the level's key (``zone``
    in ``[facts.zones, zone, "%{zone}.yaml"]``) names the current element, for this template
    only; every other variable, and the recursion guard, are the lookup's. (Nested lookups are
    delegated too, but a path cannot make one: it may not call functions.)"""

    __slots__ = ("inv", "name", "value")

    def __init__(self, inv: Resolver, name: str, value: Any) -> None:
        self.inv = inv
        self.name = name
        self.value = value

    def variable(self, name: str) -> Any:
        return self.value if name == self.name else self.inv.variable(name)

    def check(self, name: str, resolve_name: Callable[[], Any]) -> Any:
        return self.inv.check(name, resolve_name)

    def interpolation_lookup(self, key: str) -> Any:
        return self.inv.interpolation_lookup(key)


def _exists(path: str) -> bool:
    manifest.note(path)  # a path level's file appearing later is a change
    return os.path.exists(path)


def ruby_glob(pattern: str) -> list[str]:
    """``Dir.glob``: braces expanded in order, each pattern's matches sorted per path segment."""
    import glob  # only hierarchies with glob levels pay for it

    found: list[str] = []
    for expanded in _expand_braces(pattern):
        manifest.note_glob(expanded)  # the directories it looks into: a new match is a change
        found.extend(sorted(glob.glob(expanded, recursive=True),
                            key=lambda path: [part.encode() for part in path.split("/")]))
    return found


def _expand_braces(pattern: str) -> list[str]:
    depth = 0
    start = 0
    for index, char in enumerate(pattern):
        if char == "{":
            if depth == 0:
                start = index
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                head, tail = pattern[:start], pattern[index + 1:]
                return [result for choice in _split_top_level(pattern[start + 1:index])
                        for result in _expand_braces(head + choice + tail)]
    return [pattern]


def _split_top_level(body: str) -> list[str]:
    choices: list[str] = []
    current: list[str] = []
    depth = 0
    for char in body:
        if char == "," and depth == 0:
            choices.append("".join(current))
            current = []
            continue
        depth += (char == "{") - (char == "}")
        current.append(char)
    choices.append("".join(current))
    return choices
