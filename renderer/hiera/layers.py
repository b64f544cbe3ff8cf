"""The global and module layers of Puppet's ``LookupAdapter`` (the environment's is the
hiera.yaml ``Hiera`` is loaded from): where they are and what Puppet checks in them.

A key ``mod::x`` also reads module ``mod``'s hiera.yaml (the first directory of that name in the
modulepath, as ``environment.module`` finds it), whose data may only hold keys of its namespace
(Puppet drops the others) and whose lookup_options may only name them (Puppet fails otherwise).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from renderer import manifest
from renderer.errors import HieraConfigError, HieraDataError
from renderer.hiera.config import HieraConfig, HieraVersion3Error, default_config, load_config

_MODULE_NAME = re.compile(r"\A[a-z][a-z0-9_]*\Z")  # Puppet's; any other name has no module


def find_module(name: str, modulepath: tuple[Path, ...], backends: dict[str, str],
                warn: Callable[[str], None]) -> HieraConfig | None:
    """Module ``name``'s hiera.yaml; None: no module layer (no such module, no hiera.yaml, or a
    version 3 one, which Puppet ignores at a module's root)."""
    if not _MODULE_NAME.match(name):
        return None
    for directory in modulepath:
        manifest.note(directory / name)  # a module appearing earlier in the path is a change
        if (directory / name).is_dir():
            path = directory / name / "hiera.yaml"
            manifest.note(path)
            if not path.is_file():
                return None
            try:
                return load_config(path, "module", backends)
            except HieraVersion3Error:
                warn(f"{path}: hiera.yaml version 3 found at module root was ignored")
                return None
    return None


def check_module_options(found: dict[Any, Any], module: str, path: Path) -> None:
    """Puppet's ``validate_lookup_options`` for a module: only keys of its namespace."""
    prefix = f"{module}::"
    for key in found:
        text = key if type(key) is str else ""
        if text.startswith("^") and text[1:len(prefix) + 1] != prefix:
            raise HieraDataError(f"all lookup_options patterns must match a key starting with "
                                 f"module name '{module}'", path=path)
        if not text.startswith(("^", prefix)):
            raise HieraDataError(f"all lookup_options keys must start with module name "
                                 f"'{module}'", path=path)


def module_name(root: Any) -> str | None:
    """Puppet's ``LookupKey#module_name``: what precedes the first ``::`` of the root key."""
    if type(root) is not str:
        return None
    index = root.find("::")
    if index < 0:
        return None
    return root if index == 0 else root[:index]  # Ruby's root_key[0..-1] is the whole key


def load_global(path: Path, backends: dict[str, str] | None) -> HieraConfig:
    """The global layer: Puppet's ``hiera_config``; a missing file is version 5's built-in
    hierarchy next to it. A version 3 file (Hiera 3 backends) Puppet reads; render does not."""
    if not path.exists():
        return default_config(path)
    try:
        return load_config(path, "global", backends)
    except HieraVersion3Error as exc:
        raise HieraConfigError("a global hiera.yaml of version 3 (Hiera 3 backends) is not "
                               "supported by render: convert it to version 5 (Puppet reads both)",
                               path=path, line=exc.line) from exc
