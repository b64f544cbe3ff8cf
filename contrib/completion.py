"""Writes render's bash completion to stdout, from the argument parsers (package build time).

Options and their choices come from the parsers; SERVICE names from ``render --list`` (its first
column), asked at completion time with the --templates, --hieradata and --config already typed,
so a site's own services complete too.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from parsers import commands, options, takes_value  # noqa: E402

FILE_METAVARS = {"FILE", "PATH"}
DIR_METAVARS = {"DIR"}
PASSED_ON = ("--templates", "--hieradata", "--config")  # they decide what --list lists

HEAD = """\
# bash completion for render(1); generated from its argument parser by contrib/completion.py.

_render_services()
{
    local i args=()
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            %(passed)s) args+=("${words[i]}" "${words[i + 1]}") ;;
        esac
    done
    "${words[0]}" --list "${args[@]}" 2>/dev/null | cut -f1
}

_render()
{
    local cur prev words cword
    _init_completion || return

    local i command=
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            lookup | show | bundle) command=${words[i]}; break ;;
        esac
    done
"""

TAIL = """\
}
complete -F _render render
"""


def value_cases(parser: argparse.ArgumentParser) -> list[str]:
    """One ``case`` arm per option that takes a value: its choices, files, directories or none."""
    arms = []
    for action in options(parser):
        if not takes_value(action):
            continue
        names = " | ".join(action.option_strings)
        metavar = str(action.metavar or "").split("[")[0]  # DIR[:DIR...] is directories too
        if action.choices:
            words = shlex.quote(" ".join(str(c) for c in action.choices))
            arms.append(f'{names}) COMPREPLY=($(compgen -W {words} -- "$cur")); return ;;')
        elif metavar in DIR_METAVARS:
            arms.append(f"{names}) _filedir -d; return ;;")
        elif metavar in FILE_METAVARS:
            arms.append(f"{names}) _filedir; return ;;")
        elif metavar == "SERVICE":
            arms.append(f'{names}) COMPREPLY=($(compgen -W "$(_render_services)" -- "$cur")); '
                        "return ;;")
        else:
            arms.append(f"{names}) return ;;")
    return arms


def script() -> str:
    out = [HEAD % {"passed": " | ".join(PASSED_ON)}, "    case $command in"]
    positional = {"": '"$(_render_services) lookup show bundle preview restart"', "lookup": '""',
                  "show": '"$(_render_services)"', "bundle": '"$(_render_services)"',
                  "preview": '""'}
    for command in commands():
        flags = " ".join(name for action in options(command.parser)
                         for name in action.option_strings)
        label = command.name or '""'
        out += [f"        {label})", "            case $prev in"]
        out += [f"                {arm}" for arm in value_cases(command.parser)]
        out += ["            esac",
                "            if [[ $cur == -* ]]; then",
                f'                COMPREPLY=($(compgen -W {shlex.quote(flags)} -- "$cur"))',
                "            else",
                f'                COMPREPLY=($(compgen -W {positional[command.name]} -- "$cur"))',
                "            fi",
                "            ;;"]
    out += ["    esac"]
    return "\n".join(out) + "\n" + TAIL


if __name__ == "__main__":
    sys.stdout.write(script())
