"""Compiled regular expressions kept across processes, as ``.pyc`` files keep compiled modules.

Python compiles every ``re.compile`` of every module a full run imports (Jinja2, PyYAML, json,
argparse, render's own: about ninety patterns) in pure Python, in each process: an eighth of a
``render --noop SERVICE`` full render. ``re``'s parser and compiler produce a list of opcodes
that ``_sre.compile`` turns into the pattern object; this module stores those lists, computed by
``re`` itself, in ``__pycache__`` beside the modules (``make compile`` writes it, as it writes the
``.pyc`` files), and ``seed`` puts the patterns they make into ``re``'s own cache before anything
is imported. A pattern is the same object ``re.compile`` would build (``Pattern`` equality
compares the code; tests/test_regexcache.py checks every entry), so nothing matches differently.

The file is trusted as the ``.pyc`` files next to it are (written by the same step, in the
package's own directory, never by a run). It is keyed by the interpreter's version and ``_sre``'s
magic and code size: another Python ignores it. A missing or unreadable file, or any entry
``_sre`` refuses (it validates the code), only means compiling as usual.
"""

from __future__ import annotations

import marshal
import sys
from pathlib import Path
from typing import Any

NAME = f"regex.{sys.implementation.cache_tag}.marshal"
DEFAULT = Path(__file__).resolve().parent / "__pycache__" / NAME
MAX_SIZE = 4 << 20  # a file larger than this is not one ``write`` made


def _header() -> tuple[int, int, int]:
    import _sre

    return (sys.hexversion, _sre.MAGIC, _sre.CODESIZE)


def seed(path: Path = DEFAULT) -> int:
    """Put the stored patterns into ``re``'s cache (an entry there already stays); how many."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SIZE + 1)
    except OSError:
        return 0
    import _sre
    import re

    cache = getattr(re, "_cache", None)
    if len(data) > MAX_SIZE or not isinstance(cache, dict):
        return 0
    try:
        header, entries = marshal.loads(data)
        if header != _header():
            return 0
        added = 0
        for kind, pattern, flags, source, final, code, groups, groupindex, indexgroup in entries:
            key = (bytes if kind else str, pattern, flags)
            if key not in cache and len(cache) < getattr(re, "_MAXCACHE", 512):
                cache[key] = _sre.compile(source, final, code, groups, groupindex, indexgroup)
                added += 1
        return added
    except (ValueError, TypeError, EOFError, RuntimeError, OverflowError):
        return 0  # not a file of this Python's: compile as usual


def entry(kind: type, key: str | bytes, flags: int, source: str | bytes) -> tuple[Any, ...]:
    """What ``re._compiler.compile`` passes to ``_sre.compile`` for the cache key ``(kind, key,
    flags)``, whose pattern was compiled from ``source`` (``key`` itself but for a seeded one,
    renderer.yamlimport)."""
    from re import _compiler, _parser  # type: ignore[attr-defined]

    parsed = _parser.parse(source, flags)
    code = [int(op) for op in _compiler._code(parsed, flags)]  # opcodes are int subclasses
    groupindex = dict(parsed.state.groupdict)
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    return (int(kind is bytes), key, flags, source, flags | parsed.state.flags, code,
            parsed.state.groups - 1, groupindex, tuple(indexgroup))


def _warm() -> None:
    """Import what a full run imports and build what it builds before rendering (the parser,
    the Jinja environment and its lexer), so their patterns are in ``re``'s cache."""
    import importlib
    import tempfile

    from renderer.cli import build_parser
    from renderer.config import parse_args

    for name in ("renderer.runner", "renderer.report", "renderer.sources", "renderer.statefile",
                 "renderer.system.dryrun", "renderer.system.real", "renderer.targets",
                 "renderer.bccache", "renderer.optioncheck", "renderer.status",
                 "renderer.hiera.types", "renderer.hiera.convert", "renderer.ini",
                 "renderer.outputs", "renderer.lookup", "renderer.show", "renderer.listing",
                 "renderer.hiera.psych", "jinja2.ext"):  # psych: PyYAML, for a parse-cache miss
        importlib.import_module(name)
    from renderer.errors import RenderError
    from renderer.templates import Renderer

    parser = build_parser()
    parser.format_help()
    try:
        parse_args(parser, ["--all", "--noop"])
    except (RenderError, SystemExit):
        pass  # a configuration file with an error: its patterns are compiled already
    with tempfile.TemporaryDirectory() as empty:
        Renderer((Path(empty),))._env.lexer  # noqa: B018 - the property compiles its rules


def write(path: Path = DEFAULT) -> int:
    """Store every pattern in ``re``'s cache after ``_warm``; how many."""
    import re

    _warm()
    entries = [entry(kind, key, flags, compiled.pattern)
               for (kind, key, flags), compiled in list(re._cache.items())  # type: ignore[attr-defined]
               if isinstance(compiled, re.Pattern)]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(marshal.dumps((_header(), entries)))
    temporary.replace(path)
    return len(entries)


if __name__ == "__main__":
    print(f"render: {write(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)} regular "
          "expressions stored", file=sys.stderr)
