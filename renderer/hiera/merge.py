"""Merge strategies ``first``, ``unique``, ``hash`` and ``deep``, exactly as Puppet runs them.

Puppet walks the hierarchy as nested "lookup variants" (the provider stack, then the levels, then
each level's files). At each layer one found value is passed through (``merge_single``, which for
``unique`` de-duplicates), the first of several is converted (``unique`` flattens and wraps a
scalar) and the rest are merged into it, higher priority first. Type checks apply only when two
values actually meet. ``deep`` is the ``deep_merge`` gem's ``deep_merge!``, ported line by line
because its quirks are the observable behaviour (``nil`` never wins, knockout markers, a hash
value that merges with itself when the key is new).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from renderer.errors import MergeError
from renderer.hiera import ruby
from renderer.hiera.keys import MISSING

_DEEP_OPTIONS = {"knockout_prefix": str, "merge_debug": bool, "merge_hash_arrays": bool,
                 "sort_merged_arrays": bool}


def type_name(value: Any) -> str:
    """The generalized Puppet type of a value, for error messages."""
    if value is None:
        return "Undef"
    return {str: "String", int: "Integer", float: "Float", bool: "Boolean", list: "Array",
            dict: "Hash"}.get(type(value), "Runtime")


def is_data(value: Any) -> bool:
    """Puppet's ``Data``: scalars, undef, and arrays/hashes (string keys) of Data."""
    kind = type(value)
    if kind is list:
        return all(map(is_data, value))
    if kind is dict:
        return all(type(k) is str and is_data(v) for k, v in value.items())
    return value is None or kind in (str, int, float, bool)


class Strategy:
    """First found: the default, and the base of the others' walk."""

    name = "first"

    def __init__(self, options: dict[Any, Any]) -> None:
        self.options = options

    def lookup(self, variants: Iterable[Any], fetch: Callable[[Any], Any]) -> Any:
        for variant in variants:
            value = fetch(variant)
            if value is not MISSING:
                return value
        return MISSING

    def convert(self, value: Any) -> Any:
        return value

    def __repr__(self) -> str:
        return f"{self.name} {self.options}" if self.options else self.name


class _Merging(Strategy):
    """The walk shared by the merging strategies (Puppet's ``MergeStrategy#lookup``)."""

    def lookup(self, variants: Iterable[Any], fetch: Callable[[Any], Any]) -> Any:
        variants = list(variants)
        if len(variants) == 1:
            value = fetch(variants[0])
            return value if value is MISSING else self.single(value)
        memo = MISSING
        for variant in variants:
            value = fetch(variant)
            if value is MISSING:
                continue
            memo = self.convert(value) if memo is MISSING else self.merge(memo, value)
        return memo

    def single(self, value: Any) -> Any:
        return value

    def merge(self, higher: Any, lower: Any) -> Any:
        self.check("first", higher)
        self.check("second", lower)
        return self.checked_merge(higher, lower)

    def check(self, which: str, value: Any) -> None:
        """Raise MergeError when ``value`` may not take part in this merge."""

    def checked_merge(self, higher: Any, lower: Any) -> Any:
        raise NotImplementedError


class _Hash(_Merging):
    name = "hash"

    def check(self, which: str, value: Any) -> None:
        if type(value) is not dict:
            raise MergeError(f"The {which} element of the merge has wrong type, expects a Hash "
                             f"value, got {type_name(value)}")
        if not is_data(value):
            raise MergeError(f"The {which} element of the merge has wrong type, expects a "
                             "Hash[String, Data] value")

    def checked_merge(self, higher: dict[Any, Any], lower: dict[Any, Any]) -> dict[Any, Any]:
        return {**lower, **higher}


class _Unique(_Merging):
    name = "unique"

    def check(self, which: str, value: Any) -> None:
        if type(value) in (str, int, float, bool) or type(value) is list and is_data(value):
            return
        raise MergeError(f"The {which} element of the merge has wrong type, expects a value of "
                         f"type Scalar or Array, got {type_name(value)}")

    def convert(self, value: Any) -> list[Any]:
        return ruby.flatten(value) if type(value) is list else [value]

    def single(self, value: Any) -> Any:
        return ruby.uniq(value) if type(value) is list else value

    def checked_merge(self, higher: Any, lower: Any) -> list[Any]:
        return ruby.union(self.convert(higher), self.convert(lower))


class _Deep(_Merging):
    name = "deep"

    def checked_merge(self, higher: Any, lower: Any) -> Any:
        prefix = self.options.get("knockout_prefix")
        if prefix == "":
            raise MergeError("knockout_prefix cannot be an empty string in deep_merge!")
        try:
            return _DeepMerge(prefix, bool(self.options.get("merge_hash_arrays")),
                              bool(self.options.get("sort_merged_arrays"))).merge(
                higher, _deep_clone(lower))
        except ruby.RubyArgumentError as exc:
            raise MergeError(str(exc)) from exc
        except re.error as exc:  # the prefix is used as a regexp, as deep_merge does
            raise MergeError(f"knockout_prefix {prefix!r} is not a valid regexp: {exc}") from exc


_STRATEGIES: dict[str, type[Strategy]] = {
    "first": Strategy, "default": Strategy, "hash": _Hash, "unique": _Unique, "deep": _Deep}

FIRST = Strategy({})
HASH = _Hash({})


def strategy(merge: Any) -> Strategy:
    """The strategy for a ``merge`` given as None, a name, or a hash with ``strategy``."""
    if merge is None:
        return FIRST
    options: dict[Any, Any] = {}
    name = merge
    if type(merge) is dict:
        if "strategy" not in merge:
            raise MergeError("The hash given as 'merge' must contain the name of a strategy in "
                             "string form for the key 'strategy'")
        name = merge["strategy"]
        options = {} if len(merge) == 1 else dict(merge)
    cls = _STRATEGIES.get(name) if type(name) is str else None
    if cls is None:
        raise MergeError(f"Unknown merge strategy: '{name}'")
    allowed = _DEEP_OPTIONS if cls is _Deep else {}
    for key, value in options.items():
        if key == "strategy":
            continue
        if key not in allowed:
            raise MergeError(f"The merge options has wrong type, unrecognized key '{key}'")
        if value is not None and type(value) is not allowed[key]:
            raise MergeError(f"The merge options entry '{key}' expects a "
                             f"{allowed[key].__name__} value, got {type_name(value)}")
    return cls(options)


def _deep_clone(value: Any) -> Any:
    if type(value) is dict:
        return {k: _deep_clone(v) for k, v in value.items()}
    if type(value) is list:
        return [_deep_clone(item) for item in value]
    return value


def _dup(value: Any) -> Any:
    """Ruby ``dup``: a shallow copy of a container, the value itself otherwise."""
    if type(value) is dict:
        return dict(value)
    if type(value) is list:
        return list(value)
    return value


class _DeepMerge:
    """``DeepMerge.deep_merge!(source, dest)`` with Puppet's options; ``source`` has priority.

    Both arguments may be changed in place, as in Ruby; callers pass copies.
    """

    def __init__(self, prefix: str | None, merge_hash_arrays: bool, sort: bool) -> None:
        self.prefix = prefix
        self.knockout = ruby.regexp("^" + prefix) if prefix else None
        self.merge_hash_arrays = merge_hash_arrays
        self.sort = sort

    def merge(self, source: Any, dest: Any) -> Any:
        if source is None:
            return dest
        if not ruby.truthy(dest):
            return source
        if type(source) is dict:
            for key in list(source):
                value = source[key]
                if type(dest) is dict:
                    if ruby.truthy(dest.get(key)):
                        dest[key] = self.merge(value, dest[key])
                    else:
                        dest[key] = self.merge(value, _dup(value))
                else:
                    dest = self._overwrite(source, dest)
            return dest
        if type(source) is list:
            return self._merge_arrays(source, dest)
        return self._overwrite(source, dest)

    def _merge_arrays(self, source: list[Any], dest: Any) -> Any:
        prefix = self.prefix
        if prefix and any(ruby.equal(item, prefix) for item in source):
            if type(dest) in (list, dict):  # clear_or_nil: clear in place what can be cleared
                dest.clear()
            else:
                dest = "" if type(dest) is str else None
            ruby.delete(source, prefix)
        if type(dest) is not list:
            return self._overwrite(source, dest)
        knockout = self.knockout
        if knockout is not None:
            def knocked_out(item: Any) -> bool:
                if type(item) is not str:
                    return False
                plain = knockout.sub("", item)
                if plain == item:
                    return False
                ruby.delete(dest, plain)
                ruby.delete(dest, item)
                return True
            ruby.delete_if(source, knocked_out)
        if (self.merge_hash_arrays and all(type(item) is dict for item in source)
                and all(type(item) is dict for item in dest)):
            merged = [self.merge(source[i] if i < len(source) and ruby.truthy(source[i]) else {},
                                 dest[i]) for i in range(len(dest))]
            merged += source[len(dest):]
            dest = merged
        else:
            dest = ruby.union(dest, source)
        if self.sort:
            ruby.sort(dest)
        return dest

    def _overwrite(self, source: Any, dest: Any) -> Any:
        """``overwrite_unmergeables``: the source wins, minus knockout markers."""
        knockout = self.knockout
        if knockout is None:
            return source
        if type(source) is str:
            return source if knockout.sub("", source) == source else ""
        if type(source) is list:
            ruby.delete_if(source, lambda item: type(item) is str
                           and knockout.search(item) is not None)
        return source
