"""renderer.optiondata: a namespace decoded alone is the namespace the whole file holds.

The shipped file is read a namespace at a time; any other layout (a compact file, a key where
the layout does not put it) is parsed whole. Both must give the same data and the same errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO

from renderer.errors import RenderError
from renderer.optiondata import OPTION_DATA, OptionData

SHIPPED = REPO / "service_templates"
WHOLE = json.loads((SHIPPED / OPTION_DATA).read_text())


def _site(tmp_path: Path, text: str) -> Path:
    (tmp_path / "_lib").mkdir()
    (tmp_path / OPTION_DATA).write_text(text)
    return tmp_path


def test_every_namespace_alone_is_the_whole_files() -> None:
    for name, expected in WHOLE["namespaces"].items():
        data = OptionData(SHIPPED)
        assert data.namespace(name) == expected, name
        assert data._whole is None, f"{name}: the shipped file was parsed whole"
    data = OptionData(SHIPPED)
    assert data.plugins() == WHOLE["auth_plugins"] and data._whole is None


@pytest.mark.parametrize("layout", [{}, {"indent": 2}, {"indent": 1}])
def test_any_other_layout_gives_the_same(tmp_path: Path, layout: dict[str, int]) -> None:
    """Compact, another indent, and indent 1 without sort_keys (namespaces first)."""
    reordered = {"namespaces": WHOLE["namespaces"], "auth_plugins": WHOLE["auth_plugins"]}
    data = OptionData(_site(tmp_path, json.dumps(reordered, **layout)))
    for name in ("keystone", "oslo.cache", "nova.conf"):
        assert data.namespace(name) == WHOLE["namespaces"][name]
    assert data.plugins() == WHOLE["auth_plugins"]
    assert data.for_file(("keystone",)) == OptionData(SHIPPED).for_file(("keystone",))


def test_a_missing_namespace_and_a_broken_file_are_errors(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="oslo namespace 'no.such' has no option data"):
        OptionData(SHIPPED).namespace("no.such")
    broken = OptionData(_site(tmp_path, (SHIPPED / OPTION_DATA).read_text()[:5000]))
    with pytest.raises(RenderError, match="cannot read oslo option data"):
        broken.namespace("keystone")


def test_a_key_named_like_a_namespace_elsewhere_is_not_taken(tmp_path: Path) -> None:
    """An auth plugin, an option and a namespace all named "token": each from its own place."""
    data = json.loads(json.dumps(WHOLE))
    data["namespaces"]["token"] = {"groups": ["x"], "multi": {}, "options": {}}
    site = OptionData(_site(tmp_path, json.dumps(data, indent=1, sort_keys=True)))
    assert site.namespace("token") == {"groups": ["x"], "multi": {}, "options": {}}
    assert site.plugins()["token"] == WHOLE["auth_plugins"]["token"]
    assert site._whole is None
