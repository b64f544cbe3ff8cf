"""Options: what ``render``, ``render lookup`` and ``render show`` share, defined once.

The commands read the same hieradata in the same scope, so ``--hieradata``, ``--templates``,
``--facts``, ``--node``, ``--var`` and ``--config`` are one definition here, and all exit 64 on
a usage error (2 would read as "changes" to Puppet). Light on purpose: ``--help`` and a usage
error must not import the pipeline.

Every long option is also a key of the configuration file and an environment variable, with no
code per option: ``configure`` turns the file (``[render]``, ``health-timeout = 30``), then
``RENDER_HEALTH_TIMEOUT``, into the parser's defaults before it parses, so the command line
wins, then the environment, then the file, then the built-in default (renderer.config).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

EXIT_USAGE = 64
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in render, never 1 or 4
PACKAGE_DIR = Path(__file__).resolve().parent
SITE_TEMPLATES = Path("/etc/render/services")
SHIPPED_TEMPLATES = Path("/usr/share/render/services")


def default_templates() -> Path:
    """Debian package: /usr/share/render/services (found from dist-packages, so a throwaway root
    works too); installed wheel: renderer/service_templates; checkout: ../service_templates."""
    if PACKAGE_DIR.parent.name == "dist-packages":  # <root>/usr/lib/python3/dist-packages/renderer
        shipped = PACKAGE_DIR.parents[3] / "share" / "render" / "services"
        if shipped.is_dir():  # not pip's /usr/local/lib/python3.X/dist-packages
            return shipped
    installed = PACKAGE_DIR / "service_templates"
    return installed if installed.is_dir() else PACKAGE_DIR.parent / "service_templates"


def template_path(given: list[str] | None) -> tuple[Path, ...]:
    """The template search path, earlier directories first: as given, else the site's
    /etc/render/services (when there) then the package's /usr/share/render/services, or the
    templates installed with render when no package put them there."""
    if given:
        return tuple(Path(d) for d in given)
    shipped = SHIPPED_TEMPLATES if SHIPPED_TEMPLATES.is_dir() else default_templates()
    return (SITE_TEMPLATES, shipped) if SITE_TEMPLATES.is_dir() else (shipped,)


class Repeat(argparse.Action):
    """A repeatable option: each use appends, but the first on the command line replaces the
    value the file or the environment gave (the command line wins, whole). ``--templates``
    splits each value at ``:``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        items = getattr(namespace, self.dest, None)
        items = [] if items is None or items is self.default else items
        setattr(namespace, self.dest, [*items, *split(self.dest, str(values))])


def split(dest: str, value: str) -> list[str]:
    """``--templates a:b`` is two directories; every other repeatable value is one item."""
    return [part for part in value.split(":") if part] if dest == "templates" else [value]


def columns() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS``, else the terminal's, else 80."""
    try:
        width = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        width = 0
    if width <= 0:
        try:
            width = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            width = 0
    return width if width > 0 else 80


class Formatter(argparse.HelpFormatter):
    """argparse's own, with the width computed here: argparse imports ``shutil`` (and ``bz2``,
    ``lzma``, ``zlib`` with it: 2 ms of every full run) in each formatter it makes, one per
    ``add_argument``, only to ask ``shutil.get_terminal_size``."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         columns() if width is None else width)


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"render: {message}\n")


def from_env(env: str, default: str | None) -> str | None:
    return os.environ.get(env) or default


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """Where the data and templates are, and the scope they are read in."""
    from renderer import sources

    parser.add_argument("--hieradata", metavar="DIR", default=from_env("RENDER_HIERADATA", None),
                        help="the environment directory holding hiera.yaml (Puppet's works "
                        "unchanged) [env RENDER_HIERADATA; default <environmentpath>/"
                        "<environment>]")
    sources.add_options(parser)
    parser.add_argument("--templates", metavar="DIR[:DIR...]", action=Repeat, default=None,
                        help="template search path (repeatable): a service folder in an earlier "
                        "directory replaces the same folder in later ones, _lib files likewise "
                        f"[env RENDER_TEMPLATES; default {SITE_TEMPLATES} then "
                        f"{SHIPPED_TEMPLATES}, or the templates installed with render]")
    parser.add_argument("--config", metavar="FILE",
                        help="configuration file: [render] with long options as keys [env "
                        "RENDER_CONFIG; default /etc/render/render.conf, missing is fine]")
    parser.add_argument("--node",
                        help="node name: trusted.certname and the clientcert fact (without "
                             "--facts; with it, its clientcert fact, as in Puppet) "
                             "[env RENDER_NODE]")
    parser.add_argument("--facts", metavar="FILE",
                        help="facts as YAML or JSON, used alone as puppet lookup does "
                             "(Puppet's cached facts with 'values:' too)")
    parser.add_argument("--trusted-extension", action=Repeat, default=[], metavar="KEY=VALUE",
                        help="a trusted.extensions entry (Puppet takes them from the node's "
                        "certificate), e.g. pp_role=web for roles/%%{trusted.extensions.pp_role}"
                        ".yaml (repeatable)")
    parser.add_argument("--var", action=Repeat, default=[], metavar="KEY=VALUE",
                        help="set a top-scope variable (repeatable); VALUE may be a JSON array "
                             "or hash; a dotted KEY sets a nested fact")


def seconds(text: str) -> float:
    """``30``, ``2.5`` or ``30s`` (as systemd writes it)."""
    try:
        value = float(text[:-1] if text.endswith("s") else text)
    except ValueError:
        value = -1
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, not {text!r}")
    return value


def count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 1000:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1000, not {text!r}")
    return int(text)
