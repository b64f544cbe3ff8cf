"""Options: what ``render`` and ``render lookup`` share on the command line, defined once.

Both commands read the same hieradata in the same scope, so ``--hieradata``, ``--templates``,
``--facts``, ``--node`` and ``--var`` are one definition here, and both exit 64 on a usage
error (2 would read as "changes" to Puppet). Light on purpose: ``--help`` and a usage error must
not import the pipeline.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

EXIT_USAGE = 64
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in render, never 1 or 4
PACKAGE_DIR = Path(__file__).resolve().parent
HIERADATA_DEFAULT = "/etc/puppetlabs/code/environments/production"


def default_templates() -> Path:
    """Debian package: /usr/share/render/services (found from dist-packages, so a throwaway root
    works too); installed wheel: renderer/service_templates; checkout: ../service_templates."""
    if PACKAGE_DIR.parent.name == "dist-packages":  # <root>/usr/lib/python3/dist-packages/renderer
        shipped = PACKAGE_DIR.parents[3] / "share" / "render" / "services"
        if shipped.is_dir():  # not pip's /usr/local/lib/python3.X/dist-packages
            return shipped
    installed = PACKAGE_DIR / "service_templates"
    return installed if installed.is_dir() else PACKAGE_DIR.parent / "service_templates"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"render: {message}\n")


def from_env(env: str, default: str | None) -> str | None:
    return os.environ.get(env) or default


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """Where the data and templates are, and the scope they are read in."""
    parser.add_argument("--hieradata", metavar="DIR",
                        default=from_env("RENDER_HIERADATA", HIERADATA_DEFAULT),
                        help="directory holding hiera.yaml (Puppet's environment directory "
                        f"works unchanged) [env RENDER_HIERADATA; default {HIERADATA_DEFAULT}]")
    parser.add_argument("--templates", metavar="DIR", default=from_env("RENDER_TEMPLATES", None),
                        help="service templates directory (default: the service_templates "
                        "installed with render) [env RENDER_TEMPLATES]")
    parser.add_argument("--node",
                        help="node name: trusted.certname and the clientcert fact (without "
                             "--facts; with it, its clientcert fact, as in Puppet)")
    parser.add_argument("--facts", metavar="FILE",
                        help="facts as YAML or JSON, used alone as puppet lookup does "
                             "(Puppet's cached facts with 'values:' too)")
    parser.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                        help="set a top-scope variable (repeatable); VALUE may be a JSON array "
                             "or hash; a dotted KEY sets a nested fact")


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, not {text!r}")
    return value


def count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 1000:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1000, not {text!r}")
    return int(text)
