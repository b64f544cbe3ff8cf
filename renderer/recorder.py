"""Recorder: the hieradata a service reads, with where each value came from (``render show``).

A ``Recorder`` stands in for the run's ``Hiera`` (same ``lookup``, ``lookup_options`` and
``keys_with_prefix``), so the pipeline's own steps (bind, render, overrides) drive it and no
second resolver can disagree with the run. Every lookup passes the engine's explain hook
(renderer.hiera.lookup.Explain); the events say which merge was used and which level and data
file held a value. Lines are found afterwards, by composing the data file again: the engine
keeps no node tree, and a run that is not ``show`` should not pay for one.

``--set KEY=VALUE`` values win over every level (like paunch's ``--overrides``): a hash is
merged on top of a hash the data gives with a hash or deep merge, anything else replaces it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from renderer.hiera import NOT_GIVEN, Hiera, Sensitive
from renderer.hiera.lookup import LOOKUP_OPTIONS
from renderer.scope import Scope

SET_LEVEL = "--set"


class Source(NamedTuple):
    """One level's contribution to a value."""

    level: str
    path: str | None
    line: int | None
    value: Any


class Record:
    """One key the service looked up, as the run resolved it."""

    __slots__ = ("key", "merge", "found", "value", "sources", "via", "secret")

    def __init__(self, key: str, via: str) -> None:
        self.key = key
        self.via = via
        self.merge = "first"
        self.found = False
        self.value: Any = None
        self.sources: list[Source] = []
        self.secret = False


def unquoted(key: str) -> str:
    """``"a::b.c"`` -> ``a::b.c``: a ``--set`` key matches the key as render looks it up."""
    return key[1:-1] if len(key) > 1 and key[0] == key[-1] == '"' else key


def deep(low: Any, high: Any) -> Any:
    """``high`` merged on top of ``low``, hashes key by key (``--set`` over the data)."""
    if isinstance(low, dict) and isinstance(high, dict):
        merged = dict(low)
        for key, value in high.items():
            merged[key] = deep(low.get(key), value) if key in low else value
        return merged
    return high


class Recorder:
    """A Hiera that records every lookup; ``phase`` names the step asking (for ``via``)."""

    def __init__(self, hiera: Hiera, sets: dict[str, Any] | None = None) -> None:
        self.hiera = hiera
        self.sets = dict(sets or {})
        self.records: dict[tuple[str, str], Record] = {}
        self.phase = "service.yaml"
        self._open: list[Record | None] = []

    # --- the Hiera interface the pipeline uses --------------------------------------------------

    def lookup(self, key: str, scope: Scope, merge: str | dict[Any, Any] | None = None,
               default: Any = NOT_GIVEN, *, explain: Any = None) -> Any:
        self._open = []
        wanted = unquoted(key)
        if wanted in self.sets:
            return self._set(key, wanted, scope, merge)
        parts = segments(key)
        if len(parts) > 1 and parts[0] in self.sets:  # a dotted lookup into a --set key
            return self._dig_set(key, parts, scope, default)
        return self.hiera.lookup(key, scope, merge=merge, default=default,
                                 explain=self._event if explain is None else self._both(explain))

    def _both(self, explain: Any) -> Any:
        """The caller's explain hook (an override error locating its line) and the record's."""
        def both(event: str, details: dict[str, Any]) -> None:
            self._event(event, details)
            explain(event, details)
        return both

    def lookup_options(self, key: str, scope: Scope) -> dict[Any, Any]:
        return self.hiera.lookup_options(key, scope)

    def keys_with_prefix(self, prefix: str, scope: Scope) -> list[str]:
        found = set(self.hiera.keys_with_prefix(prefix, scope))
        found.update(k for k in self.sets if k.startswith(prefix))
        return sorted(found)

    # --- --set ----------------------------------------------------------------------------------

    def _set(self, key: str, wanted: str, scope: Scope, merge: Any) -> Any:
        from renderer.hiera.lookup import _sensitive

        value = self.sets[wanted]
        under = self.hiera.lookup(key, scope, merge=merge, default=NOT_GIVEN_SET,
                                  explain=self._event)
        record = self._last(key)
        if isinstance(under, Sensitive):
            under = under.value
        if under is not NOT_GIVEN_SET and record is not None and record.merge in ("hash", "deep"):
            value = deep(under, value)
        if _sensitive(self.hiera.lookup_options(key, scope).get("convert_to")):
            value = Sensitive(value)
        if record is not None:
            if not record.sources or record.sources[0].level != SET_LEVEL:
                record.sources.insert(0, Source(SET_LEVEL, None, None, self.sets[wanted]))
            record.found, record.value = True, value
            record.secret = record.secret or isinstance(value, Sensitive)
        return value

    def _dig_set(self, key: str, parts: tuple[Any, ...], scope: Scope, default: Any) -> Any:
        from renderer.errors import LookupNotFound
        from renderer.hiera.keys import MISSING, dig

        root = str(parts[0])
        quoted = root if "." not in root else f'"{root}"'
        value = self._set(quoted, root, scope, None)
        found = dig(key, list(parts[1:]), value.value if isinstance(value, Sensitive) else value)
        record = Record(key, self.phase)
        record.found, record.secret = found is not MISSING, isinstance(value, Sensitive)
        record.value = Sensitive(found) if record.secret and record.found else found
        record.sources.append(Source(SET_LEVEL, None, None, found))
        self.records.setdefault((key, record.merge), record)
        if found is not MISSING:
            return record.value
        if default is NOT_GIVEN:
            raise LookupNotFound(key)
        record.value = None
        return default

    def _last(self, key: str) -> Record | None:
        for (name, _), record in reversed(self.records.items()):
            if name == key:
                return record
        return None

    # --- explain events -------------------------------------------------------------------------

    def _event(self, event: str, details: dict[str, Any]) -> None:
        if event == "search":
            key = details["key"]
            if key == LOOKUP_OPTIONS:
                self._open.append(None)
            else:
                via = self.phase if not any(self._open) else \
                    f"interpolated in {next(r for r in reversed(self._open) if r).key}"
                self._open.append(Record(key, via))
            return
        record = self._open[-1] if self._open else None
        if event == "strategy" and record is not None:
            record.merge = str(details["merge"])
        elif event == "location" and record is not None and details["found"]:
            record.sources.append(Source(details["level"], details["path"], None,
                                         details["value"]))
            record.secret = record.secret or bool(details["secret"])
        elif event == "result":
            self._open.pop()
            if record is not None:
                record.found = bool(details["found"])
                record.value = details["value"] if record.found else None
                record.secret = record.secret or bool(details.get("secret")) or \
                    isinstance(record.value, Sensitive)
                self.records.setdefault((record.key, record.merge), record)


class _Missing:
    __slots__ = ()


NOT_GIVEN_SET: Any = _Missing()


def lines(records: list[Record]) -> dict[tuple[str, tuple[Any, ...]], int | None]:
    """The line of every key path the records need, each data file composed once."""
    wanted: dict[str, set[tuple[Any, ...]]] = {}
    for record in records:
        root = root_key(record.key)
        for source in record.sources:
            if source.path is None:
                continue
            paths = wanted.setdefault(source.path, set())
            paths.add(segments(record.key))
            if isinstance(source.value, dict):
                for section, options in source.value.items():
                    paths.add((root, section))
                    if isinstance(options, dict):
                        paths.update((root, section, option) for option in options)
    found: dict[tuple[str, tuple[Any, ...]], int | None] = {}
    for path, keys in wanted.items():
        node = _compose(path)
        for keys_path in keys:
            found[(path, keys_path)] = _line(node, keys_path)
    return found


def segments(key: str) -> tuple[Any, ...]:
    """The key path a lookup reads (``"a.b".c`` -> ``("a.b", "c")``), as Hiera splits it."""
    from renderer.hiera.keys import split_key

    try:
        return tuple(split_key(key, ValueError))
    except ValueError:
        return (key,)


def root_key(key: str) -> str:
    """The top-level key a lookup reads (``"a.b".c`` -> ``a.b``; ``a.b`` -> ``a``)."""
    return str(segments(key)[0])


def _compose(path: str) -> Any:
    import yaml

    from renderer.bounds import read_regular
    from renderer.errors import RenderError

    try:
        return yaml.compose(read_regular(path, RenderError).decode("utf-8", "replace"),
                            Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (RenderError, yaml.YAMLError):
        return None


def _line(node: Any, keys: tuple[Any, ...]) -> int | None:
    """The 1-based line of the innermost of ``keys`` (None when it cannot tell)."""
    import yaml

    line = None
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return line
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == str(key):
                line, node = key_node.start_mark.line + 1, value_node
                break
        else:
            return line
    return line
