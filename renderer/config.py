"""The configuration file and ``RENDER_*`` variables, as the parser's defaults.

``/etc/render/render.conf`` (``--config FILE``, env ``RENDER_CONFIG``; the default may be
missing) holds one ``[render]`` section whose keys are ``render``'s long options without the
dashes (``machines-dir`` or ``machines_dir``). No option needs code of its own: each key is
converted by its option's own ``type`` and checked against its ``choices``, so an option added
to the parser is configurable at once. A flag takes yes/no, true/false, on/off or 1/0; a
repeatable option takes one value per line (``templates`` also ``:``-separated).

The file and then the environment become defaults before parsing, so the command line wins,
then ``RENDER_<OPTION>``, then the file, then the built-in default. A bad line, an unknown key
or a bad value is one line naming ``file:line`` and the key, exit 64, before anything runs.
Read with a small strict reader, not configparser, for the line of every key.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from renderer.options import EXIT_USAGE, Repeat, split

DEFAULT_FILE = "/etc/render/render.conf"
SECTION = "render"
MAX_BYTES = 1 << 20
_FLAGS = {"1": True, "yes": True, "true": True, "on": True,
          "0": False, "no": False, "false": False, "off": False}
_SKIP = (argparse._HelpAction, argparse._VersionAction)


class Entry:
    """One key of the file: its value (continuation lines joined with newlines) and line."""

    __slots__ = ("key", "line", "value")

    def __init__(self, key: str, value: str, line: int) -> None:
        self.key, self.value, self.line = key, value, line


def fail(where: str, message: str) -> SystemExit:
    """The one usage-error line, as argparse's own errors end."""
    import sys

    print(f"render: {where}: {message}", file=sys.stderr)
    return SystemExit(EXIT_USAGE)


def parse(text: str, name: str) -> list[Entry]:
    """``[render]`` and ``key = value`` lines; ``#`` and ``;`` start a comment line; an
    indented line continues the value above it."""
    entries: list[Entry] = []
    section = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if raw[:1].isspace() and entries and section == SECTION:
            entries[-1].value = f"{entries[-1].value}\n{line}".strip("\n")
            continue
        if line.startswith("["):
            section = line[1:-1].strip() if line.endswith("]") else None
            if section != SECTION:
                raise fail(f"{name}:{number}", f"unknown section {line!r} (only [{SECTION}])")
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise fail(f"{name}:{number}", f"expected 'key = value', not {line!r}")
        if section is None:
            raise fail(f"{name}:{number}", f"{key.strip()}: outside the [{SECTION}] section")
        entries.append(Entry(key.strip(), value.strip(), number))
    return entries


def config_file(argv: list[str], environ: Mapping[str, str]) -> tuple[str, bool]:
    """The file named by ``--config`` (looked for before parsing), ``RENDER_CONFIG`` or the
    default; and whether it was named (then it must exist)."""
    for index, word in enumerate(argv):
        if word == "--":
            break
        option, equals, value = word.partition("=")
        if len(option) < 5 or not "--config".startswith(option):  # argparse takes "--conf"
            continue
        if equals:
            return value, True
        if index + 1 < len(argv):
            return argv[index + 1], True
    if environ.get("RENDER_CONFIG"):
        return environ["RENDER_CONFIG"], True
    return DEFAULT_FILE, False


def read(name: str, named: bool) -> list[Entry]:
    from renderer import manifest

    manifest.note(name)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO never waits
    except FileNotFoundError:
        if named:
            raise fail(name, "configuration file not found") from None
        return []
    except OSError as exc:
        raise fail(name, f"cannot read configuration file: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as stream:
        import stat

        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise fail(name, "configuration file is not a regular file")
        data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise fail(name, f"configuration file over {MAX_BYTES} bytes")
    try:
        return parse(data.decode("utf-8"), name)
    except UnicodeDecodeError:
        raise fail(name, "configuration file is not UTF-8") from None


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Each long option by its key name (``machines_dir``)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, _SKIP) or action.dest == "config":
            continue
        for option in action.option_strings:
            if option.startswith("--"):
                found[option[2:].replace("-", "_")] = action
    return found


def convert(action: argparse.Action, value: str, where: str, key: str) -> object:
    """``value`` as the command line would have it, or the one error line."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        flag = _FLAGS.get(value.lower())
        if flag is None:
            raise fail(where, f"{key}: expected yes or no, not {value!r}")
        return flag if isinstance(action, argparse._StoreTrueAction) else not flag
    if isinstance(action, (Repeat, argparse._AppendAction)):
        return [item for line in value.splitlines() if line.strip()
                for item in split(action.dest, line.strip())]
    try:
        result = action.type(value) if callable(action.type) else value
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        raise fail(where, f"{key}: {exc}") from None
    if action.choices is not None and result not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise fail(where, f"{key}: expected one of {choices}, not {value!r}")
    return result


def configure(parser: argparse.ArgumentParser, argv: list[str], *, strict: bool = True,
              environ: Mapping[str, str] | None = None, ignore: tuple[str, ...] = ()) -> None:
    """Set ``parser``'s defaults from the file, then the environment. ``strict``: a key that is
    no option of this parser is an error (``render``); ``render lookup`` and ``render show``
    take the keys they have and leave ``render``'s others alone, and those in ``ignore``."""
    environ = os.environ if environ is None else environ
    known = {key: action for key, action in options(parser).items() if key not in ignore}
    name, named = config_file(argv, environ)
    defaults: dict[str, object] = {}
    for entry in read(name, named):
        key = entry.key.replace("-", "_")
        action = known.get(key)
        if action is None:
            if strict:
                raise fail(f"{name}:{entry.line}", f"{entry.key}: unknown key")
            continue
        defaults[action.dest] = convert(action, entry.value, f"{name}:{entry.line}", entry.key)
    for key, action in known.items():
        variable = f"RENDER_{key.upper()}"
        if environ.get(variable):
            defaults[action.dest] = convert(action, environ[variable], variable, key)
    parser.set_defaults(**defaults)


def parse_args(parser: argparse.ArgumentParser, argv: list[str], *, strict: bool = True,
               ignore: tuple[str, ...] = ()) -> argparse.Namespace:
    """``parser.parse_args`` with the file's and the environment's defaults; ``--help`` and
    ``--version`` read neither, so a broken file never hides how to fix it."""
    words = argv[:argv.index("--")] if "--" in argv else argv
    if not {"-h", "--help", "--version"} & set(words):
        configure(parser, argv, strict=strict, ignore=ignore)
    return parser.parse_args(argv)
