"""Hieradata files: read once per run, typed like Puppet, checked when a key is used.

Puppet's ``yaml_data`` treats a file that is empty, holds only comments or ``~``, or is not a hash
as empty (with a warning), and a file it cannot parse as fatal for every lookup. Values are checked
against Puppet's ``RichData`` only when their key is looked up, so a Symbol buried under one key
breaks that key alone; we keep the same granularity and remember each verdict.
"""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any

from renderer import yamlcache
from renderer.bounds import read_regular
from renderer.errors import HieraDataError
from renderer.hiera.ruby import FloatKey, Symbol
from renderer.log import warning

_OK = object()


class DataFile:
    """One parsed data file: its top-level hash and the per-key validity verdicts."""

    __slots__ = ("path", "data", "_verdicts", "_sorted", "_plain")

    def __init__(self, path: str, data: dict[Any, Any]) -> None:
        self.path = path
        self.data = data
        self._verdicts: dict[str, object] = {}
        self._sorted: list[str] | None = None
        self._plain: dict[str, bool] = {}

    def plain(self, key: str) -> bool:
        """Whether nothing in the value of ``key`` (keys included) is interpolated: then its
        interpolation is a copy, and a dotted lookup may dig first and copy only what it dug."""
        plain = self._plain.get(key)
        if plain is None:
            plain = self._plain[key] = not _interpolated(self.data[key])
        return plain

    def keys_with_prefix(self, prefix: str) -> list[str]:
        """The top-level string keys starting with ``prefix``: the keys are sorted once per
        file, so each service's search costs a bisection, not a scan of every key."""
        if self._sorted is None:
            self._sorted = sorted(key for key in self.data if type(key) is str)
        keys = self._sorted
        start = bisect.bisect_left(keys, prefix)
        end = start
        while end < len(keys) and keys[end].startswith(prefix):
            end += 1
        return keys[start:end]

    def value(self, key: str) -> Any:
        """The raw value of a top-level key; raises HieraDataError if Puppet would reject it."""
        value = self.data[key]
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = _rich_data_problem(value) or _OK
        if verdict is not _OK:
            raise HieraDataError(
                f"Value for key '{key}', in hash returned from data_hash function 'yaml_data', "
                f"when using location '{self.path}', has wrong type, expects "
                f"Puppet::LookupValue, got {verdict}", path=self.path)
        return value


def _rich_data_problem(value: Any) -> str | None:
    """Why ``value`` is not Puppet ``RichData`` (a Symbol; a key neither string nor number)."""
    kind = type(value)
    if kind is Symbol:
        return "Runtime[ruby, 'Symbol']"
    if kind is list:
        return next(filter(None, map(_rich_data_problem, value)), None)
    if kind is dict:
        for key, item in value.items():
            if type(key) not in (str, int, float, FloatKey):
                return f"a Hash with a {'Boolean' if type(key) is bool else 'Undef'} key"
            problem = _rich_data_problem(item)
            if problem:
                return problem
    return None


def _interpolated(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return "%{" in value
    if kind is list:
        return any(map(_interpolated, value))
    if kind is dict:
        return any(_interpolated(k) or _interpolated(v) for k, v in value.items())
    return False


def load_data_file(path: str, function: str = "yaml_data") -> DataFile:
    """Parse one data file the way Puppet's ``yaml_data`` (or ``json_data``; eyaml_lookup_key
    reads YAML) does."""
    raw = read_regular(path, HieraDataError)  # a FIFO a glob level matches is refused
    if function == "json_data":
        return _json_file(path, raw)
    data = yamlcache.parsed("hieradata", raw, lambda: _parse(path, raw))
    if not isinstance(data, dict):
        warning(__name__, "%s: file does not contain a valid yaml hash; using it as empty",
                path)
        return DataFile(path, {})
    return DataFile(path, data)


def _parse(path: str, raw: bytes) -> Any:
    """The value of the first document, typed as Psych types it (renderer.hiera.psych)."""
    from renderer.hiera.psych import compose  # PyYAML: only for a file not parsed before

    return compose(raw, Path(path), HieraDataError)[1]


def _json_file(path: str, raw: bytes) -> DataFile:
    """``json_data``: JSON text that must be a hash (Puppet's data_hash type check); a parse
    error fails every lookup that reads the file, as in Puppet."""
    import json

    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HieraDataError(f"Unable to parse ({path}): {exc}", path=path) from exc
    if not isinstance(data, dict):
        raise HieraDataError(f"Value returned from data_hash function 'json_data', when using "
                             f"location '{path}', has wrong type, expects a Hash value, got "
                             f"{type(data).__name__}", path=path)
    return DataFile(path, data)
