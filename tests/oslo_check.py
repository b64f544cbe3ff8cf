"""Read rendered OpenStack INI files with real oslo.config, the way the services do.

Runs under ``.venv-oslo/bin/python`` (the OpenStack packages from PyPI, installed by ``make test``;
render's own virtualenv stays light). One call checks every file, since starting Python and
loading the option definitions is most of the cost.

``check``: stdin is JSON ``[{"path": ..., "namespaces": [...], "service": ...}]``; the files of
one service share a process, each service gets its own. For each file: a fresh
``ConfigOpts``, the options of its namespaces registered as oslo-config-generator lists them
(``generator._list_opts``: entry points ``oslo.config.opts``, defaults updaters, driver options),
the file loaded with ``conf(args=[], default_config_files=[path])``, then every option of every
group the file sets is read, which runs oslo's type conversion (``debug = maybe`` fails here), and
every option name the file sets must be registered (oslo itself ignores unknown names silently).
Prints JSON ``[{"path": ..., "errors": ["<path>:<line>: <message>", ...]}]``.

``dump``: stdin is JSON ``{service: [namespace, ...]}``; prints JSON ``{"namespaces": {namespace:
{"groups": [...], "multi": {group: [option]}, "options": {group: {option: spec}}}},
"auth_plugins": {plugin: {option: spec}}}``, the data render ships in
``service_templates/_lib/oslo_options.json`` to know which sections exist, which options are
multi-valued (``MultiOpt``), and every option's name, deprecated names and type with its bounds
(``spec``, see ``spec``), so render checks option names and values without oslo.config.
"""

from __future__ import annotations

import json
import multiprocessing
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


def type_spec(kind: Any) -> dict[str, Any]:
    """An oslo type as data: {"type": bool|int|port|float|str|list|<other>, bounds...}. Only
    what render checks is spelled out; any other type is named and accepted as text."""
    from oslo_config import types

    spec: dict[str, Any]
    if isinstance(kind, types.Boolean):
        return {"type": "bool"}
    if isinstance(kind, (types.Integer, types.Float)):
        spec = {"type": "port" if isinstance(kind, types.Port) else
                "int" if isinstance(kind, types.Integer) else "float"}
        spec.update({k: getattr(kind, k) for k in ("min", "max")
                     if getattr(kind, k, None) is not None})
        if kind.choices:
            spec["choices"] = sorted(kind.choices)
        return spec
    if isinstance(kind, types.String) and type(kind) is types.String:
        spec = {"type": "str"}
        if kind.choices:
            spec["choices"] = sorted(str(c) for c in kind.choices)
            if kind.ignore_case:
                spec["ignore_case"] = True
        return spec
    if isinstance(kind, types.List):
        return {"type": "list", "item": type_spec(kind.item_type)}
    return {"type": type(kind).__name__.lower()}


def opt_spec(opt: Any, group: str) -> dict[str, Any]:
    spec = type_spec(opt.type)
    old = sorted({(o.group or group, o.name or opt.dest) for o in opt.deprecated_opts
                  if o.name or o.group} - {(group, opt.dest)})
    if old:
        spec["deprecated"] = [list(pair) for pair in old]
    if opt.secret:
        spec["secret"] = True
    return spec


def dump(namespaces: list[str]) -> dict[str, Any]:
    warnings.simplefilter("ignore")
    data = {}
    for namespace in namespaces:
        groups: set[str] = set()
        multi: dict[str, set[str]] = {}
        options: dict[str, dict[str, Any]] = {}
        for name, _group, opts in list_opts([namespace]):
            groups.add(name)
            for opt in opts:
                if isinstance(opt, cfg.MultiOpt):
                    multi.setdefault(name, set()).add(opt.dest)
                if not (name == DEFAULT and opt.dest in _OWN_OPTS):
                    options.setdefault(name, {}).setdefault(opt.dest, opt_spec(opt, name))
        data[namespace] = {"groups": sorted(groups),
                           "multi": {g: sorted(o) for g, o in sorted(multi.items())},
                           "options": options}
    return data


def dump_auth_plugins(_: Any = None) -> dict[str, Any]:
    """Every installed keystoneauth plugin's options: a group whose ``auth_type`` names one
    gets them when the service loads it (keystone_authtoken, [nova] in neutron.conf, ...)."""
    warnings.simplefilter("ignore")
    from keystoneauth1 import loading

    return {name: {opt.dest: opt_spec(opt, "") for opt in
                   loading.get_auth_plugin_conf_options(name)}
            for name in sorted(loading.get_available_plugin_names())}


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


# ConfigOpts registers its own command line options; the oslo.config namespace lists them too.
_OWN_OPTS = {"config_file", "config_dir", "config_source"}
# keystoneauth plugins add options to a group at run time, named by its auth_type.
_AUTH_TYPE = ("auth_type", "auth_plugin")


class _Registry:
    """One ConfigOpts and what is registered: (section, key) -> (group name, opt)."""

    def __init__(self) -> None:
        self.conf = cfg.ConfigOpts()
        self.names: dict[tuple[str, str], tuple[str, Any]] = {}
        self.groups: dict[str, list[Any]] = {}

    def register(self, name: str, group: Any, opts: list[Any]) -> None:
        for opt in opts:
            if not (name == DEFAULT and opt.dest in _OWN_OPTS):
                try:
                    self.conf.register_opt(opt, group=None if name == DEFAULT else group)
                except cfg.DuplicateOptError:
                    continue  # two namespaces define an option of the same name differently
            self.groups.setdefault(name, []).append(opt)
            self.names[(_normal(name), opt.dest)] = (name, opt)
            for old in opt.deprecated_opts:
                if old.name or old.group:
                    self.names.setdefault((_normal(old.group or name), old.name or opt.dest),
                                          (name, opt))

    def add_auth_plugins(self, sections: set[str]) -> None:
        """Register the keystoneauth plugin options of every group that names a plugin, as
        keystonemiddleware and the service clients do when they load it."""
        from keystoneauth1 import loading

        for name in sorted(self.groups):
            if name == DEFAULT or _normal(name) not in sections:
                continue
            for option in _AUTH_TYPE:
                plugin = getattr(self.conf[name], option, None) \
                    if any(o.dest == option for o in self.groups[name]) else None
                if plugin:
                    self.register(name, name, loading.get_auth_plugin_conf_options(plugin))


    def add_backend_sections(self) -> None:
        """Register the options of the sections ``enabled_backends`` creates, as the services do
        at start-up: cinder-volume registers its backend options (``[backend_defaults]``) in
        each backend's group; glance_store's ``register_store_opts`` each store's options in
        the store's group."""
        groups = {o.dest for o in self.groups.get(DEFAULT, [])}
        if "enabled_backends" not in groups:
            return
        if "backend_defaults" in self.groups:
            for backend in self.conf.enabled_backends or []:
                self.register(backend, backend, list(self.groups["backend_defaults"]))
        elif "glance_store" in self.groups and self.conf.enabled_backends:
            from glance_store import multi_backend

            multi_backend.register_store_opts(self.conf)
            for store in self.conf.enabled_backends:
                opts = [o["opt"] for o in self.conf._groups[store]._opts.values()]
                self.register(store, store, opts)


def check(path: str, namespaces: list[str]) -> list[str]:
    registry = _Registry()
    for name, group, opts in list_opts(namespaces):
        registry.register(name, group, opts)
    conf = registry.conf
    try:
        conf(args=[], default_config_files=[path], default_config_dirs=[], use_env=False)
    except cfg.RequiredOptError:
        # Raised after the file is loaded. Namespaces list every option a library has, but a
        # service registers some only when it uses them (oslo.middleware's tracing filter): a
        # required option counts only in the groups the file sets, checked below.
        pass
    except (cfg.Error, iniparser.ParseError) as exc:
        return [f"{path}: oslo.config refuses the file: {exc}"]
    found = assignments(path)
    try:
        registry.add_backend_sections()
    except Exception as exc:  # noqa: BLE001 - a broken enabled_backends is the file's fault
        return [f"{path}: enabled_backends: {type(exc).__name__}: {exc}"]
    try:
        registry.add_auth_plugins({_normal(section) for section, _, _ in found})
    except Exception as exc:  # noqa: BLE001 - an unknown plugin name is the file's fault
        return [f"{path}: auth plugin: {type(exc).__name__}: {exc}"]
    errors = []
    lines: dict[tuple[str, str], int] = {}  # (group, dest) -> the line that sets it
    for section, key, line in found:
        target = registry.names.get((_normal(section), key))
        if target is None:
            errors.append(f"{path}:{line}: [{section}] {key}: no such option in namespaces "
                          f"{', '.join(namespaces)}")
        else:
            lines.setdefault((target[0], target[1].dest), line)
    for name in sorted({group for group, _ in lines}):
        errors.extend(_read_group(conf, name, registry.groups[name], lines, path))
    return errors


def _read_group(conf: Any, name: str, opts: list[Any], lines: dict[tuple[str, str], int],
                path: str) -> list[str]:
    """Read every option of a group the file sets: oslo converts (and so checks) on access."""
    holder = conf if name == DEFAULT else conf[name]
    errors = []
    for opt in opts:
        line = lines.get((name, opt.dest))
        try:
            value = getattr(holder, opt.dest)
        except (cfg.NoSuchOptError, cfg.TemplateSubstitutionError):
            if line is None:
                continue  # a default such as $state_path names an option of another file the
                # service loads too (neutron.conf for the agents); not this file's doing
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is the file's fault here
            where = f"{path}:{line}" if line else path
            errors.append(f"{where}: [{name}] {opt.dest}: {type(exc).__name__}: {exc}")
            continue
        if opt.required and value is None:
            errors.append(f"{path}: [{name}] {opt.dest}: required option has no value")
    return errors


def _in_children(function: Any, work: list[Any]) -> list[Any]:
    """``function`` over ``work``, each item in a fresh forked child, two at a time.

    Loading a project's options imports its modules, and those register options on the global
    cfg.CONF as a side effect: glance and heat both register public_endpoint, so two projects
    cannot share a process.
    """
    with multiprocessing.get_context("fork").Pool(2, maxtasksperchild=1) as pool:
        return pool.map(function, work, chunksize=1)


def _check_group(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    warnings.simplefilter("ignore")
    return [{"path": f["path"], "errors": check(f["path"], f["namespaces"])} for f in files]


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")  # deprecation chatter from eventlet and friends
    if argv[:1] == ["dump"]:
        services = json.load(sys.stdin)
        data: dict[str, Any] = {}
        for part in _in_children(dump, list(services.values())):
            for namespace, value in part.items():
                if data.setdefault(namespace, value) != value:
                    raise SystemExit(f"oslo_check: {namespace} differs between projects")
        [plugins] = _in_children(dump_auth_plugins, [None])
        json.dump({"namespaces": data, "auth_plugins": plugins}, sys.stdout, indent=1,
                  sort_keys=True)
        return 0
    if argv[:1] == ["check"]:
        files = json.load(sys.stdin)
        groups: dict[str, list[dict[str, Any]]] = {}
        for item in files:
            groups.setdefault(item.get("service", ""), []).append(item)
        results = _in_children(_check_group, list(groups.values()))
        json.dump([r for group in results for r in group], sys.stdout, indent=1)
        return 0
    print("usage: oslo_check.py check < files.json | dump < namespaces.json", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
