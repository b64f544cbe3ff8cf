"""Scope: the facts, trusted data and variables a hiera lookup is resolved against.

Puppet resolves ``%{facts.x}``, ``%{trusted.certname}``, ``%{::x}`` and ``%{x}`` against the node's
facts and its top-scope variables (every fact is also a top-scope variable). render builds the same
thing from a small native fact set (cheap: no Facter, no subprocess, no DNS), a ``--facts`` file
(plain YAML/JSON or Puppet's cached facts with a ``values:`` mapping), ``--var KEY=VALUE`` and,
per service, the variables ``service`` and ``machine``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from renderer import manifest
from renderer.bounds import read_regular
from renderer.errors import UsageError


class Scope:
    """What interpolation can see. ``variables`` shadow facts of the same name at top scope.
    Immutable and compared by value; a plain slotted class (a dataclass costs its creation and
    the dataclasses import at every start)."""

    __slots__ = ("facts", "trusted", "variables")
    facts: dict[str, Any]
    trusted: dict[str, Any]
    variables: dict[str, Any]

    def __init__(self, facts: dict[str, Any] | None = None, trusted: dict[str, Any] | None = None,
                 variables: dict[str, Any] | None = None) -> None:
        set_field = object.__setattr__
        set_field(self, "facts", {} if facts is None else facts)
        set_field(self, "trusted", {} if trusted is None else trusted)
        set_field(self, "variables", {} if variables is None else variables)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Scope)
        return (self.facts, self.trusted, self.variables) == (other.facts, other.trusted,
                                                              other.variables)

    __hash__ = None  # type: ignore[assignment]  # it holds dicts: not hashable

    def __repr__(self) -> str:
        return (f"Scope(facts={self.facts!r}, trusted={self.trusted!r}, "
                f"variables={self.variables!r})")

    def top(self, name: str) -> Any:
        """A top-scope variable (``%{x}`` / ``%{::x}``); None when unset."""
        if name in self.variables:
            return self.variables[name]
        if name == "facts":
            return self.facts
        if name == "trusted":
            return self.trusted
        return self.facts.get(name)

    def has_top(self, name: str) -> bool:
        return name in self.variables or name in self.facts or name in ("facts", "trusted")

    def with_variables(self, **variables: Any) -> "Scope":
        """The scope of one service: same facts, plus ``service``/``machine`` and the like."""
        return Scope(self.facts, self.trusted, {**self.variables, **variables})


def _read_os_release(path: str = "/etc/os-release") -> dict[str, str]:
    values: dict[str, str] = {}
    manifest.note(path)
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                key, sep, value = line.strip().partition("=")
                if sep:
                    values[key] = value.strip().strip('"')
    except OSError:
        pass
    return values


def _domain_from_resolv_conf(path: str = "/etc/resolv.conf") -> str:
    """Facter's fallback for the domain: resolv.conf ``domain``, else the first ``search``."""
    search = ""
    manifest.note(path)
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                words = line.split()
                if len(words) >= 2 and words[0] == "domain":
                    return words[1]
                if len(words) >= 2 and words[0] == "search" and not search:
                    search = words[1]
    except OSError:
        pass
    return search


_OS_FAMILY = {"debian": "Debian", "ubuntu": "Debian", "rhel": "RedHat", "centos": "RedHat",
              "rocky": "RedHat", "almalinux": "RedHat", "fedora": "RedHat", "sles": "Suse",
              "opensuse": "Suse", "arch": "Archlinux"}


def native_facts() -> dict[str, Any]:
    """The minimal fact set, computed without DNS or subprocesses so every run stays fast."""
    node = manifest.value("nodename")  # what gethostname() returns, without importing socket
    hostname, _, domain = node.partition(".")
    if not domain:
        domain = _domain_from_resolv_conf()
    fqdn = f"{hostname}.{domain}" if domain else hostname
    release = _read_os_release()
    os_id = release.get("ID", "").lower()
    name = release.get("NAME", "").split()[0] if release.get("NAME") else os_id.capitalize()
    version = release.get("VERSION_ID", "")
    family = _OS_FAMILY.get(os_id)
    if family is None:
        like = release.get("ID_LIKE", "").split()
        family = next((_OS_FAMILY[i] for i in like if i in _OS_FAMILY), name)
    return {
        "hostname": hostname,
        "domain": domain,
        "fqdn": fqdn,
        "networking": {"hostname": hostname, "domain": domain, "fqdn": fqdn},
        "os": {"family": family, "name": name,
               "release": {"full": version, "major": version.split(".")[0]}},
        "kernel": "Linux",
    }


def load_facts_file(path: str) -> dict[str, Any]:
    """Facts from YAML or JSON; Puppet's cached facts (``values:`` mapping) are unwrapped.

    As ``puppet lookup --facts``: ``*.json`` is JSON (where ``1e5`` is a number, not the string
    YAML makes of it), ``*.yaml``/``*.yml`` is YAML, anything else is tried as JSON, then YAML.
    Puppet writes its facts cache as ``--- !ruby/object:Puppet::Node::Facts``: Ruby tags are read
    as plain mappings instead of being rejected.
    """
    from renderer.hiera.psych import PLAIN_TAG, PsychLoader, Rejected, Symbol
    from renderer.yamlload import decode, parse_yaml  # only when --facts is given

    class FactsLoader(PsychLoader):
        """Psych's typing, as Puppet reads the file; dates and symbols are kept as text rather
        than refused, so that Puppet's own cache (timestamps, Ruby tags) can be read too."""

        def construct_plain(self, node: Any) -> Any:
            try:
                value = super().construct_plain(node)
            except Rejected:
                return node.value
            return node.value if type(value) is Symbol else value

    FactsLoader.add_constructor(PLAIN_TAG, FactsLoader.construct_plain)
    FactsLoader.add_multi_constructor(
        "!ruby/", lambda loader, suffix, node: loader.construct_mapping(node, deep=True))
    raw = read_regular(path, UsageError)  # a FIFO is refused, never waited on
    text = decode(raw, Path(path), UsageError).removeprefix("\ufeff")
    data: Any = None
    if not path.endswith((".yaml", ".yml")):
        import json

        try:
            data = json.loads(text)
        except ValueError as exc:
            if path.endswith(".json"):
                raise UsageError(f"invalid JSON: {exc}", path=path) from exc
            data = parse_yaml(text, Path(path), FactsLoader, UsageError)
    else:
        data = parse_yaml(text, Path(path), FactsLoader, UsageError)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: facts must be a mapping, not {type(data).__name__}")
    if isinstance(data.get("values"), dict) and "name" in data:
        data = data["values"]
    return dict(data)


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = {}
            target[part] = child
        else:
            child = dict(child)
            target[part] = child
        target = child
    target[parts[-1]] = value


# Top-scope variables every ``puppet lookup`` sees besides the facts (``$name`` and ``$title`` are
# those of class ``main``, the scope lookups run in).
PUPPET_TOP = {"name": "main", "title": "main", "server_facts": {}}
TRUSTED_FACTS = ("hostname", "domain", "fqdn", "clientcert")


def _sanitized(fact: Any) -> Any:
    """``Puppet::Node::Facts#sanitize``: numbers, booleans and strings stay, containers are walked
    (keys too), anything else becomes its ``to_s``, so a null fact is ``""``."""
    if isinstance(fact, dict):
        return {_sanitized(key): _sanitized(value) for key, value in fact.items()}
    if isinstance(fact, list):
        return [_sanitized(item) for item in fact]
    if fact is None:
        return ""
    return fact if isinstance(fact, (str, int, float, bool)) else str(fact)


def build_scope(node: str | None = None, facts_file: str | None = None,
                variables: list[str] | tuple[str, ...] = (),
                environment: str = "production", extensions: list[str] | tuple[str, ...] = ()
                ) -> Scope:
    """The scope ``puppet lookup --node NODE --facts FILE`` builds; ``render`` and
    ``render lookup`` share it, so a key resolves the same in both and as in Puppet.

    With a facts file, the facts are that file alone (Puppet runs no Facter then), and
    ``trusted.certname`` is the file's ``clientcert`` fact, not ``--node`` (without one it is
    undefined, as in Puppet). If the file names any of hostname, domain, fqdn, clientcert it must
    name all four, as Puppet demands. Without a facts file (Puppet would run Facter), the native
    facts stand in, and ``--node`` (default: the host's fqdn) is ``trusted.certname`` and the
    ``clientcert`` fact. ``--var KEY=VALUE`` sets a top-scope variable, not a fact (Puppet: a
    variable set in site.pp), an array or hash when VALUE is written as JSON; a dotted KEY sets a
    nested fact instead. ``extensions`` (``--trusted-extension pp_role=web``) are
    ``trusted.extensions``, which Puppet takes from the node's certificate; ``--var trusted...``
    cannot set them and is refused.
    """
    if not facts_file:
        facts = native_facts()
        certname: Any = node or facts.get("fqdn") or manifest.value("nodename")
        facts["clientcert"] = certname
        name, _, dns_domain = str(certname).partition(".")
        trusted: dict[str, Any] = {"authenticated": "local", "certname": certname,
                                   "domain": dns_domain, "hostname": name, "extensions": {},
                                   "external": {}}
    else:
        facts = _sanitized(load_facts_file(facts_file))
        trusted = _trusted(facts, facts_file)
    top = _top(facts, environment)
    for item in extensions:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--trusted-extension expects KEY=VALUE, got {item!r}")
        trusted["extensions"][key] = text
    for item in variables:
        key, sep, text = item.partition("=")
        key = key.removeprefix("::")
        if not sep or not key:
            raise UsageError(f"--var expects KEY=VALUE, got {item!r}")
        if key == "trusted" or key.startswith("trusted."):
            raise UsageError(f"--var {key}: $trusted cannot be set as a variable (Puppet "
                             "reserves it); use --trusted-extension KEY=VALUE for "
                             "trusted.extensions")
        value = _json_container(text)
        if "." in key:
            _set_dotted(facts, key.removeprefix("facts."), value)
        else:
            top[key] = value
    return Scope(facts=facts, trusted=trusted, variables=top)


def _trusted(facts: dict[str, Any], where: str) -> dict[str, Any]:
    """``$trusted`` as ``puppet lookup --facts`` makes it from the facts alone."""
    given = [key for key in TRUSTED_FACTS if key in facts]
    if given and len(given) != len(TRUSTED_FACTS):
        raise UsageError(f"{where}: When overriding any of the {','.join(TRUSTED_FACTS)}"
                         " facts with --facts, they must all be overridden.")
    certname = facts.get("clientcert")
    if certname is not None and type(certname) is not str:
        raise UsageError(f"{where}: the clientcert fact must be a string")
    # Ruby's certname.split('.', 2): "" has no parts, "n1" has no domain
    hostname, domain = (certname.split(".", 1) + [None])[:2] if certname else (None, None)
    return {"authenticated": "local", "certname": certname, "extensions": {},
            "hostname": hostname, "domain": domain, "external": {}}


def _top(facts: dict[str, Any], environment: str) -> dict[str, Any]:
    top: dict[str, Any] = {key: value for key, value in PUPPET_TOP.items() if key not in facts}
    top["environment"] = environment
    return top


def facts_scope(facts: dict[str, Any], where: str, environment: str = "production",
                extensions: dict[str, Any] | None = None, certname: str | None = None
                ) -> Scope:
    """The scope ``build_scope`` makes from a facts file, for facts already read (``render
    preview``'s factsets): ``where`` names them in errors; ``certname`` (a PuppetDB or
    onceover name) stands in when the facts have no ``clientcert``."""
    facts = _sanitized(facts)
    if certname is not None and "clientcert" not in facts:
        facts = {**facts, "clientcert": certname}
        for key, value in zip(("hostname", "domain", "fqdn"),
                              (*(certname.split(".", 1) + [""])[:2], certname)):
            facts.setdefault(key, value)
    trusted = _trusted(facts, where)
    trusted["extensions"].update(extensions or {})
    return Scope(facts=facts, trusted=trusted, variables=_top(facts, environment))


def _json_container(text: str) -> Any:
    """A ``--var`` value: an array or hash when written as JSON (``roles=["db","web"]``, for
    ``mapped_paths``), else the string itself."""
    if text[:1] in ("[", "{"):
        import json

        try:
            return json.loads(text)
        except ValueError:
            pass
    return text
