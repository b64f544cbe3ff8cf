"""Where Puppet keeps the data: the environment directory, the global hiera.yaml, the modules.

Defaults find Debian's layout (``/etc/puppet``, what ``puppet config print`` gives there) and
Puppet's all-in-one one (``/etc/puppetlabs``): whichever exists, Debian's when both or neither do.
``--hieradata DIR`` names the environment directory outright; otherwise it is
``<environmentpath>/<environment>``. Light: no Hiera import until ``load``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NamedTuple

DEBIAN, AIO = Path("/etc/puppet"), Path("/etc/puppetlabs")
ENVIRONMENTPATHS = (DEBIAN / "code" / "environments", AIO / "code" / "environments")
HIERA_CONFIGS = (DEBIAN / "hiera.yaml", AIO / "puppet" / "hiera.yaml")
BASEMODULEPATHS = ("/etc/puppet/code/modules:/usr/share/puppet/modules",
                   "/etc/puppetlabs/code/modules:/opt/puppetlabs/puppet/modules")
SKIP = "skip"


def _pick(paths: tuple[Path, ...]) -> int:
    """0 for Debian's, 1 for the all-in-one layout: the first of ``paths`` that exists."""
    return next((index for index, path in enumerate(paths) if path.exists()), 0)


def default_environmentpath() -> str:
    return str(ENVIRONMENTPATHS[_pick(ENVIRONMENTPATHS)])


def default_hiera_config() -> str:
    return str(HIERA_CONFIGS[_pick(HIERA_CONFIGS)])


def default_basemodulepath() -> str:
    return BASEMODULEPATHS[_pick(ENVIRONMENTPATHS)]


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options that say where the layers are; every one is RENDER_<OPTION> and a key of
    render.conf too (renderer.config)."""
    parser.add_argument("--environment", default="production",
                        help="the Puppet environment: <environmentpath>/NAME, and $environment "
                        "[env RENDER_ENVIRONMENT; default production]")
    parser.add_argument("--environmentpath", metavar="DIR", default=None,
                        help="where the environments are [env RENDER_ENVIRONMENTPATH; default "
                        f"{ENVIRONMENTPATHS[0]} (Debian), else {ENVIRONMENTPATHS[1]} when "
                        "only that exists]")
    parser.add_argument("--hiera_config", "--hiera-config", metavar="FILE", default=None,
                        help="the global hiera.yaml, Puppet's hiera_config (missing: Puppet's "
                        "built-in hierarchy next to it) [env RENDER_HIERA_CONFIG; default "
                        f"{HIERA_CONFIGS[0]}, else {HIERA_CONFIGS[1]} when only that exists]")
    parser.add_argument("--basemodulepath", metavar="DIR[:DIR...]", default=None,
                        help="modules after <environment>/modules, for the module layer (a key "
                        f"mod::x) [env RENDER_BASEMODULEPATH; default {BASEMODULEPATHS[0]}]")
    parser.add_argument("--backend", action="append", default=[],
                        metavar="LEVEL=skip|LEVEL=command:PROG [ARGS]",
                        help="a hierarchy level whose backend render cannot run (a lookup_key "
                        "or data_dig function, hocon_data, hiera3_backend): 'skip' leaves it "
                        "out, with a warning; 'command:PROG ARGS' reads a data_hash or "
                        "lookup_key level from a command printing JSON (README, 'Command "
                        "backends'; its values are secrets) [env RENDER_BACKEND, one per line; "
                        "repeatable]")


class Source(NamedTuple):
    """The resolved locations of the three layers and the operator's backend choices."""

    environment: Path  # the environment directory (its hiera.yaml is the environment layer)
    hiera_config: Path | None  # the global layer; None: none
    modulepath: tuple[Path, ...]
    backends: dict[str, str]

    @property
    def config(self) -> Path:
        return self.environment / "hiera.yaml"

    def load(self) -> Any:
        """The Hiera of the three layers; an environment without hiera.yaml is one line saying
        which options name it (every command that reads data says the same)."""
        from renderer.errors import HieraConfigError
        from renderer.hiera import Hiera
        from renderer.log import warning

        if not self.config.exists():
            raise HieraConfigError(missing_hint(self))
        for level, how in self.backends.items():
            if how != SKIP:
                continue
            warning(__name__, "hierarchy level '%s' is skipped (--backend %s=%s): Puppet would "
                    "consult it", level, level, how)
        return Hiera.load(self.config, self.hiera_config, self.modulepath, self.backends)


def from_args(args: argparse.Namespace) -> Source:
    """The layers the parsed options name; a bad ``--backend`` is a usage error."""
    from renderer.errors import UsageError

    hieradata = getattr(args, "hieradata", None)
    environment = Path(hieradata) if hieradata else Path(
        args.environmentpath or default_environmentpath()) / args.environment
    global_config = args.hiera_config or default_hiera_config()
    base = args.basemodulepath if args.basemodulepath is not None else default_basemodulepath()
    modulepath = (environment / "modules", *(Path(d) for d in base.split(":") if d))
    backends: dict[str, str] = {}
    for item in args.backend or ():
        at = item.find("=command:")  # a command's arguments may hold '=' too
        level, sep, how = (item[:at], "=", item[at + 1:]) if at > 0 else item.rpartition("=")
        if sep and level and how != SKIP and how.startswith("command:"):
            from renderer.hiera.command import parse

            try:
                parse(how)
            except ValueError as exc:
                raise UsageError(f"--backend {item!r}: {exc}") from None
        elif not sep or not level or how != SKIP:
            raise UsageError(f"--backend {item!r}: expected LEVEL=skip or "
                             "LEVEL=command:PROG [ARGS]")
        backends[level] = how
    return Source(environment, Path(global_config) if global_config else None, modulepath,
                  backends)


def open_data(source: Source, bundle: Path | None, bundle_key: str | None) -> Any:
    """The run's Hiera: the bundle's answers when ``--bundle`` names one (a node without
    hieradata, renderer.bundle), else the three layers."""
    if bundle is None:
        return source.load()
    from renderer.bundle import BundleHiera, load

    return BundleHiera(load(bundle, bundle_key), bundle)


def missing_hint(source: Source) -> str:
    """What to say when the environment has no hiera.yaml."""
    return (f"{source.config} does not exist; name the environment directory with --hieradata "
            "DIR (RENDER_HIERADATA), or --environment NAME (RENDER_ENVIRONMENT) and "
            "--environmentpath DIR (RENDER_ENVIRONMENTPATH)")
