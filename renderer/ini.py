"""OpenStack INI text: read with oslo.config's own lexer, edit option by option, keep the rest.

Pure str -> str. ``parse`` reads a rendered file with ``oslo_config.iniparser`` (the lexer
oslo.config itself uses, so repeated keys, a ``#`` inside a value, ``key: value`` and continuation
lines mean here exactly what they mean to the service; configobj gets all of these wrong, see
LESSONS.md). ``merge`` applies settings to the text without re-serialising it: an option that is
there is replaced in place (all of its lines, if it repeats or continues), a new option goes after
the last option of its section, a section the text lacks is appended at the end, and every other
line, comments and blank lines included, stays byte for byte.

The iniparser module is imported only when a file has overrides: it is a single small module, and
``oslo_config/__init__.py`` is empty, so the import costs under a millisecond and pulls nothing in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple


class IniSyntaxError(Exception):
    """The rendered text is not INI that oslo.config would read; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class Option(NamedTuple):
    """One assignment: its section, key and the 0-based lines it spans (continuations too)."""

    section: str
    key: str
    first: int
    last: int


class Layout(NamedTuple):
    """Where everything is in one file: lines (with their endings), section headers, options."""

    lines: tuple[str, ...]
    headers: tuple[tuple[str, int], ...]   # (section, 0-based line), in file order
    options: tuple[Option, ...]

    @property
    def sections(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.headers)


class Setting(NamedTuple):
    """What an override asks for one option: these values, one line each; ``()`` removes it."""

    section: str
    key: str
    values: tuple[str, ...]


def _key_lines(lines: Sequence[str], starts: list[int]) -> Iterator[str]:
    """Feed ``lines`` to the parser, noting each line that starts an assignment.

    iniparser reports an assignment only once the next line has been read, so its own line number
    then points past it. It reports assignments in order, one per key line, and a key line is one
    its ``parse`` sends to the key/value split: not blank, not indented, not a header or comment.
    """
    for number, line in enumerate(lines):
        text = line.rstrip()
        if text and not text.startswith((" ", "\t", "[", "#", ";")):
            starts.append(number)
        yield line


def parse(text: str) -> Layout:
    """The layout of ``text``; IniSyntaxError where oslo.config would refuse to read it."""
    from oslo_config import iniparser

    lines = tuple(text.splitlines(keepends=True))
    headers: list[tuple[str, int]] = []
    found: list[tuple[str, str]] = []
    starts: list[int] = []

    class _Parser(iniparser.BaseParser):
        section: str | None = None

        def new_section(self, section: str) -> None:
            self.section = section
            headers.append((section, self.lineno - 1))

        def assignment(self, key: str, value: list[str]) -> None:
            if self.section is None:
                raise self.parse_exc("option outside of any [section]", starts[len(found)] + 1,
                                     lines[starts[len(found)]].rstrip())
            found.append((self.section, key))

    try:
        _Parser().parse(_key_lines(lines, starts))
    except iniparser.ParseError as exc:
        raise IniSyntaxError(f"{exc.msg}: {exc.line[:60]!r}", exc.lineno) from exc
    options = []
    for (section, key), first in zip(found, starts, strict=True):
        last = first
        while last + 1 < len(lines) and lines[last + 1][:1] in (" ", "\t") \
                and lines[last + 1].strip():
            last += 1  # continuation lines belong to the option they follow
        options.append(Option(section, key, first, last))
    return Layout(lines, tuple(headers), tuple(options))


def merge(layout: Layout, settings: Sequence[Setting]) -> str:
    """The text of ``layout`` with ``settings`` applied; comments and order kept."""
    replace: dict[int, list[str]] = {}   # first line of an option -> its new lines
    drop: set[int] = set()               # lines removed
    after: dict[int, list[str]] = {}     # line -> new lines inserted after it
    appended: dict[str, list[str]] = {}  # sections the text lacks -> their new lines
    for setting in settings:
        new = [f"{setting.key}={value}\n" for value in setting.values]
        existing = [o for o in layout.options
                    if o.section == setting.section and o.key == setting.key]
        if existing:
            for option in existing:
                drop.update(range(option.first, option.last + 1))
            replace[existing[0].first] = new
        elif not new:
            continue  # removing an option the file does not set: nothing to do
        elif setting.section in layout.sections:
            after.setdefault(_anchor(layout, setting.section), []).extend(new)
        else:
            appended.setdefault(setting.section, []).extend(new)

    out: list[str] = []
    for number, line in enumerate(layout.lines):
        if number in replace:
            out.extend(replace[number])
        if number not in drop:
            out.append(line)
        if number in after:
            if not out[-1].endswith("\n"):
                out[-1] += "\n"
            out.extend(after[number])
    for section, new in appended.items():
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.extend(["\n", f"[{section}]\n", *new] if out else [f"[{section}]\n", *new])
    return "".join(out)


def _anchor(layout: Layout, section: str) -> int:
    """The line a new option of ``section`` goes after: its last option, else its last header.

    Not the last line of the section: comments and blank lines before the next header usually
    introduce that next section.
    """
    options = [o.last for o in layout.options if o.section == section]
    if options:
        return max(options)
    return max(number for name, number in layout.headers if name == section)
