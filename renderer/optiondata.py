"""The oslo.config option data (``_lib/oslo_options.json``), parsed a namespace at a time.

The file holds every option of every namespace of the pinned packages (a third of a megabyte:
3 ms to parse whole, most of it nova, cinder and ironic), and a file reads only its own
namespaces. ``make oslo-data`` writes it as ``json.dump(..., indent=1, sort_keys=True)`` does,
where a namespace's key is the only text at the start of a line indented by two spaces inside
``"namespaces"`` (a JSON string holds no raw newline), so each namespace's value is decoded from
there alone. A file in any other layout (a site's own, hand-written) is parsed whole, and so is
this one the first time something is not where that layout puts it: the answers are the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from renderer import manifest
from renderer.bounds import read_regular
from renderer.errors import RenderError

OPTION_DATA = Path("_lib") / "oslo_options.json"
_NAMESPACES = '\n "namespaces": {\n'  # the last key, sort_keys puts it there
_DECODER = json.JSONDecoder()


class OptionData:
    """Groups and multi-valued options per oslo.config namespace, read once and only if needed."""

    def __init__(self, templates: Path | Sequence[Path]) -> None:
        roots = (templates,) if isinstance(templates, Path) else tuple(templates)
        for root in roots:
            manifest.note(root / OPTION_DATA)
        self.path = next((r / OPTION_DATA for r in roots if (r / OPTION_DATA).exists()),
                         roots[0] / OPTION_DATA)  # the search path's first; a site's may win
        self._text: str | None = None
        self._whole: dict[str, Any] | None = None
        self._parsed: dict[str, Any] = {}
        self._plugins: dict[str, Any] | None = None
        self._offsets: dict[str, int] | None = None
        self._catalogs: dict[tuple[str, ...], Any] = {}

    def _read(self) -> str:
        if self._text is None:
            raw = read_regular(self.path, RenderError)
            try:
                self._text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RenderError(f"cannot read oslo option data: {exc}", path=self.path) from exc
        return self._text

    def _all(self) -> dict[str, Any]:
        """The whole file, checked as before: a hash with ``namespaces``."""
        if self._whole is None:
            try:
                data = json.loads(self._read())
                self._whole = {"namespaces": data["namespaces"],
                               "auth_plugins": data.get("auth_plugins", {})}
            except (ValueError, KeyError, TypeError) as exc:
                raise RenderError(f"cannot read oslo option data: {exc}", path=self.path) from exc
        return self._whole

    def _index(self) -> dict[str, int]:
        """Where each namespace's value starts in the text, found in one pass over the lines
        indented by two spaces inside ``"namespaces"``; empty for any other layout."""
        if self._offsets is None:
            self._offsets = {}
            text = self._read()
            start = text.find(_NAMESPACES) if text.startswith('{\n "') else -1
            end = text.find("\n }", start + 1) if start >= 0 else -1
            at = start + len(_NAMESPACES) - 1
            while 0 <= start < at < end:
                colon = text.find('": ', at + 4, end)
                if colon < 0:
                    break
                try:
                    name = json.loads(text[at + 3:colon + 1])
                except ValueError:
                    self._offsets = {}
                    break
                self._offsets[name] = colon + 3
                at = text.find('\n  "', colon, end)
        return self._offsets

    def _decoded(self, offset: int | None) -> Any:
        if offset is None:
            return None
        try:
            return _DECODER.raw_decode(self._read(), offset)[0]
        except ValueError:
            return None

    def namespace(self, name: str) -> Any:
        """One namespace's data; a missing one is an error naming the file."""
        if name not in self._parsed:
            value = self._decoded(self._index().get(name)) if self._whole is None else None
            if not isinstance(value, dict):
                value = self._all()["namespaces"].get(name)
            if not isinstance(value, dict):
                raise RenderError(f"oslo namespace {name!r} has no option data "
                                  "(run make oslo-data)", path=self.path)
            self._parsed[name] = value
        return self._parsed[name]

    def plugins(self) -> dict[str, Any]:
        """keystoneauth's plugins and their options (``auth_type``)."""
        if self._plugins is None:
            text, needle = self._read(), '\n "auth_plugins": '
            at = text.find(needle, 0, max(text.find(_NAMESPACES), 0)) if text.startswith(
                '{\n "') and self._whole is None else -1
            value = self._decoded(at + len(needle) if at >= 0 else None)
            self._plugins = value if isinstance(value, dict) else self._all()["auth_plugins"]
        return self._plugins

    def catalog(self, namespaces: tuple[str, ...]) -> Any:
        """The optioncheck.Catalog of a file reading ``namespaces`` (built once per set)."""
        if namespaces not in self._catalogs:
            from renderer.optioncheck import Catalog

            data = {name: self.namespace(name) for name in namespaces}
            self._catalogs[namespaces] = Catalog(data, self.plugins(), namespaces)
        return self._catalogs[namespaces]

    def for_file(self, namespaces: tuple[str, ...]) -> tuple[frozenset[str], frozenset[tuple]]:
        """(groups, {(group, option)} multi-valued) of a file reading ``namespaces``."""
        groups: set[str] = set()
        multi: set[tuple[str, str]] = set()
        for name in namespaces:
            data = self.namespace(name)
            groups.update(data["groups"])
            multi.update((group, opt) for group, opts in data["multi"].items()
                         for opt in opts)
        return frozenset(groups), frozenset(multi)
