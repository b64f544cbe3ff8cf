"""Command line: parse arguments, pick the System, run the pipeline, print, return the exit code.

The pipeline per service is scope -> hiera lookup -> render -> validate -> plan; then apply for all
services (writes, then restarts) and report. Errors of one service never stop the others. The
project's error root is caught here and nowhere else above the service loop.
"""

from __future__ import annotations

import argparse
import gc
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from renderer import __version__
from renderer.errors import RenderError

if TYPE_CHECKING:
    from renderer.hiera import Hiera
    from renderer.masking import Masker
    from renderer.plan import Roots, ServicePlan
    from renderer.scope import Scope
    from renderer.system import RealSystem
    from renderer.templates import Renderer

EXIT_USAGE = 64
PACKAGE_DIR = Path(__file__).resolve().parent

# (option, environment variable, default, help)
PATH_OPTIONS = (
    ("--hieradata", "RENDER_HIERADATA", "/etc/puppetlabs/code/environments/production",
     "directory holding hiera.yaml (Puppet's environment directory works unchanged)"),
    ("--templates", "RENDER_TEMPLATES", None,
     "service templates directory (default: the service_templates installed with render)"),
    ("--machines-dir", "RENDER_MACHINES_DIR", "/var/lib/machines",
     "where container root filesystems live"),
    ("--host-root", "RENDER_HOST_ROOT", "/", "root for host-side files such as "
     "/etc/systemd/nspawn/<machine>.nspawn"),
    ("--state-dir", "RENDER_STATE_DIR", "/var/lib/render", "render's own state (per-host key)"),
)


def default_templates() -> Path:
    """Installed wheel: renderer/service_templates; source checkout: ../service_templates."""
    installed = PACKAGE_DIR / "service_templates"
    return installed if installed.is_dir() else PACKAGE_DIR.parent / "service_templates"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"render: {message}\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, not {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) > 1000:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1000, not {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="render",
        description="Render OpenStack service configuration from Hiera 5 data into "
                    "systemd-nspawn containers; show the diff, write atomically, restart what "
                    "changed.",
        epilog="exit codes (as puppet --detailed-exitcodes): 0 nothing to do, 2 changes made "
               "(or pending with --noop), 4 failures, 6 changes and failures, 64 usage error.")
    parser.add_argument("services", nargs="*", metavar="SERVICE", help="services to render")
    parser.add_argument("--all", action="store_true", help="render every known service")
    parser.add_argument("--diff", action="store_true",
                        help="print a unified diff of every change, secrets masked")
    parser.add_argument("--noop", "--check", action="store_true", dest="noop",
                        help="compute and report everything; write and restart nothing")
    parser.add_argument("--no-restart", action="store_true",
                        help="write, but restart nothing (the next run still restarts)")
    parser.add_argument("--rollback", metavar="SERVICE",
                        help="put each file of SERVICE back to its previous kept version, "
                        "then restart what that changes")
    parser.add_argument("--health-timeout", type=_seconds, default=30.0, metavar="SECONDS",
                        help="how long a restarted unit has to become active before its files "
                        "are rolled back (default 30)")
    parser.add_argument("--keep-versions", type=_count, default=5, metavar="N",
                        help="versions of each replaced file kept in the state dir (default 5)")
    for option, env, default, text in PATH_OPTIONS:
        value = os.environ.get(env) or default
        parser.add_argument(option, metavar="DIR", default=value,
                            help=f"{text} [env {env}; default {default or 'see above'}]")
    parser.add_argument("--node",
                        help="node name: trusted.certname and the clientcert fact (no --facts)")
    parser.add_argument("--facts", metavar="FILE",
                        help="facts as YAML or JSON, used alone as puppet lookup does "
                             "(Puppet's cached facts with 'values:' too)")
    parser.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                        help="set a top-scope variable; a dotted KEY sets a nested fact "
                             "(repeatable)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--quiet", "-q", action="store_true", help="print errors only")
    parser.add_argument("--lock-timeout", type=_seconds, default=60.0, metavar="SECONDS",
                        help="wait this long for another run's lock, then fail with exit 4 "
                        "(default 60)")
    parser.add_argument("--systemctl", default=os.environ.get("RENDER_SYSTEMCTL") or "systemctl",
                        metavar="CMD", help="command that reaches systemd [env RENDER_SYSTEMCTL; "
                        "default systemctl]")
    parser.add_argument("--version", action="version", version=f"render {__version__}")
    return parser


def host_key(system: RealSystem) -> bytes:
    """The per-host HMAC key for masked values; created on the first real run."""
    key = system.read_state("hmac.key")
    if key is None or len(key) < 16:
        key = os.urandom(32)
        system.write_state("hmac.key", key)  # a dry run drops it: the key lives for this run
    return key


def run(args: argparse.Namespace) -> int:
    # Imported here so --help and --version stay instant.
    from renderer import report
    from renderer.apply import Options, apply, exit_code
    from renderer.hiera import Hiera
    from renderer.masking import Masker
    from renderer.plan import Roots, failed
    from renderer.scope import build_scope
    from renderer.services import bind_in_scope, list_services, load_service
    from renderer.system import DryRunSystem, RealSystem
    from renderer.templates import Renderer, bytecode_cache
    from renderer.versions import rollback_plan

    templates = Path(args.templates) if args.templates else default_templates()
    if args.rollback:
        names = [args.rollback]
    else:
        names = list_services(templates) if args.all else list(dict.fromkeys(args.services))
    system_class = DryRunSystem if args.noop else RealSystem
    system = system_class(shlex.split(args.systemctl), Path(args.state_dir))
    system.lock(args.lock_timeout)  # before the first read: plan, writes and restarts as one
    try:
        roots = Roots(Path(args.machines_dir), Path(args.host_root))
        masker = Masker(host_key(system))
        scope = build_scope(args.node, args.facts, args.var)
        renderer = Renderer(templates, bytecode_cache(system))
        hiera: Hiera | RenderError
        try:
            hiera = Hiera.load(Path(args.hieradata) / "hiera.yaml")
        except RenderError as exc:
            hiera = exc

        plans: list[ServicePlan] = []
        for name in names:
            try:
                if args.rollback:
                    service = load_service(templates, name)
                    if not service.bound:  # machines or repeated files come from the data
                        if isinstance(hiera, RenderError):
                            raise hiera
                        service = bind_in_scope(service, hiera, scope)
                    plans.append(rollback_plan(service, roots, system, masker))
                    continue
                if isinstance(hiera, RenderError):
                    raise hiera
                plans.append(plan_one(name, templates, hiera, scope, renderer, roots, system,
                                      masker))
            except RenderError as exc:
                plans.append(failed(name, exc))
        results = apply(plans, system, options=Options(restart=not args.no_restart,
                                                       health_timeout=args.health_timeout,
                                                       keep=args.keep_versions))
        status = exit_code(results)
        if args.format == "json":
            report.as_json(results, sys.stdout, sys.stderr, noop=args.noop, exit_status=status)
        else:
            report.text(results, sys.stdout, sys.stderr, diff=args.diff, noop=args.noop,
                        quiet=args.quiet)
        return status
    finally:  # unlock: a caller that runs render in process (tests) may run it again
        if system._lock is not None:
            os.close(system._lock)
            system._lock = None


def plan_one(name: str, templates: Path, hiera: Hiera, scope: Scope, renderer: Renderer,
             roots: Roots, system: RealSystem, masker: Masker) -> ServicePlan:
    """scope -> hiera lookup -> render -> overrides -> validate -> plan, for one service."""
    from renderer.overrides import OptionData, apply_overrides
    from renderer.plan import plan_service
    from renderer.services import bind_in_scope, load_service
    from renderer.validate import validate
    from renderer.versions import load

    service = bind_in_scope(load_service(templates, name), hiera, scope)
    service_scope = scope.with_variables(service=service.name, machine=service.machine)

    def lookup(key: str, merge: str | dict[str, Any] | None, default: object) -> object:
        return hiera.lookup(key, service_scope, merge=merge, default=default)

    secrets: set[str] = set()
    rendered = renderer.render_service(service, lookup, service_scope, secrets)
    # INI overrides from hieradata go in before validation, masking and the diff see the file.
    rendered = apply_overrides(service, rendered, hiera, service_scope, OptionData(templates),
                               secrets)
    masker.add(secrets)
    validate(rendered)
    return plan_service(service, rendered, roots, system, masker, load(system, service.name))


def main(argv: list[str] | None = None) -> int:
    # A run lives for a tenth of a second and builds no reference cycles worth collecting; the
    # cyclic GC would only walk Jinja's and YAML's young objects over and over.
    gc.disable()
    try:
        return _main(argv)
    finally:
        gc.enable()  # for callers that embed render (tests, tools)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["lookup"]:  # `render lookup KEY`: its own options, see renderer.lookup
        from renderer.lookup import main as lookup_main

        return lookup_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.rollback and (args.all or args.services):
        print("render: --rollback takes one SERVICE; give no other SERVICE or --all",
              file=sys.stderr)
        return EXIT_USAGE
    if not args.all and not args.services and not args.rollback:
        print("render: name at least one SERVICE, or --all", file=sys.stderr)
        return EXIT_USAGE
    if args.all and args.services:
        print("render: give SERVICE names or --all, not both", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(args)
    except RenderError as exc:  # not tied to one service: --facts, --var, the templates dir
        print(f"render: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
