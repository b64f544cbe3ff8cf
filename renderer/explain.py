"""``render lookup --explain``: how a value was found, in the spirit of ``puppet lookup --explain``.

The hiera engine reports events (see ``renderer.hiera.lookup.Explain``); this module turns them into
an indented text tree as they arrive, so a lookup that fails half-way still shows every file it read
up to the failure:

    Searching for "ntp::servers"
      Merge strategy unique (from lookup_options)
      Hierarchy entry "Per node"
        Path "/etc/puppetlabs/code/environments/production/data/nodes/n1.yaml"
          Original path: "nodes/%{trusted.certname}.yaml"
          Found key: "ntp::servers" value: ["ntp1"]
      ...
      Merged result: ["ntp1","ntp0"]

Lookups made on the way (``lookup_options``, ``%{lookup('k')}``) nest inside the lookup that needed
them. Secrets never show: a key that ``lookup_options`` converts to Sensitive, a key whose name
looks secret (``*password``, ``*secret*``, ...; see ``renderer.masking``) and Sensitive values print
as ``Sensitive [value redacted]``, and a password inside a URL is masked wherever it appears.
Every line printed also goes through a masker that learns each secret value as it is found, so a
secret interpolated into another key's value (found first: the inner lookup nests) or quoted by
an error is masked too, line by line for a multi-line one.
"""

from __future__ import annotations

import re
from typing import Any, TextIO

from renderer.hiera.ruby import JSONError, to_json
from renderer.hiera.sensitive import REDACTED, Sensitive
from renderer.masking import Masker, secret_strings
from renderer.names import printable

_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s\"]*:)[^\s\"]*@")
_URL_NAME = re.compile(r"(connection|url)$")


def secret_key(key: str) -> bool:
    """A key whose name says it holds a secret (the option-name rules of ``renderer.masking``)."""
    from renderer.masking import is_secret_option

    name = key.rsplit("::", 1)[-1]
    return is_secret_option(None, name) and not _URL_NAME.search(name.lower())


def shown(value: Any, secret: bool) -> str:
    """A value as compact JSON, with secrets masked."""
    if secret:
        return f'"{REDACTED}"'
    try:
        text = to_json(value)
    except JSONError:
        text = repr(value)
    return _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)


class Explainer:
    """Receives the engine's explain events and writes the tree to ``out``."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.depth = 0
        self.levels: list[str | None] = []  # the level last printed, per open search
        self.secrets: list[bool] = []
        self.masker = Masker(b"")

    def mask(self, text: str) -> str:
        return self.masker.mask_text(text, tag=lambda value: REDACTED)

    def learn(self, value: Any) -> None:
        """Remember a secret value, so any later line quoting it is masked."""
        while isinstance(value, Sensitive):
            value = value.value
        if isinstance(value, dict):
            value = {k: v.value if isinstance(v, Sensitive) else v for k, v in value.items()}
        self.masker.add(secret_strings(value))

    def line(self, indent: int, text: str) -> None:
        # one event, one line: a hieradata path or key cannot start a forged one
        self.out.write("  " * (self.depth + indent) + printable(self.mask(text)) + "\n")

    def __call__(self, event: str, details: dict) -> None:
        getattr(self, f"on_{event}")(details)

    def on_search(self, details: dict) -> None:
        self.line(0, f'Searching for "{details["key"]}"')
        self.depth += 1
        self.levels.append(None)
        self.secrets.append(secret_key(details["key"]))

    def on_strategy(self, details: dict) -> None:
        source = details["source"]
        where = {"argument": " (given to the lookup)", "lookup_options": " (from lookup_options)",
                 "default": ""}.get(source, "")
        self.line(0, f"Merge strategy {details['merge']}{where}")

    def on_location(self, details: dict) -> None:
        if self.levels and self.levels[-1] != details["level"]:
            self.levels[-1] = details["level"]
            self.line(0, f'Hierarchy entry "{details["level"]}"')
        at = 2 if details["path"] else 1  # a command level without locations has no path
        if details["path"]:
            self.line(1, f'Path "{details["path"]}"')
        if details["original"] and details["original"] != details["path"]:
            self.line(2, f'Original path: "{details["original"]}"')
        if not details["exists"]:
            self.line(at, "Path not found")
        elif not details["found"]:
            self.line(at, f'No such key: "{details["key"]}"')
        else:
            secret = details["secret"] or bool(self.secrets and self.secrets[-1])
            if secret:
                self.learn(details["value"])
            self.line(at, f'Found key: "{details["key"]}" value: '
                          f'{shown(details["value"], secret)}')

    def on_result(self, details: dict) -> None:
        secret = details.get("secret") or bool(self.secrets and self.secrets[-1])
        if details.get("reserved"):
            self.line(0, f'"{details["key"]}" is reserved: it is never looked up as data')
        elif not details["found"]:
            self.line(0, f'No value found for "{details["key"]}"')
        else:
            if details.get("dug"):
                self.line(0, "Sub key: " + ".".join(map(str, details["dug"])))
            if details.get("convert_to") is not None:
                self.line(0, "Applying convert_to lookup_option with arguments "
                             f"{to_json(details['convert_to'])}")
            value = details["value"]
            if secret:
                self.learn(value)
            self.line(0, f'Result for "{details["key"]}": {shown(value, secret)}')
        self.depth -= 1
        self.levels.pop()
        self.secrets.pop()

    def unwind(self) -> None:
        """Close the searches a failure left open, so the final message is not indented."""
        self.depth = 0
        self.levels.clear()
        self.secrets.clear()
