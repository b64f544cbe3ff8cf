"""hiera.yaml version 5: read, validate like Puppet, and turn into hierarchy levels.

Puppet reports most of these mistakes only when the first lookup happens, and then fails every
lookup; render checks them when the file is loaded, so a bad hiera.yaml stops a run before anything
is rendered, with the line of the offending entry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from renderer import yamlcache
from renderer.bounds import read_regular
from renderer.errors import HieraConfigError
from renderer.hiera.interpolate import method_call

FUNCTION_KEYS = ("data_hash", "lookup_key", "data_dig", "hiera3_backend")
LOCATION_KEYS = ("path", "paths", "glob", "globs", "uri", "uris", "mapped_paths")
_LEVEL_KEYS = frozenset(("name", "options", "datadir", "v4_data_hash", *FUNCTION_KEYS,
                         *LOCATION_KEYS))
_DEFAULTS_KEYS = frozenset(("data_hash", "lookup_key", "data_dig", "datadir", "options"))
_TOP_KEYS = frozenset(("version", "defaults", "hierarchy", "plan_hierarchy", "default_hierarchy"))
_BUILTIN_DEFAULTS = {"datadir": "data", "data_hash": "yaml_data"}
_BUILTIN_HIERARCHY = [{"name": "Common", "path": "common.yaml"}]
EYAML_FUNCTION = ("lookup_key", "eyaml_lookup_key")  # renderer.hiera.eyaml
SUPPORTED_FUNCTIONS = (("data_hash", "yaml_data"), ("data_hash", "json_data"), EYAML_FUNCTION)
LAYERS = ("global", "environment", "module")


class Level:
    """One hierarchy entry, before interpolation: where its files are, and how to find them.

    ``kind`` is the location key (``path`` and ``glob`` are stored as one-element ``paths`` and
    ``globs``); ``specs`` are the declared paths or globs, or the ``mapped_paths`` triplet.
    (Plain slotted classes rather than dataclasses: they cost nothing at import.)
    """

    __slots__ = ("name", "kind", "specs", "datadir", "line", "error", "function", "eyaml",
                 "backend")

    def __init__(self, name: str, kind: str, specs: tuple[str, ...], datadir: str,
                 line: int | None, error: str | None = None, function: str = "yaml_data",
                 eyaml: dict[str, Any] | None = None, backend: Any = None) -> None:
        self.function = function  # yaml_data, json_data or eyaml_lookup_key (read as YAML)
        self.name = name
        self.kind = kind
        self.specs = specs
        self.datadir = datadir
        self.line = line
        self.error = error  # why reading any existing file of this level fails, as in Puppet
        self.eyaml = eyaml  # eyaml_lookup_key's options (not yet interpolated), else None
        self.backend = backend  # a command level's hiera.command.Backend, else None

    def __repr__(self) -> str:
        return f"Level({self.name!r}, {self.kind}={list(self.specs)!r}, datadir={self.datadir!r})"


class HieraVersion3Error(HieraConfigError):
    """A Hiera 3 configuration (no version, version 3, or not a hash). Puppet ignores it in an
    environment (no data at all); ``render lookup`` does the same, ``render`` refuses it."""


class HieraConfig:
    __slots__ = ("path", "levels")

    def __init__(self, path: Path, levels: tuple[Level, ...]) -> None:
        self.path = path
        self.levels = levels


def default_config(path: Path) -> HieraConfig:
    """What Puppet reads when a layer's hiera.yaml does not exist: version 5's built-in
    hierarchy, ``<dir>/data/common.yaml``."""
    return HieraConfig(path, (Level("Common", "paths", ("common.yaml",),
                                    os.path.join(path.parent, "data"), None),))


class _Checker:
    """Validation with the hiera.yaml path and the line of the node being checked."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str, node: Any = None) -> HieraConfigError:
        return HieraConfigError(message, path=self.path, line=_line(node))

    def mapping(self, value: Any, node: Any, what: str) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{what} must be a hash", node)
        return value

    def string(self, value: Any, node: Any, what: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(f"{what} must be a non-empty string", node)
        return value

    def strings(self, value: Any, node: Any, what: str, size: int | None = None) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or (size is not None and len(value) != size):
            count = f"exactly {size}" if size else "at least one"
            raise self.fail(f"{what} must be an array of {count} non-empty strings", node)
        return tuple(self.string(item, node, f"{what} element") for item in value)


# The file's node tree, kept for the lines of errors as plain lists that renderer.yamlcache
# stores: [MAPPING, line, [[key or None, node], ...]], [SEQUENCE, line, [node, ...]], [SCALAR, line]
MAPPING, SEQUENCE, SCALAR = "mapping", "sequence", "scalar"


def _tree(node: Any) -> list[Any]:
    """The line tree of a PyYAML node (0-based lines, as PyYAML's marks)."""
    import yaml

    line = node.start_mark.line
    if isinstance(node, yaml.MappingNode):
        return [MAPPING, line, [[k.value if isinstance(k, yaml.ScalarNode) else None, _tree(v)]
                                for k, v in node.value]]
    if isinstance(node, yaml.SequenceNode):
        return [SEQUENCE, line, [_tree(item) for item in node.value]]
    return [SCALAR, line]


def _line(node: Any) -> int | None:
    return node[1] + 1 if node is not None else None


def _child(node: Any, key: str) -> Any:
    """The value node for ``key`` in a mapping node (for its line), or the mapping itself."""
    if node is not None and node[0] == MAPPING:
        for key_value, value_node in node[2]:
            if key_value == key:
                return value_node
    return node


def _items(node: Any) -> list[Any]:
    return node[2] if node is not None and node[0] == SEQUENCE else []


def _parse(path: Path, raw: bytes) -> list[Any]:
    """``[line tree, value]`` of the first document, typed as Psych types it."""
    from renderer.hiera.psych import compose  # PyYAML: only for a file not parsed before

    root, config = compose(raw, path, HieraConfigError)
    return [None if root is None else _tree(root), config]


def load_config(path: Path, layer: str = "environment",
                backends: dict[str, str] | None = None) -> HieraConfig:
    """Read and validate ``path``; every problem is a HieraConfigError naming the file and line.

    ``backends`` says what to do with a level whose backend render cannot run (by level name):
    ``skip`` leaves it out (the caller warns: Puppet would consult it)."""
    raw = read_regular(path, HieraConfigError)  # a FIFO is refused, never waited on
    root, config = yamlcache.parsed("hiera.yaml", raw, lambda: _parse(path, raw))
    check = _Checker(path)
    if not isinstance(config, dict):  # Puppet falls back to Hiera 3's defaults: no data
        raise HieraVersion3Error("not a hiera.yaml: the file must be a hash with 'version: 5'",
                                 path=path, line=_line(root))
    version = config.get("version")
    if version is None or version in (3, "3") and type(version) is not bool:
        shown = "3" if version else "missing (which means 3)"
        raise HieraVersion3Error(f"hiera.yaml version {shown} is not supported; render reads "
                                 "version 5", path=path,
                                 line=_line(_child(root, "version")))
    if type(version) is not int or version != 5:
        shown = "missing (which means 3)" if version is None else repr(version)
        raise check.fail(f"hiera.yaml version {shown} is not supported; render reads version 5",
                         _child(root, "version"))
    for key in config:
        if key not in _TOP_KEYS:
            raise check.fail(f"unknown key '{key}'", _child(root, key))
    if "default_hierarchy" in config:
        where = ("render does not read a module's 'default_hierarchy'" if layer == "module" else
                 "'default_hierarchy' is only allowed in the module layer")
        raise check.fail(where, _child(root, "default_hierarchy"))
    defaults = _defaults(check, config, _child(root, "defaults"))
    for plan_key in ("plan_hierarchy", "hierarchy"):
        if config.get(plan_key) is not None and not isinstance(config[plan_key], list):
            raise check.fail(f"'{plan_key}' must be an array", _child(root, plan_key))
    entries = config.get("hierarchy")
    if entries is None:  # absent or ``~``: Puppet's ``||=`` gives the built-in hierarchy
        entries = _BUILTIN_HIERARCHY
    nodes = _items(_child(root, "hierarchy")) or [None] * len(entries)
    levels: list[Level] = []
    seen: dict[str, int | None] = {}
    for entry, node in zip(entries, nodes):
        level = _level(check, entry, node, defaults, path.parent, backends or {})
        if level is None:  # skipped by the operator
            continue
        if level.name in seen:
            first = seen[level.name]
            also = f" First defined at line {first}." if first else ""
            raise check.fail(f"Hierarchy name '{level.name}' defined more than once.{also}", node)
        seen[level.name] = level.line
        levels.append(level)
    for entry, node in zip(config.get("plan_hierarchy") or [],
                           _items(_child(root, "plan_hierarchy"))):
        # validated for shape only: lookups never read it (Bolt plans do), so any backend goes
        _level(check, entry, node, defaults, path.parent, None)
    return HieraConfig(path, tuple(levels))


def _defaults(check: _Checker, config: dict[Any, Any], node: Any) -> dict[Any, Any]:
    """``defaults`` replaces the built-in defaults entirely (then no data_hash is implied)."""
    if config.get("defaults") is None:  # Puppet: ``config['defaults'] ||= built-in``
        return _BUILTIN_DEFAULTS
    defaults = check.mapping(config["defaults"], node, "'defaults'")
    for key, value in defaults.items():
        if key not in _DEFAULTS_KEYS:
            raise check.fail(f"'defaults' has unknown key '{key}'", _child(node, key))
        if key == "options":
            _options(check, value, _child(node, key), "defaults")
        else:
            check.string(value, _child(node, key), f"defaults '{key}'")
    if sum(key in defaults for key in FUNCTION_KEYS) > 1:
        raise check.fail("Only one of data_hash, lookup_key, data_dig can be defined in defaults",
                         node)
    return defaults


def _options(check: _Checker, options: Any, node: Any, where: str) -> None:
    check.mapping(options, node, f"'options' in {where}")
    for reserved in ("path", "uri"):
        if reserved in options:
            raise check.fail(f"Option key '{reserved}' used in {where} is reserved by Puppet", node)


def _level(check: _Checker, entry: Any, node: Any, defaults: dict[Any, Any],
           root: Path, backends: dict[str, str] | None) -> Level | None:
    """The level of one entry; None when the operator skips it. ``backends`` None: a
    plan_hierarchy entry, checked for shape and never read."""
    entry = check.mapping(entry, node, "a hierarchy entry")
    name = check.string(entry.get("name"), _child(node, "name"), "hierarchy entry 'name'")
    where = f"hierarchy '{name}'"
    line = _line(node)
    for key in entry:
        if key not in _LEVEL_KEYS:
            raise check.fail(f"{where} has unknown key '{key}'", _child(node, key))
    functions = [key for key in (*FUNCTION_KEYS, "v4_data_hash") if key in entry]
    if len(functions) > 1:
        raise check.fail(f"Only one of data_hash, lookup_key, data_dig, hiera3_backend can be "
                         f"defined in {where}", node)
    if functions:
        kind = functions[0]
        function = (kind, check.string(entry[kind], _child(node, kind), f"{where} '{kind}'"))
    else:
        inherited = next((key for key in FUNCTION_KEYS if key in defaults), None)
        if inherited is None:
            raise check.fail(f"One of data_hash, lookup_key, data_dig, hiera3_backend must be "
                             f"defined in {where}", node)
        kind = inherited
        function = (kind, defaults[kind])
    command = None
    if backends is not None and function not in SUPPORTED_FUNCTIONS:
        how = backends.get(name)
        if how == "skip":
            return None
        if how is None:
            raise check.fail(f"{where} uses {function[0]}: {function[1]}, a backend render "
                             "cannot run (it reads data_hash: yaml_data and json_data, and "
                             f"lookup_key: eyaml_lookup_key); --backend '{name}=skip' leaves "
                             f"the level out, --backend '{name}=command:PROG' reads it from "
                             "a command", _child(node, function[0]))
        from renderer.hiera.command import KINDS, parse

        command = parse(how)
        if command is None or function[0] not in KINDS:
            raise check.fail(f"{where} uses {function[0]}: {function[1]}: --backend "
                             f"'{name}=command:PROG' reads data_hash and lookup_key levels "
                             f"only; --backend '{name}=skip' leaves it out",
                             _child(node, function[0]))
    eyaml = function == EYAML_FUNCTION
    if "options" in entry:
        _options(check, entry["options"], _child(node, "options"), where)
    locations = [key for key in LOCATION_KEYS if key in entry]
    if len(locations) > 1:
        raise check.fail(f"Only one of path, paths, glob, globs, uri, uris, mapped_paths can be "
                         f"defined in {where}", node)
    if backends is None:
        return None
    if command is None and (not locations or locations[0] in ("uri", "uris")):
        raise check.fail(f"{where}: one of 'path', 'paths', 'glob', 'globs' or 'mapped_paths' "
                         f"must be declared in hiera.yaml when using {function[1]}", node)
    if not locations and command is not None:  # no locations: called once, with options
        return _command_level(name, function, line, entry.get("options",
                                                            defaults.get("options", {})),
                              command, check, node, where)
    kind = locations[0]
    value, value_node = entry[kind], _child(node, kind)
    if kind in ("path", "glob", "uri"):
        specs: tuple[str, ...] = (check.string(value, value_node, f"{where} '{kind}'"),)
        kind += "s"
    else:
        specs = check.strings(value, value_node, f"{where} '{kind}'",
                              3 if kind == "mapped_paths" else None)
    datadir = entry.get("datadir", defaults.get("datadir", "data"))
    check.string(datadir, _child(node, "datadir"), f"{where} 'datadir'")
    options = entry.get("options", defaults.get("options", {}))
    interpolated = specs[2:] if kind == "mapped_paths" else specs
    for text in (*interpolated, datadir, *_strings(options)):
        call = method_call(text)
        if call:  # Puppet fails every lookup with this; render fails at load
            raise check.fail(f"{where}: Interpolation using method syntax is not allowed in this "
                             f"context: {call}", node)
    # yaml_data and json_data accept no options but the path: Puppet fails when it reads a file
    error = (f"'{function[1]}' one of 'path', 'paths' 'glob', 'globs' or 'mapped_paths' must be "
             f"declared in hiera.yaml when using this data_hash function (hierarchy '{name}' "
             f"has options, which {function[1]} does not take)") \
        if options and not eyaml and command is None else None
    backend = None
    if command is not None:
        from renderer.hiera.command import Backend

        backend = Backend(command, function[0], function[1], dict(options),
                          "uri" if kind == "uris" else "path")
    return Level(name, kind, specs, os.path.join(root, datadir), line, error, function[1],
                 dict(options) if eyaml else None, backend)


def _command_level(name: str, function: tuple[str, str], line: int | None, options: Any,
                   command: tuple[str, ...], check: _Checker, node: Any, where: str) -> Level:
    from renderer.hiera.command import Backend

    for text in _strings(options):
        call = method_call(text)
        if call:
            raise check.fail(f"{where}: Interpolation using method syntax is not allowed in "
                             f"this context: {call}", node)
    return Level(name, "none", (), "", line, None, function[1], None,
                 Backend(command, function[0], function[1], dict(options), ""))


def _strings(value: Any) -> list[str]:
    if type(value) is str:
        return [value]
    if type(value) is list:
        return [text for item in value for text in _strings(item)]
    if type(value) is dict:
        return [text for item in (*value, *value.values()) for text in _strings(item)]
    return []
