"""Option names and values checked against oslo.config's own definitions, before writing.

oslo.config ignores an option it does not know, silently: ``memcache_pool_maxsze = 30`` is
written and never read. So every option an INI override or a template sets in a file that
declares ``oslo_namespaces`` must be one those namespaces register (a deprecated name or group
oslo still accepts counts), and its value must convert the way oslo converts it where the data
says how (a boolean, an integer or port in range, a float, one of the choices, their lists). The
data is ``_lib/oslo_options.json`` (``make oslo-data``, from the real packages), read as JSON: no
oslo.config import.

Sections that only exist at run time are known too: a group whose ``auth_type`` names a
keystoneauth plugin gets that plugin's options; each backend section that cinder's
``enabled_backends`` lists gets ``[backend_defaults]``' options, and each store glance's
``enabled_backends`` (``name:type``) lists gets its store type's options.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DEFAULT = "DEFAULT"
_AUTH_TYPE = ("auth_type", "auth_plugin")
_TRUE = ("true", "1", "on", "yes")
_FALSE = ("false", "0", "off", "no")
_GLANCE_RESERVED = ("os_glance_staging_store", "os_glance_tasks_store")  # file stores


def normal(section: str) -> str:
    """oslo.config's own normalisation of a group name."""
    return section if section == DEFAULT else section.lower()


class Catalog:
    """The options a file reading ``namespaces`` may set: (group, option) -> spec."""

    def __init__(self, data: dict[str, Any], plugins: dict[str, Any],
                 namespaces: tuple[str, ...]) -> None:
        self.namespaces = namespaces
        self.plugins = plugins
        self.groups: dict[str, dict[str, Any]] = {}
        self.aliases: dict[tuple[str, str], dict[str, Any]] = {}
        for name in namespaces:
            for group, options in data[name].get("options", {}).items():
                known = self.groups.setdefault(normal(group), {})
                for option, spec in options.items():
                    known.setdefault(option, spec)
                    for old_group, old_name in spec.get("deprecated", ()):
                        self.aliases.setdefault((normal(old_group), old_name), spec)
            for group in data[name]["groups"]:
                self.groups.setdefault(normal(group), {})

    def dynamic(self, values: dict[tuple[str, str], str]) -> dict[str, dict[str, Any]]:
        """The options of the sections that the file's own values create (see the module)."""
        extra: dict[str, dict[str, Any]] = {}
        backends = values.get((DEFAULT, "enabled_backends"), "")
        names = [part.strip() for part in backends.split(",") if part.strip()]
        if "backend_defaults" in self.groups:  # cinder: a list of section names
            for name in names:
                extra.setdefault(normal(name), {}).update(self.groups["backend_defaults"])
        elif "glance_store" in self.groups:  # glance: name:type
            stores = [(n.partition(":")[0].strip(), n.partition(":")[2].strip()) for n in names]
            for name, kind in [*stores, *((r, "file") for r in _GLANCE_RESERVED)]:
                options = self.groups.get(f"glance.store.{kind}.store") or \
                    self.groups.get(kind, {})
                extra.setdefault(normal(name), {}).update(options)
        for (section, option), value in values.items():
            if option in _AUTH_TYPE and value in self.plugins:
                extra.setdefault(normal(section), {}).update(self.plugins[value])
        return extra

    def problems(self, settings: Iterable[tuple[str, str, tuple[str, ...]]],
                 values: dict[tuple[str, str], str],
                 secrets: set[str]) -> list[tuple[str, str, str]]:
        """(section, option, message) for every setting that oslo would not read as meant."""
        extra = self.dynamic(values)
        found = []
        unknown: set[str] = set()
        for section, option, items in settings:
            group = normal(section)
            options = {**self.groups.get(group, {}), **extra.get(group, {})}
            spec = options.get(option) or self.aliases.get((group, option))
            if spec is None and group not in self.groups and group not in extra:
                if group not in unknown:
                    unknown.add(group)
                    found.append((section, option, self._no_section(section)))
                continue
            if spec is None:
                found.append((section, option, self._no_option(section, option, options)))
                continue
            if option in _AUTH_TYPE and items and items[0] not in self.plugins \
                    and "$" not in items[0]:
                found.append((section, option, f"[{section}] {option}: {items[0]!r} is no "
                              "keystoneauth plugin (known: " + ", ".join(self.plugins) + ")"))
                continue
            for item in items:
                problem = value_problem(spec, item)
                if problem:
                    shown = "the value" if spec.get("secret") or \
                        any(s and s in item for s in secrets) else repr(item[:40])
                    found.append((section, option, f"[{section}] {option}: {shown} {problem}"))
        return found

    def _where(self) -> str:
        return "namespaces " + ", ".join(self.namespaces)

    def _no_section(self, section: str) -> str:
        import difflib  # only for a misspelt name's hint

        close = difflib.get_close_matches(normal(section), list(self.groups), n=1)
        hint = f" (did you mean `[{close[0]}]`?)" if close else ""
        return f"[{section}]: no such section in {self._where()}{hint}"

    def _no_option(self, section: str, option: str, options: dict[str, Any]) -> str:
        import difflib

        close = difflib.get_close_matches(option, list(options), n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        return f"[{section}] {option}: no such option in {self._where()}{hint}"


def value_problem(spec: dict[str, Any], value: str) -> str | None:
    """Why oslo.config would refuse ``value`` for an option of type ``spec``, or None."""
    kind = spec.get("type")
    if "$" in value:
        return None  # oslo substitutes $option first; the result is checked by the service
    if kind == "bool":
        if value.lower() in _TRUE or value.lower() in _FALSE:
            return None
        return "is not a boolean (true/false, yes/no, on/off, 1/0)"
    if kind in ("int", "port", "float"):
        return _number_problem(spec, value)
    if kind == "str" and "choices" in spec:
        text = value[1:-1] if len(value) > 1 and value[0] in "\"'" and value[-1] == value[0] \
            else value
        choices = spec["choices"]
        if spec.get("ignore_case"):
            text, choices = text.lower(), [c.lower() for c in choices]
        return None if text in choices else f"is not one of {', '.join(spec['choices'])}"
    if kind == "list" and spec["item"].get("type") in ("bool", "int", "port", "float", "str"):
        if any(c in value for c in "\"'[]"):
            return None  # quoted or bracketed items: oslo's own list lexer decides
        for item in (part.strip() for part in value.split(",")):
            problem = value_problem(spec["item"], item) if item else None
            if problem:
                return f"has the item {item[:40]!r}, which {problem}"
    return None


def _number_problem(spec: dict[str, Any], value: str) -> str | None:
    text = value.strip()
    if not text:
        return None  # oslo reads an empty number as unset
    kind = spec["type"]
    try:
        number: float = float(text) if kind == "float" else int(text)
    except ValueError:
        names = {"int": "an integer", "port": "a port number", "float": "a number"}
        return f"is not {names[kind]}"
    if "choices" in spec:
        return None if number in spec["choices"] else \
            "is not one of " + ", ".join(str(c) for c in spec["choices"])
    low, high = spec.get("min"), spec.get("max")
    if kind == "port" and not (low or 0) <= number <= (65535 if high is None else high):
        return f"is not a port number ({low or 0}-{65535 if high is None else high})"
    if low is not None and number < low:
        return f"is below the minimum {low}"
    if high is not None and number > high:
        return f"is above the maximum {high}"
    return None


def file_values(layout: Any) -> tuple[list[tuple[str, str, tuple[str, ...], int]],
                                      dict[tuple[str, str], str]]:
    """Every assignment of an ``ini.Layout`` as (section, key, (value,), 1-based line), and the
    last value of each (section, key): what oslo reads for a single-valued option."""
    settings: list[tuple[str, str, tuple[str, ...], int]] = []
    values: dict[tuple[str, str], str] = {}
    for option in layout.options:
        value = _value(layout.lines[option.first]) if option.first == option.last else None
        # a continued value is not checked: oslo's lexer decides how its lines join
        items: tuple[str, ...] = () if value is None else (value,)
        settings.append((option.section, option.key, items, option.first + 1))
        if value is not None:
            values[(option.section, option.key)] = value
    return settings, values


def _value(line: str) -> str:
    """The value of a ``key = value`` or ``key: value`` line, as oslo's iniparser reads it."""
    cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=len(line))
    value = line[cut + 1:].strip()
    if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value
