"""INI overrides: ``<service>::config::<file name>`` hieradata merged on top of rendered files.

Operators set any option without touching a template (what kolla's ``merge_configs`` does, with
what it lacks: deletion, comments kept, errors instead of silently ignored overrides). The value is
``{section: {option: value}}``, looked up with a ``deep`` merge unless ``lookup_options`` names
another, so per-node data wins over per-service data option by option. Values become text like
puppet-keystone writes it: ``True``/``False``, plain numbers; a list is one line per value for a
multi-valued option (oslo ``MultiOpt``) and one comma-joined value otherwise; the string
``<SERVICE DEFAULT>`` (puppet-openstacklib's marker) removes the option so the service's default
applies.

Which options are multi-valued, and which sections exist, comes from the oslo.config namespaces the
file declares (``oslo_namespaces`` in service.yaml) and the option data generated from the real
packages into ``service_templates/_lib/oslo_options.json`` (``make oslo-data``; ``make test``
fails when it drifts from the packages). A section is accepted when the rendered file has it or
one of its namespaces registers it; anything else is an error naming the key, section and file.
Every option an override or a template sets in such a file must be registered by its namespaces
and have a value oslo.config would read (renderer.optioncheck): an override's error is at its
data file and line, a template's at the rendered file's line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from renderer.bounds import read_regular
from renderer.errors import OverrideError, RenderError, ValidationError, raise_all
from renderer.hiera import Hiera, Sensitive
from renderer.optiondata import OptionData
from renderer.scope import Scope
from renderer.services import Service
from renderer.templates import Rendered

SEPARATOR = "::config::"
ABSENT = "<SERVICE DEFAULT>"
_OPTION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")  # \Z: "$" lets a final newline in
_SECTION = re.compile(r"^[^\[\]\s](?:[^\[\]\r\n]*[^\[\]\s])?\Z")


def apply_overrides(service: Service, rendered: list[Rendered], hiera: Hiera, scope: Scope,
                    options: OptionData, secrets: set[str]) -> list[Rendered]:
    """``rendered`` with every override of ``service`` merged in; every bad one is an error,
    all raised together once each key has been tried (a bad key leaves its files as rendered)."""
    prefix = service.name + SEPARATOR
    keys = hiera.keys_with_prefix(prefix, scope)
    if not keys:
        raise_all(template_errors(rendered, options, secrets, {}))
        return rendered  # the fast path: no lookup
    result = list(rendered)
    errors: list[RenderError] = []
    touched: dict[int, set[tuple[str, str]]] = {}  # what overrides set: not the template's
    for key in keys:
        # The file name has a dot, which a lookup key reads as "dig into": quote the key, as
        # Puppet code must too (lookup('"keystone::config::keystone.conf"')).
        quoted = f'"{key}"' if '"' not in key else key
        try:
            merge = None if "merge" in hiera.lookup_options(quoted, scope) else "deep"
            fail = functools.partial(_fail, hiera, scope, service.name, key, quoted, merge)
            indices = _targets(key[len(prefix):], result, service, fail)
            value = _unwrap(hiera.lookup(quoted, scope, merge=merge), secrets)
            for index in indices:
                result[index] = _merged(result[index], value, options, fail, secrets,
                                        touched.setdefault(index, set()))
        except RenderError as exc:
            errors.append(exc)
    raise_all([*template_errors(result, options, secrets, touched), *errors])
    return result


def _unwrap(value: Any, secrets: set[str], sensitive: bool = False) -> Any:
    """``value`` without Sensitive wrappers; the option values inside one are secrets, but not
    the section and option names (masking those would hide every ``[cache]`` header)."""
    if isinstance(value, Sensitive):
        return _unwrap(value.value, secrets, True)
    if isinstance(value, dict):
        return {k: _unwrap(v, secrets, sensitive) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, secrets, sensitive) for v in value]
    if sensitive and value is not None and not isinstance(value, bool):
        secrets.add(_scalar_text(value))
    return value


def _fail(hiera: Hiera, scope: Scope, service: str, key: str, quoted: str, merge: Any,
          message: str, *path: str) -> OverrideError:
    """The error for ``key``, located at the data file (and line) that holds ``path``."""
    where, line = _origin(hiera, scope, key, quoted, merge, path)
    return OverrideError(f"{key}: {message}", path=where, line=line, service=service)


def _targets(name: str, rendered: list[Rendered], service: Service,
             fail: Callable[..., OverrideError]) -> list[int]:
    """The files named ``name`` that ``service`` renders: one, or the same file in each of the
    service's machines (nova.conf for nova-api, nova-conductor and nova-scheduler)."""
    matches = [i for i, item in enumerate(rendered) if item.spec.dest.name == name]
    if not matches:
        names = ", ".join(sorted({item.spec.dest.name for item in rendered
                                  if item.spec.validate == "ini"})) or "none"
        raise fail(f"{service.name} renders no file named {name!r} (its INI files: {names})")
    for index in matches:
        if rendered[index].spec.validate != "ini":
            raise fail(f"{rendered[index].spec.dest} is not an INI file (validate: ini); "
                       "overrides apply to INI files only")
    return matches


def template_errors(rendered: list[Rendered], options: OptionData, secrets: set[str],
                    touched: dict[int, set[tuple[str, str]]]) -> list[RenderError]:
    """An error for each option a template sets that its file's namespaces do not register, or
    with a value oslo.config would refuse, at the line of the file as it will be written; the
    options overrides set (``touched``, per file index) are the overrides' to report."""
    from renderer import ini
    from renderer.optioncheck import file_values

    errors: list[RenderError] = []
    for index, item in enumerate(rendered):
        if item.spec.validate != "ini" or not item.spec.oslo_namespaces:
            continue
        try:
            layout = ini.parse(item.data.decode("utf-8"))
        except (ini.IniSyntaxError, UnicodeDecodeError):
            continue  # validate says so, at its line
        settings, values = file_values(layout)
        skip = touched.get(index, set())
        settings = [s for s in settings if (s[0], s[1]) not in skip]
        lines = {(s[0], s[1]): s[3] for s in reversed(settings)}  # the first line of each
        catalog = options.catalog(item.spec.oslo_namespaces)
        for section, option, message in catalog.problems(
                [s[:3] for s in settings], values, secrets):
            errors.append(ValidationError(
                f"option: {message}", line=lines[(section, option)],
                path=f"{item.spec.dest} (from {item.spec.template})"))
    return errors


def _merged(item: Rendered, value: Any, options: OptionData,
            fail: Callable[..., OverrideError], secrets: set[str],
            touched: set[tuple[str, str]]) -> Rendered:
    """``item`` with the override ``value`` merged in; what it sets is added to ``touched``."""
    from renderer import ini

    namespaces = item.spec.oslo_namespaces or ()
    groups, multi = options.for_file(namespaces) if namespaces else (frozenset(), frozenset())
    settings, errors = _settings(value, lambda sec, opt: (sec, opt) in multi, fail)
    touched.update((s.section, s.key) for s in settings)
    try:
        layout = ini.parse(item.data.decode("utf-8"))
    except ini.IniSyntaxError as exc:
        raise ValidationError(f"INI: {exc.message}", line=exc.line,
                              path=f"{item.spec.dest} (from {item.spec.template})") from exc
    unknown = dict.fromkeys(s.section for s in settings
                            if s.section not in layout.sections and s.section not in groups)
    registers = " nor does any oslo.config namespace of it" if namespaces else ""
    raise_all([*errors, *(fail(f"section [{section}] is not in {item.spec.dest}: its template "
                               f"does not render it{registers}", section) for section in unknown)])
    text = ini.merge(layout, settings)
    if namespaces:
        from renderer.optioncheck import file_values

        _, values = file_values(ini.parse(text))
        raise_all([fail(f"{item.spec.dest}: {message}", section, option)
                   for section, option, message in options.catalog(namespaces).problems(
                       [(s.section, s.key, s.values) for s in settings if s.values],
                       values, secrets)])
    return Rendered(item.spec, text.encode("utf-8"))


def _settings(value: Any, is_multi: Callable[[str, str], bool],
              fail: Callable[..., OverrideError]) -> tuple[list[Any], list[RenderError]]:
    """The settings of an override value, and the errors of its bad sections and options."""

    if not isinstance(value, dict):
        raise fail(f"must be a hash of {{section: {{option: value}}}}, not {_kind(value)}")
    settings: list[Any] = []
    errors: list[RenderError] = []
    for section, opts in value.items():
        if not isinstance(section, str) or not _SECTION.match(section):
            errors.append(fail(f"invalid section name {section!r}"))
            continue
        if not isinstance(opts, dict):
            errors.append(fail(f"section [{section}] must be a hash of {{option: value}}, not "
                               f"{_kind(opts)}", section))
            continue
        for option, item in opts.items():
            if not isinstance(option, str) or not _OPTION.match(option):
                errors.append(fail(f"[{section}]: invalid option name {option!r}", section))
                continue
            try:
                settings.append(_setting(section, option, item, is_multi, fail))
            except OverrideError as exc:
                errors.append(exc)
    return settings, errors


def _setting(section: str, option: str, item: Any, is_multi: Callable[[str, str], bool],
             fail: Callable[..., OverrideError]) -> Any:
    """One option's Setting."""
    from renderer.ini import Setting

    where = f"[{section}] {option}"
    if item == ABSENT:
        return Setting(section, option, ())
    if isinstance(item, list):
        values = tuple(_scalar(v, where, section, option, fail) for v in item)
        if not is_multi(section, option):
            values = (",".join(values),)
        return Setting(section, option, values)
    return Setting(section, option, (_scalar(item, where, section, option, fail),))


def _scalar(value: Any, where: str, section: str, option: str,
            fail: Callable[..., OverrideError]) -> str:
    """An option value as puppet-keystone writes it."""
    if isinstance(value, (bool, int, float)):
        return _scalar_text(value)
    if isinstance(value, str) and value != ABSENT:
        if "\n" in value or "\r" in value:
            raise fail(f"{where}: a value cannot span lines", section, option)
        return value
    if value is None:
        raise fail(f"{where}: null value; write '{ABSENT}' to remove the option",
                   section, option)
    if value == ABSENT:
        raise fail(f"{where}: '{ABSENT}' removes an option, it cannot be a list item",
                   section, option)
    raise fail(f"{where}: must be a string, number, boolean or list of those, not "
               f"{_kind(value)}", section, option)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _kind(value: Any) -> str:
    names = {dict: "a hash", list: "an array", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _origin(hiera: Hiera, scope: Scope, key: str, quoted: str, merge: Any,
            path: tuple[str, ...]) -> tuple[str | None, int | None]:
    """The data file (and line) that holds ``key`` and, inside it, ``path``: the highest
    priority one, as the merged value shows it. Only computed for an error."""
    found: list[str] = []

    def explain(event: str, details: dict) -> None:
        if event == "location" and details["found"] and _dig(details["value"], path):
            found.append(details["path"])

    try:
        hiera.lookup(quoted, scope, merge=merge, default=None, explain=explain)
    except RenderError:
        return None, None
    if not found:
        return None, None
    return found[0], _line(found[0], (key, *path))


def _dig(value: Any, path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def _line(path: str, keys: tuple[str, ...]) -> int | None:
    """The 1-based line of the innermost of ``keys`` in a YAML file (None if it cannot tell)."""
    import yaml

    try:
        node = yaml.compose(read_regular(path, RenderError).decode("utf-8", "replace"),
                            Loader=yaml.SafeLoader)
    except (RenderError, yaml.YAMLError):
        return None
    line = None
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if key_node.value == key:
                line, node = key_node.start_mark.line + 1, value_node
                break
        else:
            break
    return line
