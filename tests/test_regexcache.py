"""renderer.regexcache: every stored pattern is the one ``re`` compiles, and a file that is not
this Python's is ignored."""

from __future__ import annotations

import _sre
import marshal
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO

from renderer import regexcache


def _entries(path: Path) -> list[tuple]:
    header, entries = marshal.loads(path.read_bytes())
    assert header == (sys.hexversion, _sre.MAGIC, _sre.CODESIZE)
    return entries


def test_every_stored_pattern_is_the_one_re_compiles(tmp_path: Path) -> None:
    path = tmp_path / "regex.marshal"
    assert regexcache.write(path) > 50
    entries = _entries(path)
    keys = {(kind, key, flags) for kind, key, flags, *_ in entries}
    from renderer.yamlimport import READER_PATTERN

    assert (0, READER_PATTERN, 0) in keys  # PyYAML's, seeded by renderer.yamlimport
    assert any(b"[\x80-\xff]" == key for _, key, *_ in entries)  # bytes patterns too
    for kind, key, flags, source, final, code, groups, groupindex, indexgroup in entries:
        stored = _sre.compile(source, final, code, groups, groupindex, indexgroup)
        fresh = re._compiler.compile(source, flags)  # type: ignore[attr-defined]
        assert stored == fresh, key  # Pattern equality compares flags, text and code
        assert stored.groupindex == fresh.groupindex and stored.groups == fresh.groups, key
        if source != key:  # only the seeded one of renderer.yamlimport
            assert key == READER_PATTERN


def _seed_in_child(path: Path) -> str:
    code = ("import re, sys; from pathlib import Path; from renderer import regexcache;"
            f"n = regexcache.seed(Path({str(path)!r})); print(n);"
            "print(all(re.compile(k, f) is p for (t, k, f), p in list(re._cache.items())))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}).stdout


def test_a_fresh_process_uses_the_stored_patterns(tmp_path: Path) -> None:
    path = tmp_path / "regex.marshal"
    count = regexcache.write(path)
    added, same = _seed_in_child(path).split()
    assert 0 < int(added) <= count and same == "True"


def test_a_file_of_another_python_or_no_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "regex.marshal"
    assert regexcache.seed(path) == 0  # none
    regexcache.write(path)
    header, entries = marshal.loads(path.read_bytes())
    path.write_bytes(marshal.dumps(((header[0] + 1, *header[1:]), entries)))
    assert regexcache.seed(path) == 0  # another interpreter's
    path.write_bytes(b"\x00not marshal")
    assert regexcache.seed(path) == 0
    kind, key, flags, source, final, code, groups, groupindex, indexgroup = entries[0]
    bad = (kind, "render-test-(x)", flags, "render-test-(x)", final, [255, 255], groups,
           groupindex, indexgroup)
    path.write_bytes(marshal.dumps((header, [bad])))
    assert regexcache.seed(path) == 0  # code _sre refuses
    assert (str, "render-test-(x)", flags) not in re._cache
