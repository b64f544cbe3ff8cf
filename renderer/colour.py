"""Colour on a terminal only: ``--color auto|always|never``, ``NO_COLOR`` respected.

Applied at the edge, as a stream wrapper, so the report and every error path stay plain text
and the bytes a pipe, Puppet's log or the journal receive never change: on stdout, diff lines
(``+``/``-``/``@@``; a report line starts with a service name, never with those); on stderr,
the ``render: ...`` error lines. ``auto`` colours a stream that is a TTY, when ``NO_COLOR`` is
unset or empty and ``TERM`` is not ``dumb``; ``always`` overrides ``NO_COLOR``, as the
convention asks of an explicit flag.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TextIO

CHOICES = ("auto", "always", "never")
RESET = "\033[0m"
RED, GREEN, CYAN, BOLD_RED = "\033[31m", "\033[32m", "\033[36m", "\033[1;31m"
_DIFF = (("+++", ""), ("---", ""), ("@@", CYAN), ("+", GREEN), ("-", RED))


def enabled(choice: str, stream: Any, environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    if choice != "auto":
        return choice == "always"
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


def diff_colour(line: str) -> str:
    return next((colour for prefix, colour in _DIFF if line.startswith(prefix)), "")


def error_colour(line: str) -> str:
    return BOLD_RED if line.startswith("render: ") else ""


class Painter:
    """A text stream that colours whole lines chosen by ``pick`` (the colour, or "")."""

    def __init__(self, stream: TextIO, pick: Any) -> None:
        self.stream, self.pick, self._start = stream, pick, True

    def write(self, text: str) -> int:
        for line in text.splitlines(keepends=True):
            colour = self.pick(line) if self._start else ""
            self._start = line.endswith("\n")
            if colour:
                body = line[:-1] if self._start else line
                line = f"{colour}{body}{RESET}{chr(10) if self._start else ''}"
            self.stream.write(line)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding
        return getattr(self.stream, name)
