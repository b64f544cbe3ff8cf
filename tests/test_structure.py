"""The codebase's shape: no import cycle (imports inside functions count), no module over about
400 lines, and the CLI's import stays light (``--help`` and usage errors load no pipeline)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "renderer"
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The renderer modules ``path`` imports anywhere in it (top level or in a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from pkg import submodule`` imports the submodule; ``from pkg import name``, pkg
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known
                     else node.module for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def test_no_import_cycle():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    # a package's __init__ is imported by its submodules' import; that edge is not a cycle
    # unless the package itself imports back
    cycles = []
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.append(" -> ".join([*trail, nxt]))
                elif nxt not in trail and len(trail) < len(graph):
                    stack.append((nxt, [*trail, nxt]))
            if cycles:
                break
    assert not cycles, cycles[:3]


def test_modules_stay_small():
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}


def test_cli_import_is_light():
    code = ("import sys, renderer.cli\n"
            "heavy = {'jinja2', 'yaml', 'oslo_config', 'renderer.runner', 'renderer.hiera'}\n"
            "print(sorted(heavy & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=True)
    assert done.stdout == "[]\n"


def test_architecture_table_names_every_module():
    """docs/architecture.md's module table is a newcomer's map: every module is in it, either
    in backticks (``name``, ``pkg/name``) or named in its package's row (``pkg/``)."""
    import re

    rows = [line for line in (REPO / "docs" / "architecture.md").read_text().splitlines()
            if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z_/]+)`", row)}
    missing = []
    for module in modules():
        parts = module.split(".")[1:]
        if not parts or parts == ["__main__"]:
            continue
        path, leaf = "/".join(parts), parts[-1]
        package_rows = [row for row in rows if len(parts) > 1 and f"`{parts[0]}/`" in row]
        if not (path in named or (len(parts) == 1 and leaf in named)
                or f"{path}/" in named
                or any(re.search(rf"\b{leaf}\b", row) for row in package_rows)):
            missing.append(path)
    assert missing == []
