"""``render bundle SERVICE...``: the answers to every lookup the services make, for a node that
has no hieradata (renderer.bundle). Run on the Puppet server by the function ``render::bundle``;
prints the bundle (JSON, or a PEM CMS envelope with ``--encrypt-to``) on stdout or to
``--output``. Exit 0 with a bundle even when a service fails (the node fails it the same way);
each such failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from renderer.errors import InternalError, RenderError, UsageError, error_line
from renderer.options import EXIT_INTERNAL, Parser, add_source_options, template_path


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="render bundle",
        description="Resolve every lookup SERVICE makes (templates, service.yaml, INI "
                    "overrides) for one node into a bundle that `render --bundle FILE` "
                    "answers them from, on a node without hieradata.",
        epilog="exit codes: 0 bundle written, 4 no bundle (data or encryption error), "
               "64 usage error.")
    parser.add_argument("services", nargs="*", metavar="SERVICE")
    parser.add_argument("--all", action="store_true", help="every known service")
    add_source_options(parser)
    parser.add_argument("--trusted", metavar="FILE",
                        help="the node's $trusted as JSON (the catalog's; replaces the "
                        "trusted data built from --facts)")
    parser.add_argument("--environment", default="production",
                        help="the value of $environment [production]")
    parser.add_argument("--encrypt-to", metavar="CERT",
                        help="encrypt the bundle to this PEM certificate (the agent's)")
    parser.add_argument("--output", metavar="FILE",
                        help="write the bundle here (mode 0600) instead of stdout")
    return parser


def main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from renderer.config import parse_args

    args = parse_args(build_parser(), argv, strict=False)
    try:
        if bool(args.all) == bool(args.services):
            raise UsageError("name at least one SERVICE, or --all (not both)")
        data = build(args)
        for entry_name, entry in json.loads(data if not data.startswith(b"-----")
                                            else b"{}").get("services", {}).items():
            if "error" in entry:
                err.write(f"render bundle: {entry_name}: {entry['error']}\n")
        if args.output:
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                         0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        else:
            out.write(data.decode())
            out.flush()
    except RenderError as exc:
        err.write(error_line(exc) + "\n")
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - a bug in render: one line
        err.write(error_line(InternalError.from_exception(exc)) + "\n")
        return EXIT_INTERNAL
    return 0


def build(args: argparse.Namespace) -> bytes:
    from renderer.bundle import encrypt, make
    from renderer.hiera import Hiera
    from renderer.scope import build_scope
    from renderer.services import list_services

    templates = template_path(args.templates)
    scope = build_scope(args.node, args.facts, list(args.var), args.environment)
    if args.trusted:
        from renderer.scope import load_facts_file

        trusted = load_facts_file(args.trusted)
        scope = scope.__class__(scope.facts, dict(trusted), scope.variables)
    hieradata = Path(args.hieradata)
    hiera = Hiera.load(hieradata / "hiera.yaml")
    names = list_services(templates) if args.all else list(dict.fromkeys(args.services))
    text = (json.dumps(make(names, templates, scope, hiera, hieradata), sort_keys=True,
                       indent=1) + "\n").encode()
    return encrypt(text, args.encrypt_to) if args.encrypt_to else text
