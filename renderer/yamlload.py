"""YAML loading shared by hiera, service definitions and facts files.

Uses libyaml (``CSafeLoader``) when PyYAML was built with it: parsing is most of the cost of a
lookup-heavy run. Errors become HieraDataError with ``file:line:column`` (1-based), and bytes that
are not UTF-8 are reported with the line they are on instead of a UnicodeDecodeError traceback.

Aliases are bounded before anything is constructed: the parser shares one node per anchor, so a
"billion laughs" file is small until something walks what it means. ``Loader`` counts the nodes
the document stands for (each node visited once) and refuses more than ``ALIAS_NODES`` beyond its
own, nesting deeper than ``MAX_DEPTH`` and an alias inside itself (renderer.bounds). A file
without a ``*`` has no alias and is not walked (libyaml caps its nesting at 1000).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from renderer.bounds import ALIAS_NODES, MAX_DEPTH, decode
from renderer.errors import HieraDataError, RenderError
from renderer.yamlimport import yaml

__all__ = ["Loader", "compose_yaml", "decode", "parse_document", "parse_yaml"]

try:
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # PyYAML without libyaml
    _BaseLoader = yaml.SafeLoader


class BoundsError(yaml.MarkedYAMLError):
    """A document whose aliases expand beyond the bounds."""


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def check_bounds(root: Any) -> None:
    """Refuse a node graph that expands beyond the bounds; linear in its distinct nodes."""
    sizes: dict[int, int] = {}
    ancestors: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            ancestors.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            continue
        if key in sizes:
            continue
        if key in ancestors:
            raise BoundsError(None, None, "an alias refers to a node that contains it",
                              node.start_mark)
        if depth > MAX_DEPTH:
            raise BoundsError(None, None, f"nested more than {MAX_DEPTH} deep", node.start_mark)
        ancestors.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node)
                     if id(child) not in sizes)
    if sizes[id(root)] - len(sizes) > ALIAS_NODES:
        raise BoundsError(None, None, f"aliases expand the document by more than {ALIAS_NODES} "
                          "nodes (an alias bomb?)", root.start_mark)


class Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader; subclasses (hiera) adjust typing to match Puppet."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        # no alias token, no walk (as long as composing): skipped for most files. An alias
        # starts a token, and no token boundary falls between a "." and a "*" (plain scalars,
        # tags and "..." go on through both; anchors end before "."), so stars that all follow
        # a "." (the ".*" of lookup_options' patterns) are never aliases.
        self.aliased = not isinstance(stream, str) or stream.count("*") != stream.count(".*")

    def construct_document(self, node: Any) -> Any:
        if self.aliased:
            check_bounds(node)
        return super().construct_document(node)


def _converted(exc: yaml.YAMLError, path: Path, error: type[RenderError]) -> RenderError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "YAML syntax error"
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        return error(f"YAML syntax error: {problem}", path=path, line=line, column=column)
    return error(f"YAML error: {exc}", path=path)


def parse_yaml(text: str, path: Path, loader: type = Loader,
               error: type[RenderError] = HieraDataError) -> Any:
    return parse_document(loader(text), path, error)


def parse_document(instance: Any, path: Path, error: type[RenderError] = HieraDataError) -> Any:
    """The single document of a loader the caller made (a SafeLoader subclass), so the caller can
    read what that loader recorded while it constructed the data (service.yaml: lines)."""
    try:
        return instance.get_single_data()
    except yaml.YAMLError as exc:
        raise _converted(exc, path, error) from exc
    finally:
        instance.dispose()


def compose_yaml(text: str, path: Path, loader: type = Loader,
                 error: type[RenderError] = HieraDataError) -> tuple[Any, Any]:
    """``(node, value)`` of the first document: the node tree keeps the line of every key, for
    config errors. Like Ruby's ``Psych.safe_load``, which Puppet uses for hieradata, documents
    after the first are ignored (not even parsed)."""
    instance = loader(text)
    try:
        node = instance.get_node() if instance.check_node() else None
        return node, (None if node is None else instance.construct_document(node))
    except yaml.YAMLError as exc:
        raise _converted(exc, path, error) from exc
    finally:
        instance.dispose()

