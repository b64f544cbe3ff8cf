"""YAML typing exactly as Puppet reads hieradata (Ruby's Psych 4, ``safe_load`` with Symbol).

Both Psych and PyYAML parse with libyaml, so the structure and the syntax errors agree; they differ
in how a plain (unquoted) scalar becomes a value. Psych accepts ``1,000`` and ``TrUe``, reads
``-12:30`` as sexagesimal -41400 where PyYAML says -750, keeps ``1e3`` a string, turns ``:name``
into a Symbol, and refuses dates and times outright (Puppet then rejects the whole file). This
loader routes every plain scalar through a port of Psych's ``ScalarScanner#tokenize`` and builds
mappings the way Psych does, merge keys (``<<``) included.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from renderer.errors import RenderError
from renderer.hiera.ruby import FloatKey, Rejected, Symbol
from renderer.yamlload import Loader, compose_yaml, decode

PLAIN_TAG = "tag:render,2024:psych-plain"


# Ruby's \d and \s are ASCII-only; [[:alpha:]] is Unicode letters.
_STRINGISH = re.compile(r"[^0-9.:\-]?(?:[^\W\d_]|[_ \t\r\n\f\v!@#$%^&*(){}<>|/\\~;=])+")
_TIME = re.compile(r"-?[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t\r\n\f\v]+)[0-9]{1,2}:[0-9][0-9]"
                   r":[0-9][0-9](?:\.[0-9]*)?"
                   r"(?:[ \t\r\n\f\v]*(?:Z|[-+][0-9]{1,2}:?(?:[0-9][0-9])?))?")
_DATE = re.compile(r"[0-9]{4}-(?:1[012]|0[0-9]|[0-9])-(?:[12][0-9]|3[01]|0[0-9]|[0-9])")
_SEXAGESIMAL_INT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9]){1,2}")
_SEXAGESIMAL_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9]){1,2}\.[0-9_]*")
_FLOAT = re.compile(r"[-+]?(?:[0-9][0-9_,]*)?\.[0-9]*(?:[eE][-+][0-9]+)?")
_INTEGER = re.compile(r"[-+]?0b[0-1_,]+|[-+]?0[0-7_,]+|[-+]?(?:0|[1-9](?:[0-9]|,[0-9]|_[0-9])*)"
                      r"|[-+]?0x[0-9a-fA-F_,]+")
_FLOAT_CLEANUP = re.compile(r"[,_]|\.(?=[Ee]|$)")
_BOOL_TRUE = frozenset(("yes", "true", "on"))
_BOOL_FALSE = frozenset(("no", "false", "off"))


def _sexagesimal(text: str, convert: type) -> Any:
    total = convert(0)
    parts = text.split(":")
    for index, part in enumerate(parts):
        total += convert(part.replace("_", "") or 0) * 60 ** abs(index - 2)
    return total


def _ruby_integer(text: str) -> int:
    """Ruby ``Integer()`` of a Psych integer token: a leading 0 means octal."""
    text = text.replace(",", "").replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits[:2] in ("0b", "0x"):
        return sign * int(digits[2:], 2 if digits[1] == "b" else 16)
    if len(digits) > 1 and digits[0] == "0":
        return sign * int(digits[1:], 8)
    return sign * int(digits)


def tokenize(text: str, mark: Any = None) -> Any:
    """``Psych::ScalarScanner#tokenize`` for a plain scalar."""
    if not text:
        return None
    if _STRINGISH.match(text) or "\n" in text:
        if len(text) > 5 or text[0].lower() not in "ytonf~":
            return text
        lower = text.lower()
        if text == "~" or lower == "null":
            return None
        if lower in _BOOL_TRUE:
            return True
        if lower in _BOOL_FALSE:
            return False
        return text
    if _TIME.fullmatch(text):
        raise Rejected("unquoted time: Puppet refuses the whole file (Tried to load "
                       "unspecified class: Time); quote it", mark)
    if _DATE.fullmatch(text):
        raise Rejected("unquoted date: Puppet refuses the whole file (Tried to load "
                       "unspecified class: Date); quote it", mark)
    lower = text.lower()
    if lower in (".inf", "+.inf"):
        return float("inf")
    if lower == "-.inf":
        return float("-inf")
    if lower == ".nan":
        return float("nan")
    if text[0] == ":" and len(text) > 1:
        quoted = re.match(r":([\"'])(.*)\1", text)
        return Symbol(quoted.group(2).removeprefix(":") if quoted else text[1:])
    if _SEXAGESIMAL_INT.fullmatch(text):
        return _sexagesimal(text, int)
    if _SEXAGESIMAL_FLOAT.fullmatch(text):
        return _sexagesimal(text, float)
    if _FLOAT.fullmatch(text):
        if text in (".", "+.", "-."):
            return text
        return float(_FLOAT_CLEANUP.sub("", text))
    if _INTEGER.fullmatch(text):
        try:
            return _ruby_integer(text)
        except ValueError:  # "0b_": Psych lets Integer() raise, and Puppet cannot read the file
            raise Rejected("invalid integer", mark) from None
    return text


class PsychLoader(Loader):
    """libyaml parsing, Psych typing."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return PLAIN_TAG
        return super().resolve(kind, value, implicit)

    def construct_plain(self, node: yaml.ScalarNode) -> Any:
        value = tokenize(node.value, node.start_mark)
        if type(value) is Symbol and value.name == "default":
            return "default"  # Puppet's ``default`` value, which prints as ``default``
        return value

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Psych's ``revive_hash``: a ``<<`` merge overwrites the keys before it, in place.

        Symbol keys become strings here, as Puppet's ``symkeys_to_string`` does afterwards.
        """
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if type(key) is Symbol:
                key = key.name
            elif type(key) is float:
                key = FloatKey(key)
            if key == "<<" and (key_node.tag == PLAIN_TAG or key_node.style):
                value = self.construct_object(value_node, deep=True)
                if isinstance(value_node, yaml.MappingNode) and isinstance(value, dict):
                    mapping.update(value)
                    continue
                if isinstance(value_node, yaml.SequenceNode) and all(
                        isinstance(item, dict) for item in value):
                    merged: dict[Any, Any] = {}
                    for item in reversed(value):
                        merged.update(item)
                    mapping.update(merged)
                    continue
                mapping[key] = value
                continue
            if isinstance(key, (list, dict)):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "render does not support a collection as a key", key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_omap(self, node: yaml.Node) -> dict[Any, Any]:
        """``!!omap`` is a Hash to Psych: from a sequence, each item's first key and last value
        (``[{a: 1}, {b: 2}]``); from a mapping, its pairs."""
        if isinstance(node, yaml.MappingNode):
            return self.construct_mapping(node, deep=True)
        mapping: dict[Any, Any] = {}
        for item in node.value:
            if not isinstance(item, yaml.MappingNode) or not item.value:
                raise Rejected("!!omap items must be one-pair mappings", item.start_mark)
            key = self.construct_object(item.value[0][0], deep=True)
            mapping[FloatKey(key) if type(key) is float else key] = \
                self.construct_object(item.value[-1][1], deep=True)
        return mapping

    def construct_pairs(self, node: yaml.Node) -> Any:
        """``!!pairs`` means nothing to Psych: the plain sequence or mapping."""
        if isinstance(node, yaml.SequenceNode):
            return self.construct_sequence(node, deep=True)
        if isinstance(node, yaml.MappingNode):
            return self.construct_mapping(node, deep=True)
        return self.construct_plain(node)

    def construct_binary(self, node: yaml.ScalarNode) -> str:
        """``!!binary`` is a String to Ruby. Bytes that are not UTF-8 are kept (as surrogates),
        and printing them fails later, as Ruby's JSON generator does."""
        raw = super().construct_yaml_binary(node)
        return raw.decode("utf-8", "surrogateescape")

    def construct_rejected(self, node: yaml.Node) -> Any:
        raise Rejected(f"tag {node.tag!r}: Puppet refuses the whole file (its class is not "
                       "allowed in hieradata)", node.start_mark)


PsychLoader.add_constructor(PLAIN_TAG, PsychLoader.construct_plain)
for _tag in ("timestamp", "set"):
    PsychLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", PsychLoader.construct_rejected)
PsychLoader.add_constructor("tag:yaml.org,2002:omap", PsychLoader.construct_omap)
PsychLoader.add_constructor("tag:yaml.org,2002:binary", PsychLoader.construct_binary)
PsychLoader.add_constructor("tag:yaml.org,2002:pairs", PsychLoader.construct_pairs)


def compose(raw: bytes, path: Path, error: type[RenderError]) -> tuple[Any, Any]:
    """``(node, value)`` of a file's first document as Puppet reads hieradata and hiera.yaml;
    a byte that is not UTF-8, a syntax error and a refused scalar are ``error`` at their line."""
    try:
        return compose_yaml(decode(raw, path, error), path, PsychLoader, error)
    except Rejected as exc:
        raise error(exc.message, path=path, line=exc.line, column=exc.column) from exc
