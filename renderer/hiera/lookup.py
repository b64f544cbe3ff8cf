"""The lookup itself: Puppet's ``Lookup.lookup`` and ``LookupAdapter`` for one hiera.yaml.

A lookup of ``a.b`` finds the options for the root ``a`` (lookup_options hash-merged from every
level), reads ``a`` level by level (each value interpolated on its own), merges with the explicit
strategy or else the one from lookup_options, digs ``b`` out of the merged value, and applies
``convert_to``. Lookups inside interpolation go through the same path and share one stack of names
being resolved, which is how loops are detected.

Layers, as Puppet's ``LookupAdapter``: the global hiera.yaml (Puppet's ``hiera_config``), the
environment's, and for a key ``mod::x`` the hiera.yaml of module ``mod`` (first in the modulepath),
merged in that order with the lookup's strategy. lookup_options: the global layer's hash-merged
over the environment's (global wins), then those over the module's (which may only name keys of
its module), as ``retrieve_lookup_options`` does. Caches: parsed data files live as long as
the Hiera object (one run); what depends on the scope is kept per Scope object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from renderer.errors import (
    HieraConfigError,
    HieraDataError,
    HieraError,
    HieraRecursionError,
    KeySyntaxError,
    LookupNotFound,
)
from renderer.hiera import merge as merging
from renderer.hiera.config import HieraConfig, load_config
from renderer.hiera.data import DataFile, load_data_file
from renderer.hiera.hierarchy import Location, resolve
from renderer.hiera.interpolate import interpolate
from renderer.hiera.keys import MISSING, dig, split_key
from renderer.hiera.layers import check_module_options, find_module, load_global, module_name
from renderer.hiera.options import Options as _Options
from renderer.hiera.options import compile_options, shared
from renderer.hiera.options import option as _option
from renderer.hiera.options import sensitive as _sensitive
from renderer.log import warning
from renderer.scope import Scope

LOOKUP_OPTIONS = "lookup_options"

Explain = Callable[[str, dict[str, Any]], None]
"""``explain(event, details)``, for ``render lookup --explain``: "search" when a lookup starts
(lookup_options and interpolated lookups nest inside it), "strategy" once its merge is known,
"location" for each data file consulted, "result" when it ends (not when it fails). Details carry
``secret`` when the key's lookup_options convert it to Sensitive."""


class _NotGiven:
    __slots__ = ()
    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()


class _ScopeState:
    """What one scope has resolved: level locations and compiled lookup_options."""

    __slots__ = ("scope", "levels", "options")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.levels: dict[int, list[tuple[Location, ...]]] = {}  # by id() of the layer's config
        self.options: dict[str | None, _Options] = {}  # by module name (None: no module)


class Hiera:
    """The environment's hiera.yaml (``config``), the global one and the modules' ones, and
    their data, looked up with any number of scopes."""

    def __init__(self, config: HieraConfig, global_config: HieraConfig | None = None,
                 modulepath: tuple[Path, ...] = (), backends: dict[str, str] | None = None) -> None:
        self.config = config
        self.global_config = global_config
        self.modulepath = modulepath
        self.backends = backends or {}
        self._modules: dict[str, HieraConfig | None] = {}
        self._files: dict[tuple[str, str], DataFile | HieraError] = {}
        self._states: dict[int, _ScopeState] = {}
        self._options: dict[tuple[Any, ...], _Options] = {}  # by renderer.hiera.options.shared
        self._warned: set[str] = set()
        self.decrypted: dict[tuple[str, str, str], tuple[Any, bool]] = {}  # hiera.eyaml's
        self.secrets: set[str] = set()  # eyaml's and commands' plaintexts, for the masker
        self.sealed: set[str] | None = None  # render preview: placeholders of unknowable tokens
        self.command_values: dict[tuple[Any, ...], Any] = {}  # renderer.hiera.command's answers
        self.last_secret = False  # the last lookup's value holds a decrypted or command value

    @classmethod
    def load(cls, config_path: Path, global_path: Path | None = None,
             modulepath: tuple[Path, ...] = (),
             backends: dict[str, str] | None = None) -> "Hiera":
        """``global_path`` None: no global layer; a missing file is Puppet's built-in one."""
        global_config = None
        if global_path is not None:
            global_config = load_global(Path(global_path).absolute(), backends)
        return cls(load_config(Path(config_path).absolute(), "environment", backends),
                   global_config, tuple(Path(p).absolute() for p in modulepath), backends)

    def layers(self, root: Any) -> list[HieraConfig]:
        """The configs a root key is looked up in, in Puppet's order (PROVIDER_STACK)."""
        layers = [self.config] if self.global_config is None else [self.global_config,
                                                                   self.config]
        name = module_name(root)
        module = self.module_config(name) if name is not None else None
        return layers if module is None else [*layers, module]

    def module_config(self, name: str) -> HieraConfig | None:
        """The hiera.yaml of module ``name``; None: no module layer."""
        if name not in self._modules:
            self._modules[name] = find_module(name, self.modulepath, self.backends,
                                              self.warn_once)
        return self._modules[name]

    def lookup(self, key: str, scope: Scope, merge: str | dict[Any, Any] | None = None,
               default: Any = NOT_GIVEN, *, explain: Explain | None = None) -> Any:
        """The value of ``key``; ``default`` when there is none, else LookupNotFound."""
        value = (inv := _Invocation(self, self._state(scope), explain)).lookup(key, merge)
        self.last_secret = inv.decrypted  # renderer.bundle keeps such a value Sensitive
        if value is not MISSING:
            return value
        if default is NOT_GIVEN:
            raise LookupNotFound(key)
        return default

    def lookup_options(self, key: str, scope: Scope) -> dict[Any, Any]:
        """The lookup_options that apply to ``key`` (its root, for a dotted key)."""
        inv = _Invocation(self, self._state(scope), None)
        options = inv.options_for(inv.root_key(key))
        return dict(options) if type(options) is dict else {}

    def keys_with_prefix(self, prefix: str, scope: Scope) -> list[str]:
        """Top-level keys starting with ``prefix`` in any data file of ``scope``'s hierarchy.

        Hiera itself never lists keys; render needs it to find the INI overrides of a service
        (``<service>::config::<file>``) and to report one for a file the service lacks.
        """
        found: set[str] = set()
        inv = _Invocation(self, self._state(scope), None)
        name = module_name(prefix)
        for config in self.layers(prefix):  # a module's data: only its namespace's keys count
            module = name is not None and config is self.module_config(name)
            wanted = f"{name}::" if module else prefix
            for locations in inv.levels(config):
                for location in locations:
                    if location.backend is not None and location.exists:  # implies wanted
                        from renderer.hiera import command
                        found.update(command.keys_with_prefix(self, inv, location, prefix))
                    elif location.exists:
                        data = self.data_file(location.path, location.function)
                        found.update(key for key in data.keys_with_prefix(prefix)
                                     if key.startswith(wanted))
        return sorted(found)

    def _state(self, scope: Scope) -> _ScopeState:
        # Keyed by identity: Scope holds dicts, so it is not hashable. The state keeps the scope
        # alive, so its id cannot be reused by another scope during the run.
        state = self._states.get(id(scope))
        if state is None or state.scope is not scope:
            state = self._states[id(scope)] = _ScopeState(scope)
        return state

    def data_file(self, path: str, function: str = "yaml_data") -> DataFile:
        """The parsed file at ``path``, read once per run (a failure is remembered too)."""
        entry = self._files.get((path, function))
        if entry is None:
            try:
                entry = load_data_file(path, function)
            except HieraDataError as exc:
                entry = exc
            self._files[path, function] = entry
        if isinstance(entry, HieraError):
            raise HieraDataError(entry.message, path=entry.path, line=entry.line,
                                 column=entry.column)
        return entry

    def warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            warning(__name__, "%s", message)


class _Invocation:
    """One top-level lookup: the scope and the names being resolved (for loops). It is the
    ``Resolver`` its interpolations and hierarchy resolution call back."""

    __slots__ = ("hiera", "state", "scope", "stack", "explain", "decrypted")

    def __init__(self, hiera: Hiera, state: _ScopeState, explain: Explain | None) -> None:
        self.hiera = hiera
        self.state = state
        self.scope = state.scope
        self.stack: list[str] = []
        self.explain = explain
        self.decrypted = False  # an eyaml token was decrypted: --explain masks what follows

    # --- the lookup ------------------------------------------------------------------------------

    def lookup(self, key: str, merge: Any) -> Any:
        """``LookupAdapter#lookup``: the value, or MISSING."""
        explain = self.explain
        if explain:
            explain("search", {"key": key})
        if key == LOOKUP_OPTIONS or key.startswith(LOOKUP_OPTIONS + "."):
            if explain:  # reserved: never found as data
                explain("result", {"key": key, "found": False, "value": MISSING,
                                   "secret": False, "reserved": True})
            return MISSING
        segments = self.split(key)
        options = self.options_for(segments[0])
        source = "argument"
        if merge is None:
            merge = _option(options, "merge")
            source = "default" if merge is None else LOOKUP_OPTIONS
        strategy = merging.strategy(merge)
        secret = type(options) is dict and _sensitive(options.get("convert_to"))
        if explain:
            explain("strategy", {"key": key, "merge": strategy, "source": source})
        if len(segments) > 1 and type(strategy) is merging.Strategy and not explain:
            value = self.check(key, lambda: self.search_dug(key, segments))
        else:
            value = self.check(key, lambda: self.search(segments[0], strategy, secret))
            if value is not MISSING:
                value = strategy.convert(value)  # Puppet's provider stack: global, env, module
                if len(segments) > 1:
                    value = dig(key, segments[1:], value)
        convert_to = None
        if value is not MISSING:
            convert_to = _option(options, "convert_to")
            if convert_to is not None:
                from renderer.hiera.convert import convert  # only data that uses convert_to

                value = convert(value, convert_to, key)
        if explain:
            explain("result", {"key": key, "merge": strategy, "found": value is not MISSING,
                               "value": value, "secret": secret or self.decrypted,
                               "convert_to": convert_to,
                               "dug": segments[1:]})
        return value

    def search(self, root: str, strategy: merging.Strategy, secret: bool = False,
               layers: list[HieraConfig] | None = None) -> Any:
        """The merged value of ``root`` over every layer and level, each location's value
        interpolated."""
        return strategy.lookup(
            self.hiera.layers(root) if layers is None else layers,
            lambda config: strategy.lookup(self.levels(config), lambda locations: strategy.lookup(
                locations, lambda location: self.read(config, location, root, secret))))

    def search_dug(self, key: str, segments: list[Any]) -> Any:
        """A first-found ``a.b.c``, as ``search`` then ``dig`` give it, without interpolating
        (copying) all of ``a`` for each lookup when nothing in it is interpolated: a lookup of
        ``network::containers.<machine>`` then costs the same with 1,000 containers as with 10."""
        root = segments[0]
        for config in self.hiera.layers(root):
            for locations in self.levels(config):
                for location in locations:
                    if not location.exists:
                        continue
                    if location.error:
                        raise HieraConfigError(location.error, path=config.path)
                    if location.backend is not None:  # a command level
                        if (value := self.read(config, location, root, False)) is not MISSING:
                            return dig(key, segments[1:], value)
                        continue
                    data_file = self.hiera.data_file(location.path, location.function)
                    if root not in data_file.data:
                        continue
                    if location.eyaml is not None or not data_file.plain(root):
                        return dig(key, segments[1:], self.read(config, location, root, False))
                    found = dig(key, segments[1:], data_file.value(root))
                    return found if found is MISSING else interpolate(found, self, True)
        return MISSING

    def read(self, config: HieraConfig, location: Location, root: str, secret: bool) -> Any:
        found = MISSING
        decrypted = False
        if location.exists:
            if location.error:
                raise HieraConfigError(location.error, path=config.path)
            if location.backend is not None:  # renderer.hiera.command: every value a secret
                from renderer.hiera import command  # only a site with command levels needs it
                found = command.read(self.hiera, self, location, root)
                self.decrypted = (decrypted := found is not MISSING) or self.decrypted
            elif root in (data_file := self.hiera.data_file(location.path,
                                                            location.function)).data:
                value = data_file.value(root)
                if location.eyaml is not None:
                    from renderer.hiera.eyaml import level_value

                    value, decrypted = level_value(self.hiera, self, location, root, value)
                    self.decrypted = self.decrypted or decrypted
                found = interpolate(value, self, True)
        if self.explain:
            self.explain("location", {"key": root, "level": location.level,
                                      "path": location.path, "original": location.original,
                                      "exists": location.exists, "found": found is not MISSING,
                                      "value": found, "secret": secret or decrypted})
        return found

    def levels(self, config: HieraConfig) -> list[tuple[Location, ...]]:
        levels = self.state.levels.get(id(config))
        if levels is None:
            levels = self.state.levels[id(config)] = resolve(config, self)
        return levels

    # --- lookup_options --------------------------------------------------------------------------

    def options_for(self, root: Any) -> Any:
        """The options for a root key: its exact entry, else the first pattern that matches."""
        name = module_name(root) if type(root) is str else None
        if name is not None and self.hiera.module_config(name) is None:
            name = None  # no module layer: the environment's options, compiled once
        compiled = self.state.options.get(name)
        if compiled is None:
            compiled = self.state.options[name] = shared(self, name, self._compile_options)
        exact, patterns = compiled
        options = exact.get(root)
        if options is not None:
            return options
        if type(root) is str:
            for pattern, options in patterns:
                if pattern.search(root):
                    return options
        return None

    def _layer_options(self, config: HieraConfig | None, module: str | None) -> Any:
        """One layer's lookup_options (hash-merged over its levels), checked as Puppet's
        ``validate_lookup_options`` checks them; MISSING when it has none."""
        if config is None:
            return MISSING
        found = self.check(LOOKUP_OPTIONS, lambda: self.search(LOOKUP_OPTIONS, merging.HASH,
                                                               layers=[config]))
        if found is MISSING:
            return found
        if type(found) is not dict:
            raise HieraDataError("value of lookup_options must be a hash", path=config.path)
        if module is not None:
            check_module_options(found, module, config.path)
        return found

    def _compile_options(self, module: str | None) -> _Options:
        explain = self.explain
        if explain:
            explain("search", {"key": LOOKUP_OPTIONS})
            explain("strategy", {"key": LOOKUP_OPTIONS, "merge": merging.HASH, "source": None})
        hiera = self.hiera
        merged = self._layer_options(hiera.global_config, None)
        env = self._layer_options(hiera.config, None)
        if merged is MISSING or env is MISSING:
            merged = env if merged is MISSING else merged
        else:  # Puppet: merge_strategy.merge(global, environment): the global layer wins
            merged = merging.HASH.merge(merged, env)
        if module is not None:
            own = self._layer_options(hiera.module_config(module), module)
            if merged is MISSING or own is MISSING:
                merged = own if merged is MISSING else merged
            else:  # the environment's (with the global's) over the module's
                merged = merging.HASH.merge(merged, own)
        if explain:
            explain("result", {"key": LOOKUP_OPTIONS, "merge": merging.HASH,
                               "found": merged is not MISSING, "value": merged, "secret": False})
        return ({}, []) if merged is MISSING else compile_options(merged)

    # --- services for interpolation and hierarchy resolution -------------------------------------

    def check(self, name: str, resolve_name: Callable[[], Any]) -> Any:
        """Run ``resolve_name`` with ``name`` on the stack; a name already there is a loop."""
        if name in self.stack:
            raise HieraRecursionError(f"Recursive lookup detected in [{', '.join(self.stack)}]")
        self.stack.append(name)
        try:
            return resolve_name()
        finally:
            self.stack.pop()

    def interpolation_lookup(self, key: str) -> Any:
        """``%{lookup('k')}``, ``hiera`` and ``alias``: a full lookup, ``""`` when not found."""
        value = self.lookup(key, None)
        return "" if value is MISSING else value

    def variable(self, name: str) -> Any:
        name = name.removeprefix("::")
        if not self.scope.has_top(name):
            self.hiera.warn_once(f"Undefined variable '{name}'; interpolated as an empty string")
        return self.scope.top(name)

    def split(self, key: str) -> list[Any]:
        segments = split_key(key, lambda problem: KeySyntaxError(f"{problem} in key: '{key}'"))
        if type(segments[0]) is not str:
            raise KeySyntaxError(f"the first segment of key '{key}' is a number")
        return segments

    def root_key(self, key: str) -> str:
        return self.split(key)[0]
