"""renderer.yamlcache: a run from parsed YAML says and writes what a run that parses does.

The cache is an optimisation only: every test compares a run that reads its entries with one
that finds none (the directory moved away), byte for byte, and checks what the cache may never
do: hold a secret in the clear, load an entry it did not write, write in ``--noop``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, Tree, render
from test_imports import _imported

from renderer import yamlcache
from renderer.hiera.data import load_data_file
from renderer.hiera.ruby import FloatKey, Symbol
from renderer.system.statedir import StateDir


def _cache(tree: Tree) -> Path:
    return tree.state / "cache" / "yaml"


def _both(tree: Tree, *args: str) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """The same run from the cache and without it (then the cache is put back)."""
    cached = render(*args, *tree.options())
    aside = tree.base / "yaml-aside"
    shutil.move(_cache(tree), aside)
    try:
        parsed = render(*args, *tree.options())
    finally:
        shutil.rmtree(_cache(tree), ignore_errors=True)
        shutil.move(aside, _cache(tree))
    return (cached.code, cached.out, cached.err), (parsed.code, parsed.out, parsed.err)


def _synced(tree: Tree) -> None:
    result = render("--no-restart", "--all", *tree.options())
    assert result.code == 2, result.err
    assert len(list(_cache(tree).iterdir())) > 20  # hiera.yaml, data files, service.yaml


def test_a_cached_run_says_what_a_parsing_run_says(tree: Tree) -> None:
    _synced(tree)
    common = tree.hieradata / "data" / "common.yaml"
    common.write_text(common.read_text().replace("192.0.2.22", "192.0.2.23"))  # re-parsed
    template = tree.templates / "keystone" / "keystone.conf.j2"
    template.write_text(template.read_text() + "# changed\n")
    cached, parsed = _both(tree, "--noop", "--diff", "--all", "--no-fast-path")
    assert cached == parsed
    assert cached[0] == 2 and "192.0.2.23" in cached[1] and "# changed" in cached[1]


def test_errors_keep_their_lines(tree: Tree) -> None:
    """A service.yaml and a hiera.yaml that parse but are wrong, and a data file that does not
    parse: each error names the same line from the cache as from the parser."""
    _synced(tree)
    definition = tree.templates / "glance" / "service.yaml"
    definition.write_text(definition.read_text().replace("files:", "fils: 1\nfiles:", 1))
    broken = tree.hieradata / "data" / "services" / "heat.yaml"
    broken.write_text(broken.read_text() + "heat::bad: [unclosed\n")
    render("--no-restart", "--all", *tree.options())  # stores what parsed
    cached, parsed = _both(tree, "--noop", "--all", "--no-fast-path")
    assert cached == parsed
    assert "service.yaml:" in cached[2] and "fils" in cached[2] and "heat.yaml:" in cached[2]
    hiera = tree.hieradata / "hiera.yaml"
    text = hiera.read_text()
    first = text.index("  - name: ")
    name = text[first:].splitlines()[0]
    hiera.write_text(text + "\n".join([name, "    path: again.yaml"]) + "\n")
    render("--no-restart", "--all", *tree.options())
    cached, parsed = _both(tree, "--noop", "keystone", "--no-fast-path")
    assert cached == parsed and "defined more than once" in cached[2], cached


def test_no_secret_in_the_clear_and_no_write_in_noop(tree: Tree) -> None:
    fresh = render("--noop", "--all", *tree.options())
    assert fresh.code == 2 and not _cache(tree).exists()
    _synced(tree)
    stored = b"".join(p.read_bytes() for p in _cache(tree).iterdir())
    credentials = (tree.hieradata / "data" / "credentials.yaml").read_text()
    secrets = [line.split(":", 1)[1].strip().strip("'\"") for line in credentials.splitlines()
               if "password" in line and ":" in line]
    secrets = [s for s in secrets if len(s) >= 8]
    assert secrets and not [s for s in secrets if s.encode() in stored]
    assert b"keystone::" not in stored  # not even the keys


def test_an_entry_it_did_not_write_is_ignored(tree: Tree) -> None:
    _synced(tree)
    expected = render("--noop", "--diff", "--all", "--no-fast-path", *tree.options())
    for index, entry in enumerate(sorted(_cache(tree).iterdir())):
        data = bytearray(entry.read_bytes())
        if index % 2:
            data[-1] ^= 1  # tampered
        else:
            del data[len(data) // 2:]  # truncated
        entry.write_bytes(bytes(data))
    again = render("--noop", "--diff", "--all", "--no-fast-path", *tree.options())
    assert (again.code, again.out, again.err) == (expected.code, expected.out, expected.err)


def test_a_warm_full_render_imports_no_yaml(tree: Tree) -> None:
    _synced(tree)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "renderer", "--noop",
                           "--no-fast-path", "--diff", "keystone", *tree.options()],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode in (0, 2), done.stderr[-500:]
    names = _imported(done.stderr)
    assert "renderer.runner" in names and "renderer.yamlcache" in names
    assert not {n for n in names if n == "yaml" or n.startswith("yaml.")}, "yaml imported"


def test_ruby_types_come_back_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "types.yaml"
    path.write_text("a: :sym\n1.0: float key\n1: int key\nlist: [':x', 1.5, ~, true, '1']\n"
                    "syms:\n  - :y\n"
                    "nested:\n  :k:\n    - 2.5: y\nbig: 123456789012345678901234567890\n")
    directory = StateDir(tmp_path / "state").cache("cache/yaml", create=True)
    assert directory is not None
    cache = yamlcache.ParseCache(directory, b"k" * 32, writable=True)
    with yamlcache.using(cache):
        first = load_data_file(str(path)).data
        second = load_data_file(str(path)).data
    assert len(list((tmp_path / "state" / "cache" / "yaml").iterdir())) == 1

    def shape(value: object) -> object:
        if isinstance(value, dict):
            return [(shape(k), shape(v)) for k, v in value.items()]
        if isinstance(value, list):
            return [shape(v) for v in value]
        return (type(value).__name__, value.name if isinstance(value, Symbol) else value)

    assert shape(second) == shape(first)
    assert type(next(k for k in second if isinstance(k, float))) is FloatKey


def test_a_real_run_prunes_what_it_no_longer_uses(tree: Tree) -> None:
    _synced(tree)
    used = set(p.name for p in _cache(tree).iterdir())
    for index in range(2 * len(used) + yamlcache.SPARE + 1):
        old = _cache(tree) / f"{index:064x}.marshal"
        old.write_bytes(b"old")
        old.chmod(0o600)
    data = tree.hieradata / "data" / "common.yaml"
    data.write_text(data.read_text() + "\nprune::me: 1\n")  # one new entry: the run stores
    render("--no-restart", "--all", *tree.options())
    left = set(p.name for p in _cache(tree).iterdir())
    assert not [n for n in left if n.startswith("0000")]
    assert len(left - used) == 1 and len(used - left) == 1  # the old common.yaml entry went
