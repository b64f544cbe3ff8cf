"""Read rendered OpenStack INI files with real oslo.config, the way the services do.

Runs under ``.venv-oslo/bin/python`` (the OpenStack packages from PyPI, installed by ``make test``;
render's own virtualenv stays light). One process checks every file, since loading the option
definitions is most of the cost.

``check``: stdin is JSON ``[{"path": ..., "namespaces": [...]}]``. For each file: a fresh
``ConfigOpts``, the options of its namespaces registered as oslo-config-generator lists them
(``generator._list_opts``: entry points ``oslo.config.opts``, defaults updaters, driver options),
the file loaded with ``conf(args=[], default_config_files=[path])``, then every option of every
group the file sets is read, which runs oslo's type conversion (``debug = maybe`` fails here), and
every option name the file sets must be registered (oslo itself ignores unknown names silently).
Prints JSON ``[{"path": ..., "errors": ["<path>:<line>: <message>", ...]}]``.

``dump NAMESPACE...``: prints JSON ``{namespace: {"groups": [...], "multi": {group: [option]}}}``,
the data render ships in ``service_templates/_lib/oslo_options.json`` to know which sections exist
and which options are multi-valued (``MultiOpt``).
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

from oslo_config import cfg, generator, iniparser

DEFAULT = "DEFAULT"


def _group_name(group: Any) -> str:
    if isinstance(group, cfg.OptGroup):
        return group.name
    return group or DEFAULT


_LISTED: dict[tuple[str, ...], list[tuple[str, Any, list[Any]]]] = {}


def list_opts(namespaces: list[str]) -> list[tuple[str, Any, list[Any]]]:
    """(group name, group, opts) for every group of ``namespaces``, as the generator sees them."""
    key = tuple(namespaces)
    if key not in _LISTED:
        _LISTED[key] = _list_opts(namespaces)
    return _LISTED[key]


def _list_opts(namespaces: list[str]) -> list[tuple[str, Any, list[Any]]]:
    found = {namespace for namespace, _ in generator._get_raw_opts_loaders(namespaces)}
    missing = sorted(set(namespaces) - found)
    if missing:
        raise SystemExit(f"oslo_check: namespaces not installed: {', '.join(missing)}")
    result = []
    for _namespace, listing in generator._list_opts(namespaces):
        for group, opts in listing:
            result.append((_group_name(group), group, list(opts)))
    return result


def dump(namespaces: list[str]) -> dict[str, Any]:
    data = {}
    for namespace in namespaces:
        groups: set[str] = set()
        multi: dict[str, set[str]] = {}
        for name, _group, opts in list_opts([namespace]):
            groups.add(name)
            for opt in opts:
                if isinstance(opt, cfg.MultiOpt):
                    multi.setdefault(name, set()).add(opt.dest)
        data[namespace] = {"groups": sorted(groups),
                           "multi": {g: sorted(o) for g, o in sorted(multi.items())}}
    return data


class _Assignments(iniparser.BaseParser):
    """(section, key, line) of every assignment, with oslo's own lexer."""

    def __init__(self) -> None:
        self.section = DEFAULT
        self.found: list[tuple[str, str, int]] = []
        self.starts: list[int] = []

    def new_section(self, section: str) -> None:
        self.section = section

    def assignment(self, key: str, value: list[str]) -> None:
        self.found.append((self.section, key, self.starts[len(self.found)]))


def assignments(path: str) -> list[tuple[str, str, int]]:
    parser = _Assignments()

    def lines():
        with open(path) as handle:
            for number, line in enumerate(handle, start=1):
                text = line.rstrip()
                if text and not text.startswith((" ", "\t", "[", "#", ";")):
                    parser.starts.append(number)
                yield line

    parser.parse(lines())
    return parser.found


def _normal(section: str) -> str:
    return section if section == DEFAULT else section.lower()  # oslo's own normalisation


def check(path: str, namespaces: list[str]) -> list[str]:
    conf = cfg.ConfigOpts()
    names: dict[tuple[str, str], tuple[Any, Any]] = {}  # (section, key) -> (group, opt)
    for name, group, opts in list_opts(namespaces):
        for opt in opts:
            try:
                conf.register_opt(opt, group=None if name == DEFAULT else group)
            except cfg.DuplicateOptError:
                continue  # two namespaces list the same option under different definitions
            names[(_normal(name), opt.dest)] = (name, opt)
            for old in opt.deprecated_opts:
                if old.name or old.group:
                    names.setdefault((_normal(old.group or name), old.name or opt.dest),
                                     (name, opt))
    errors = []
    try:
        conf(args=[], default_config_files=[path], default_config_dirs=[], use_env=False)
    except cfg.RequiredOptError:
        # Raised after the file is loaded. Namespaces list every option a library has, but a
        # service registers some only when it uses them (oslo.middleware's tracing filter): a
        # required option counts only in the groups the file sets, checked below.
        pass
    except (cfg.Error, iniparser.ParseError) as exc:
        return [f"{path}: oslo.config refuses the file: {exc}"]
    groups: set[str] = set()
    lines: dict[tuple[str, str], int] = {}  # (group, dest) -> the line that sets it
    for section, key, line in assignments(path):
        target = names.get((_normal(section), key))
        if target is None:
            errors.append(f"{path}:{line}: [{section}] {key}: no such option in namespaces "
                          f"{', '.join(namespaces)}")
        else:
            groups.add(target[0])
            lines.setdefault((target[0], target[1].dest), line)
    for name, _group, opts in list_opts(namespaces):
        if name not in groups:
            continue
        holder = conf if name == DEFAULT else conf[name]
        for opt in opts:
            try:
                value = getattr(holder, opt.dest)  # type conversion happens on access
            except Exception as exc:  # noqa: BLE001 - any failure is the file's fault here
                where = f"{path}:{lines[(name, opt.dest)]}" if (name, opt.dest) in lines else path
                errors.append(f"{where}: [{name}] {opt.dest}: {type(exc).__name__}: {exc}")
                continue
            if opt.required and value is None:
                errors.append(f"{path}: [{name}] {opt.dest}: required option has no value")
    return errors


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")  # deprecation chatter from eventlet and friends
    if argv[:1] == ["dump"]:
        json.dump(dump(argv[1:]), sys.stdout, indent=1, sort_keys=True)
        return 0
    if argv[:1] == ["check"]:
        files = json.load(sys.stdin)
        json.dump([{"path": f["path"], "errors": check(f["path"], f["namespaces"])}
                   for f in files], sys.stdout, indent=1)
        return 0
    print("usage: oslo_check.py check < files.json | dump NAMESPACE...", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
