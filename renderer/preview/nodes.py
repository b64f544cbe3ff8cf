"""The nodes a preview renders for: facts as a CI runner has them, never a live host.

Three shapes, told apart by their content, a file or a folder of them (``*.json``, ``*.yaml``,
``*.yml``, sorted by name):

- an onceover factset: ``{"name": ..., "values": {facts}, "trusted": {...}}``; ``trusted`` holds
  the trusted extensions (``pp_role``), either directly or under ``extensions``;
- Puppet's cached facts (``--- !ruby/object:Puppet::Node::Facts``, ``name`` and ``values``), as
  ``render --facts`` reads them;
- a PuppetDB factsets export (``/pdb/query/v4/factsets``): a list of ``{"certname",
  "environment", "facts": {"data": [{"name", "value"}]}}``, the ``trusted`` fact giving the
  extensions; one file holds many nodes.

A node's name is its ``certname`` (``name`` for an onceover factset, the ``clientcert`` fact or
the file's name for Puppet's cache, which it names ``<certname>.yaml``); it becomes
``clientcert`` and ``trusted.certname`` when the facts lack them, as Puppet's server sets them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from renderer.errors import PreviewError

SUFFIXES = (".json", ".yaml", ".yml")


class Node(NamedTuple):
    name: str
    facts: dict[str, Any]
    extensions: dict[str, Any]   # trusted.extensions
    where: str                   # the file (and entry) the facts came from, for errors
    environment: str | None = None


def load_nodes(path: Path) -> list[Node]:
    """Every node of ``path`` (a file or a folder); one bad file is one PreviewError naming it,
    two nodes of one name too."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        if not files:
            raise PreviewError(f"{path}: no factset (*.json, *.yaml) in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise PreviewError(f"{path}: no such file or folder (--nodes)")
    nodes: list[Node] = []
    seen: dict[str, str] = {}
    for file in files:
        for node in _read(file):
            if node.name in seen:
                raise PreviewError(f"{node.where}: node {node.name!r} is already given by "
                                 f"{seen[node.name]}")
            seen[node.name] = node.where
            nodes.append(node)
    return nodes


def _read(file: Path) -> list[Node]:
    if file.suffix == ".json":
        try:  # a CI input, not a container's file: a PuppetDB export of many nodes is large
            data = json.loads(file.read_bytes())
        except OSError as exc:
            raise PreviewError(f"cannot read: {exc.strerror}", path=file) from None
        except ValueError as exc:
            raise PreviewError(f"invalid JSON: {exc}", path=file) from None
    else:
        data = _yaml(file)
    if isinstance(data, list):
        return [_puppetdb(entry, f"{file}[{index}]") for index, entry in enumerate(data)]
    if not isinstance(data, dict):
        raise PreviewError(f"{file}: a factset is a mapping or a PuppetDB list, not "
                         f"{type(data).__name__}")
    if "certname" in data and "facts" in data:
        return [_puppetdb(data, str(file))]
    return [_factset(data, file)]


def _yaml(file: Path) -> Any:
    """Puppet's cached facts file as ``render --facts`` reads it (Ruby tags as mappings)."""
    from renderer.errors import UsageError
    from renderer.scope import load_facts_file

    try:
        return load_facts_file(str(file))  # ``values`` unwrapped
    except UsageError as exc:
        raise PreviewError(exc.message, path=exc.path or file, line=exc.line) from None


def _factset(data: dict[str, Any], file: Path) -> Node:
    values = data.get("values")
    if isinstance(values, dict):
        name = data.get("name")
        trusted = data.get("trusted") or {}
    else:  # a cached facts file (already unwrapped: Puppet names it <certname>.yaml) or facts
        values, trusted = data, {}
        name = data.get("clientcert") or file.stem
    if not isinstance(name, str) or not name:
        raise PreviewError(f"{file}: the factset names no node ('name')")
    return Node(name, dict(values), _extensions(trusted, file), str(file))


def _extensions(trusted: Any, where: object) -> dict[str, Any]:
    if not isinstance(trusted, dict):
        raise PreviewError(f"{where}: 'trusted' must be a mapping")
    extensions = trusted.get("extensions", trusted)
    if not isinstance(extensions, dict):
        raise PreviewError(f"{where}: 'trusted.extensions' must be a mapping")
    return dict(extensions)


def _puppetdb(entry: Any, where: str) -> Node:
    if not isinstance(entry, dict) or not isinstance(entry.get("certname"), str):
        raise PreviewError(f"{where}: a PuppetDB factset has a 'certname'")
    facts = entry.get("facts")
    if isinstance(facts, dict) and "data" in facts:
        facts = facts["data"]
    if isinstance(facts, list):
        try:
            values = {item["name"]: item["value"] for item in facts}
        except (TypeError, KeyError):
            raise PreviewError(f"{where}: each fact of a PuppetDB factset is "
                             "{\"name\": ..., \"value\": ...}") from None
    elif isinstance(facts, dict) and "href" not in facts:
        values = dict(facts)
    else:
        raise PreviewError(f"{where}: the factset holds no facts (export it with the facts "
                         "expanded, not only their href)")
    trusted = values.pop("trusted", {}) or {}
    environment = entry.get("environment")
    return Node(entry["certname"], values, _extensions(trusted, where), where,
                environment if isinstance(environment, str) else None)
