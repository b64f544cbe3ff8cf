"""The argument parsers of ``render`` (run, ``lookup``, ``show``, ``bundle``, ``preview``), for the
generators.

contrib/manpage.py and contrib/completion.py read the options from here at package build time,
so the man page and the completion list what ``--help`` lists, an option added by any branch
included. Standard library only: the parsers import no pipeline.
"""

from __future__ import annotations

import argparse
import os
from typing import NamedTuple

# The parsers take some defaults from RENDER_* when they are built: a builder's own environment
# must not end up in the man page.
for _name in [name for name in os.environ if name.startswith("RENDER_")]:
    del os.environ[_name]

from renderer import bundle_command, cli, lookup, preview, show  # noqa: E402


class Command(NamedTuple):
    name: str  # "" for the run itself, else the subcommand word
    parser: argparse.ArgumentParser
    synopsis: str  # the positional part of the usage line


def commands() -> tuple[Command, ...]:
    return (
        Command("", cli.build_parser(), "[\\fIOPTION\\fR]... {\\fISERVICE\\fR... | \\fB--all\\fR}"),
        Command("lookup", lookup.build_parser(), "[\\fIOPTION\\fR]... \\fIKEY\\fR..."),
        Command("show", show.build_parser(), "[\\fIOPTION\\fR]... \\fISERVICE\\fR"),
        Command("bundle", bundle_command.build_parser(),
                "[\\fIOPTION\\fR]... {\\fISERVICE\\fR... | \\fB--all\\fR}"),
        Command("preview", preview.build_parser(),
                "\\fB--from\\fR \\fIREF\\fR \\fB--nodes\\fR \\fIPATH\\fR [\\fIOPTION\\fR]..."),
    )


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The optional arguments, in --help order (argument groups included)."""
    return [action for action in parser._actions if action.option_strings]


def takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help as --help prints it (``%(default)s`` expanded), on one line."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    formatter = parser._get_formatter()
    return " ".join(formatter._expand_help(action).split())
