"""lookup_options compiled once for every scope that reads them from the same files
(renderer.hiera.options.shared_key), and per scope where a scope's own files or interpolation
make them differ."""

from pathlib import Path

from renderer.hiera import Hiera
from renderer.hiera import options as options_module
from tests.test_hiera import LEVELS, scope, tree


def test_same_files_compile_once_and_answer_alike(tmp_path: Path, monkeypatch) -> None:
    hiera = Hiera.load(tree(tmp_path, {
        "data/common.yaml": "lookup_options:\n  m: {merge: deep}\nm: {a: 1}\n",
        "data/services/a.yaml": "m: {b: 2}\n",
        "data/services/b.yaml": "m: {c: 3}\n",
    }, LEVELS))
    calls = []
    real = options_module.compile_options
    monkeypatch.setattr("renderer.hiera.lookup.compile_options",
                        lambda merged: calls.append(1) or real(merged))
    assert hiera.lookup("m", scope(service="a")) == {"b": 2, "a": 1}
    assert hiera.lookup("m", scope(service="b")) == {"c": 3, "a": 1}
    assert hiera.lookup("m", scope(service="nothing")) == {"a": 1}
    assert len(calls) == 1  # only common.yaml holds lookup_options, for all three


def test_a_scopes_own_lookup_options_are_its_own(tmp_path: Path) -> None:
    hiera = Hiera.load(tree(tmp_path, {
        "data/common.yaml": "m: {a: 1}\n",
        "data/services/a.yaml": "lookup_options:\n  m: {merge: hash}\nm: {b: 2}\n",
        "data/services/b.yaml": "m: {c: 3}\n",
    }, LEVELS))
    assert hiera.lookup("m", scope(service="a")) == {"b": 2, "a": 1}
    assert hiera.lookup("m", scope(service="b")) == {"c": 3}


def test_interpolated_lookup_options_follow_each_scope(tmp_path: Path) -> None:
    hiera = Hiera.load(tree(tmp_path, {
        "data/common.yaml": "lookup_options:\n  m: {merge: '%{strategy}'}\nm: {a: 1}\n",
        "data/services/a.yaml": "m: {b: 2}\n",
        "data/services/b.yaml": "m: {b: 2}\n",
    }, LEVELS))
    assert hiera.lookup("m", scope(service="a", strategy="hash")) == {"b": 2, "a": 1}
    assert hiera.lookup("m", scope(service="b", strategy="first")) == {"b": 2}
