"""Name rules shared by service definitions and the command line.

Service, machine and ``each`` item names all become parts of paths and unit names
(``/var/lib/machines/<machine>``, ``10-mv-mv-<item>.network``, ``systemd-nspawn@<machine>``), so
they share one rule. ``\\Z``, not ``$``: ``$`` also matches before a final newline, which would let
``"nova\\n"`` through. The CLI reads ``SUBCOMMANDS`` on its fast path (``--help``, ``--version``),
so this module imports nothing but ``re``.
"""

import re

NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*\Z")  # use with .match: anchored at the start
SUBCOMMANDS = ("lookup",)  # ``render lookup ...``: a service of that name could not be named


def is_name(value: object) -> bool:
    """A valid service, machine or item name."""
    return isinstance(value, str) and NAME.match(value) is not None
