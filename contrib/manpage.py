"""Writes render(1) in roff to stdout, from the argument parsers (run at package build time).

The date comes from $SOURCE_DATE_EPOCH (dpkg-buildpackage sets it from debian/changelog), so two
builds of one version give the same page.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from parsers import commands, help_text, options, takes_value  # noqa: E402

from renderer import __version__  # noqa: E402

FILES = (
    ("/etc/render/render.conf", "defaults for every option: one [render] section, each key a long "
     "option without its dashes; the command line wins, then the environment, then this file"),
    ("/etc/render/services/", "the site's own services; a folder here overrides the shipped "
     "folder of the same name, other folders add services"),
    ("/usr/share/render/services/", "the service templates shipped with the package "
     "(_lib holds the shared macros)"),
    ("/var/lib/render/", "render's state: the masking key, kept versions, owed restarts"),
    ("/var/lib/machines/", "the container root filesystems render writes into"),
)
ENV = re.compile(r"\benv (RENDER_[A-Z0-9_]+)")


def roff(text: str) -> str:
    """Escapes for running text; a line starting with . or ' would be a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.MULTILINE)


def option_lines(parser: argparse.ArgumentParser) -> list[str]:
    lines = []
    for action in options(parser):
        names = ", ".join(f"\\fB{roff(name)}\\fR" for name in action.option_strings)
        if takes_value(action):
            if action.choices:
                value = "{" + ",".join(roff(str(c)) for c in action.choices) + "}"
            else:
                value = roff(str(action.metavar or action.dest.upper()))
            names += f" \\fI{value}\\fR"
        lines += [".TP", names, roff(help_text(parser, action)) or "\\&"]
    return lines


def page(date: str) -> str:
    run, *subcommands = commands()
    lines = [
        f'.TH RENDER 1 "{date}" "render {__version__}" "User Commands"',
        ".SH NAME",
        "render \\- render OpenStack configuration from Hiera 5 data into systemd\\-nspawn "
        "containers",
        ".SH SYNOPSIS",
    ]
    for command in commands():
        word = f" {command.name}" if command.name else ""
        lines += [".br" if command.name else ".nh", f"\\fBrender{word}\\fR {command.synopsis}"]
    lines += [".hy", ".SH DESCRIPTION", roff(run.parser.description or ""), ".SH OPTIONS"]
    lines += option_lines(run.parser)
    lines += [".SH COMMANDS"]
    for command in subcommands:
        lines += [f".SS render {command.name}", roff(command.parser.description or "")]
        lines += option_lines(command.parser)
        if command.parser.epilog:
            lines += [".PP", roff(command.parser.epilog)]
    lines += [".SH EXIT STATUS", roff(run.parser.epilog or "")]
    variables: dict[str, set[str]] = {}
    for command in commands():
        for action in options(command.parser):
            for name in ENV.findall(help_text(command.parser, action)):
                word = f"render {command.name} " if command.name else ""
                variables.setdefault(name, set()).add(f"{word}{action.option_strings[-1]}")
    lines += [".SH ENVIRONMENT", "A variable gives the default of its option; the command line "
              "wins over it."]
    for name, used in sorted(variables.items()):
        lines += [".TP", f"\\fB{roff(name)}\\fR", roff(", ".join(sorted(used)))]
    lines += [".SH FILES"]
    for path, text in FILES:
        lines += [".TP", f"\\fI{roff(path)}\\fR", roff(text)]
    lines += [".SH SEE ALSO", "\\fBsystemd\\-nspawn\\fR(1), \\fBsystemctl\\fR(1), "
              "\\fBmachinectl\\fR(1), /usr/share/doc/render/README.md"]
    return "\n".join(lines) + "\n"


def main() -> int:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or time.time())
    sys.stdout.write(page(time.strftime("%Y-%m-%d", time.gmtime(epoch))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
