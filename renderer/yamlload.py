"""YAML loading shared by hiera, service definitions and facts files.

Uses libyaml (``CSafeLoader``) when PyYAML was built with it: parsing is most of the cost of a
lookup-heavy run. Errors become HieraDataError with ``file:line:column`` (1-based), and bytes that
are not UTF-8 are reported with the line they are on instead of a UnicodeDecodeError traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from renderer.errors import HieraDataError, RenderError

try:
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # PyYAML without libyaml
    _BaseLoader = yaml.SafeLoader


class Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader; subclasses (hiera) adjust typing to match Puppet."""


def decode(raw: bytes, path: Path, error: type[RenderError] = HieraDataError) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(f"invalid UTF-8 byte 0x{raw[exc.start]:02x}", path=path, line=line) from exc


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

