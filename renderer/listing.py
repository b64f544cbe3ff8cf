"""``render --list``: every service of the search path and its machine, ``SERVICE<TAB>MACHINE``.

One line per service, sorted, for people and for bash completion (its first column). A machine
the data decides is looked up in the run's scope when the hieradata (or ``--bundle``) is there;
``-`` when it is not, or the lookup fails: listing is no check of the data, so only a definition
that does not load is an error (its line still printed, then exit 4).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from renderer.errors import RenderError, error_line
from renderer.options import template_path


def machine_of(definition: Any, hiera: Any, scope: Any) -> str:
    from renderer.services import resolve_machine

    if isinstance(definition.machine, str):
        return str(definition.machine)
    if hiera is None:
        return "-"
    local = scope.with_variables(service=definition.name)
    try:
        return resolve_machine(definition, lambda key, default: hiera.lookup(
            key, local, default=default))
    except RenderError:
        return "-"


def data(args: argparse.Namespace) -> tuple[Any, Any]:
    """The run's Hiera and scope, or (None, None) when the data cannot be read."""
    from renderer import sources
    from renderer.scope import build_scope

    try:
        scope = build_scope(args.node, args.facts, list(args.var), args.environment,
                            args.trusted_extension)
        bundle = getattr(args, "bundle", None)  # --bundle: the machines the server resolved
        return sources.open_data(sources.from_args(args), Path(bundle) if bundle else None,
                                 getattr(args, "bundle_key", None)), scope
    except RenderError:
        return None, None


def main(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from renderer.services import list_services, load_service

    templates = template_path(args.templates)
    hiera, scope = data(args)
    status = 0
    for name in list_services(templates):
        try:
            machine = machine_of(load_service(templates, name), hiera, scope)
        except RenderError as exc:
            print(error_line(exc.with_context(service=name)), file=err)
            machine, status = "-", 4
        print(f"{name}\t{machine}", file=out)
    return status
