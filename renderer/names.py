"""Name rules shared by service definitions and the command line.

Service, machine and ``each`` item names all become parts of paths and unit names
(``/var/lib/machines/<machine>``, ``10-mv-mv-<item>.network``, ``systemd-nspawn@<machine>``), so
they share one rule. ``\\Z``, not ``$``: ``$`` also matches before a final newline, which would let
``"nova\\n"`` through. The CLI reads ``SUBCOMMANDS`` on its fast path (``--help``, ``--version``),
so this module imports nothing but ``re``.

``printable`` is the one escape for every name render prints (paths, file names, units,
services, machines): a container may name a file ``"x\\nrender: 0 file(s) changed"``, and a
raw newline in the report would forge a line in the Puppet log.
"""

import re

NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*\Z")  # use with .match: anchored at the start
# ``render lookup ...``: no service can be named so
SUBCOMMANDS = ("lookup", "show", "bundle", "preview")


def is_name(value: object) -> bool:
    """A valid service, machine or item name."""
    return isinstance(value, str) and NAME.match(value) is not None


# C0 controls, DEL, C1 controls (NEL among them), the Unicode line and paragraph separators, and
# the surrogates os.fsdecode makes of bytes that are not UTF-8 (printing them would raise)
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({0xDC00 + byte: f"\\x{byte:02x}" for byte in range(0x80, 0x100)})  # undecodable
_ESCAPES.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028",
                 0x2029: "\\u2029"})


def printable(text: str) -> str:
    """``text`` with every control character escaped (``\\n``, ``\\x1b``): one line, no
    terminal escapes. Backslashes are left as they are, so ordinary paths print unchanged."""
    return text.translate(_ESCAPES)
