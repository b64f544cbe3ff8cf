"""Command line: parse arguments, pick the System, call the runner, print, return the exit code.

``render lookup`` is a subcommand wherever the word stands among the positional arguments (no
service may be called that). Both commands end the same way: a RenderError is one line and its
exit code; any other exception is a bug in render, one line with a hint and exit 70. The
pipeline is imported only once the arguments are known, so ``--help`` and usage errors stay
instant.
"""

from __future__ import annotations

import argparse
import gc
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from renderer import __version__, manifest
from renderer.colour import CHOICES as COLOURS
from renderer.colour import Painter, diff_colour, enabled, error_colour
from renderer.errors import InternalError, RenderError, UsageError, error_line
from renderer.names import SUBCOMMANDS
from renderer.options import (
    EXIT_INTERNAL,
    Parser,
    add_source_options,
    count,
    from_env,
    seconds,
    template_path,
)
from renderer.outputs import add_options as add_output_options

if TYPE_CHECKING:
    from renderer.apply import ServiceResult
    from renderer.masking import Masker
    from renderer.system.real import RealSystem

# (option, environment variable, default, help)
ROOT_OPTIONS = (
    ("--machines-dir", "RENDER_MACHINES_DIR", "/var/lib/machines",
     "where container root filesystems live"),
    ("--host-root", "RENDER_HOST_ROOT", "/", "root for host-side files such as "
     "/etc/systemd/nspawn/<machine>.nspawn"),
    ("--state-dir", "RENDER_STATE_DIR", "/var/lib/render", "render's own state (per-host key)"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="render",
        description="Render OpenStack service configuration from Hiera 5 data into "
                    "systemd-nspawn containers; show the diff, write atomically, restart what "
                    "changed. `render lookup KEY` looks hieradata up as `puppet lookup` does; "
                    "`render show SERVICE` shows one service whole without writing anything; "
                    "`render preview --from REF --nodes PATH` what a change does on every node; "
                    "`render restart SERVICE` makes only the restarts the records owe.",
        epilog="exit codes (as puppet --detailed-exitcodes): 0 nothing to do, 2 changes made "
               "(or pending with --noop), 4 failures, 6 changes and failures, 64 usage error, "
               "70 a bug in render.")
    parser.add_argument("services", nargs="*", metavar="SERVICE", help="services to render")
    parser.add_argument("--all", action="store_true", help="render every known service")
    parser.add_argument("--list", action="store_true",
                        help="print every service and its machine, SERVICE<TAB>MACHINE ('-' when "
                        "the data decides and cannot be read), and exit")
    parser.add_argument("--diff", action="store_true",
                        help="print a unified diff of every change, secrets masked")
    parser.add_argument("--diff-context", type=count, default=3, metavar="N",
                        help="lines of context around each difference (default 3)")
    parser.add_argument("--color", choices=COLOURS, default="auto",
                        help="colour diff lines and errors: auto (a terminal, unless NO_COLOR "
                        "is set), always or never (default auto)")
    parser.add_argument("--noop", "--check", action="store_true", dest="noop",
                        help="compute and report everything; write and restart nothing")
    parser.add_argument("--no-restart", action="store_true",
                        help="write, but restart nothing (the restarts stay owed; the next run "
                        "makes them)")
    parser.add_argument("--rollback", metavar="SERVICE",
                        help="put each file of SERVICE back to its previous kept version, "
                        "then restart what that changes")
    parser.add_argument("--health-timeout", type=seconds, default=30.0, metavar="SECONDS",
                        help="how long a restarted unit has to become active before its files "
                        "are rolled back (default 30)")
    parser.add_argument("--health-settle", type=seconds, default=0.5, metavar="SECONDS",
                        help="how long a restarted unit must stay active to count as healthy; "
                        "restarts settle together, not one after another (default 0.5)")
    parser.add_argument("--coordinator", metavar="URL",
                        help="etcd://HOST:PORT: the lock of rolling restarts (renderer.rolling); "
                        "without it a rolling unit restarts only when its probe passes")
    parser.add_argument("--lock-wait", type=seconds, default=300.0, metavar="SECONDS",
                        help="how long a rolling restart waits for its place in the cluster "
                        "lock before it stays owed (default 300)")
    parser.add_argument("--keep-versions", type=count, default=5, metavar="N",
                        help="versions of each replaced file kept in the state dir (default 5)")
    add_source_options(parser)
    for option, env, default, text in ROOT_OPTIONS:
        parser.add_argument(option, metavar="DIR", default=from_env(env, default),
                            help=f"{text} [env {env}; default {default}]")
    parser.add_argument("--key-source", metavar="FILE", default=from_env("RENDER_KEY_SOURCE", None),
                        help="a root-only file the masking key is derived from while the state "
                        "dir has no hmac.key (--noop writes none) [env RENDER_KEY_SOURCE; default "
                        "<host-root>/etc/ssh/ssh_host_ed25519_key]")
    parser.add_argument("--bundle", metavar="FILE",
                        help="answer every lookup from this bundle (made by `render bundle` on "
                        "the Puppet server, delivered by Puppet), reading no hieradata "
                        "[env RENDER_BUNDLE]")
    parser.add_argument("--bundle-key", metavar="FILE",
                        help="private key that opens an encrypted bundle (this node's Puppet "
                        "key) [env RENDER_BUNDLE_KEY]")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--quiet", "-q", action="store_true", help="print errors only")
    parser.add_argument("--lock-timeout", type=seconds, default=60.0, metavar="SECONDS",
                        help="wait this long for another run's lock, then fail with exit 4 "
                        "(default 60)")
    parser.add_argument("--systemctl", default=from_env("RENDER_SYSTEMCTL", "systemctl"),
                        metavar="CMD", help="command that reaches systemd [env RENDER_SYSTEMCTL; "
                        "default systemctl]")
    add_output_options(parser)
    parser.add_argument("--no-fast-path", action="store_true",
                        help="always make the full run: never answer 'in sync' from the "
                        "manifest of an earlier in-sync run (renderer.fastpath)")
    parser.add_argument("--version", action="version", version=f"render {__version__}")
    return parser


def check(args: argparse.Namespace) -> None:
    """The combinations argparse cannot express."""
    if args.list and (args.all or args.services or args.rollback):
        raise UsageError("--list takes no SERVICE, --all or --rollback")
    if args.list:
        return
    if args.restart_only and (args.rollback or args.no_restart):
        raise UsageError("render restart takes no --rollback or --no-restart")
    if args.rollback and (args.all or args.services):
        raise UsageError("--rollback takes one SERVICE; give no other SERVICE or --all")
    if not args.all and not args.services and not args.rollback:
        raise UsageError("name at least one SERVICE, or --all")
    if args.all and args.services:
        raise UsageError("give SERVICE names or --all, not both")


def run(args: argparse.Namespace) -> int:
    """Choose the System, run, report."""
    from renderer import report, sources
    from renderer.runner import Runner, Settings
    from renderer.statefile import DEFAULT_KEY_SOURCE
    from renderer.system.dryrun import DryRunSystem
    from renderer.system.real import RealSystem
    from renderer.targets import Roots

    if args.coordinator:
        from renderer.coordinator import endpoint

        endpoint(args.coordinator)  # a bad URL is a usage error before the run
    source = sources.from_args(args)
    settings = Settings(
        services=(args.rollback,) if args.rollback else tuple(args.services),
        templates=template_path(args.templates),
        hieradata=source.environment, source=source,
        extensions=tuple(args.trusted_extension), environment=args.environment,
        roots=Roots(Path(args.machines_dir), Path(args.host_root)),
        node=args.node, facts=args.facts, variables=tuple(args.var), every=args.all,
        rollback=bool(args.rollback), noop=args.noop, restart=not args.no_restart,
        restart_only=args.restart_only,
        health_timeout=args.health_timeout, health_settle=args.health_settle,
        keep=args.keep_versions,
        lock_timeout=args.lock_timeout, lock_wait=args.lock_wait,
        coordinator=args.coordinator,
        bundle=Path(args.bundle) if args.bundle else None, bundle_key=args.bundle_key,
        key_source=Path(args.key_source) if args.key_source else
        Path(args.host_root) / DEFAULT_KEY_SOURCE)
    real = RealSystem(shlex.split(args.systemctl), Path(args.state_dir))
    runner = Runner(settings, DryRunSystem(real) if args.noop else real)
    pending = args.noop and not args.no_restart  # restarts a real run would make
    live = None if args.format == "json" or args.quiet else report.Live(
        sys.stdout, lambda: runner.masker, diff=args.diff, noop=args.noop, pending=pending,
        context=args.diff_context, progress=_terminal(sys.stdout))
    manifest = Manifest(args, real)

    def after(done: list[ServiceResult]) -> None:
        publish(args, done, report.exit_code(done, pending), pending, runner.masker)
        manifest.record(done, runner.masker)

    try:
        results = runner.run(before=manifest.invalidate, after=after, listener=live)
    except RenderError as exc:  # not tied to one service (--facts, the lock): masked all the same
        line = runner.masker.mask_text(error_line(exc))
        print(line, file=sys.stderr)
        publish(args, [], exc.exit_code, pending, runner.masker, line)
        return exc.exit_code
    if args.format == "json":
        report.as_json(results, sys.stdout, sys.stderr, noop=args.noop, pending=pending,
                       masker=runner.masker, context=args.diff_context)
    else:
        report.text(results, sys.stdout, sys.stderr, diff=args.diff, noop=args.noop,
                    pending=pending, quiet=args.quiet, masker=runner.masker,
                    context=args.diff_context, live=live)
    return report.exit_code(results, pending)


def _terminal(out: TextIO) -> TextIO | None:
    """The terminal under ``out`` (its colours unwrapped) for the progress line, or None: a
    pipe (Puppet's exec, cron) gets the same lines without it."""
    stream = getattr(out, "stream", out)
    try:
        return stream if stream.isatty() else None
    except (AttributeError, ValueError):
        return None


class Manifest:
    """The fast path's side of a full run (renderer.fastpath): a real run drops the manifest
    before it may write anything and records its own when it ends in sync."""

    def __init__(self, args: argparse.Namespace, system: RealSystem) -> None:
        self.args, self.system = args, system
        self.old: bytes | None = None
        self.on = (manifest.collecting() and not args.noop and not args.no_fast_path
                   and not args.rollback and not args.restart_only)

    def invalidate(self) -> None:
        """Under the lock, before any write, by every real run (--no-fast-path too): the old
        records are kept in memory only, for ``record``."""
        if not self.args.noop:
            self.old = self.system.read_state(manifest.MANIFEST)
            if self.old is not None:
                self.system.remove_state(manifest.MANIFEST)

    def record(self, results: list[ServiceResult], masker: Masker) -> None:
        import io

        from renderer import report
        from renderer.statefile import host_key

        args = self.args
        if not self.on or not all(in_sync(r) for r in results) or coloured():
            return
        words = sys.argv[1:] if manifest.argv is None else manifest.argv
        found = manifest.invocation(words, os.environ)
        if found is None:
            return
        out: dict[bool, tuple[str, str]] = {}
        for noop in (False, True):
            stdout, stderr = io.StringIO(), io.StringIO()
            pending = noop and not args.no_restart
            if args.format == "json":
                report.as_json(results, stdout, stderr, noop=noop, pending=pending,
                               masker=masker, context=args.diff_context)
            else:
                report.text(results, stdout, stderr, diff=args.diff, noop=noop, pending=pending,
                            quiet=args.quiet, masker=masker, context=args.diff_context)
            out[noop] = (stdout.getvalue(), stderr.getvalue())
        key = host_key(self.system, create=False)
        records = manifest.record(manifest.decode(self.old, key), found[0], args.state_dir, out,
                            [(r.plan.service, r.plan.machine) for r in results],
                            (args.fact_file, args.metrics_file, args.journal))
        if records is not None:
            self.system.write_state(manifest.MANIFEST, manifest.encode(records, key))


def in_sync(result: ServiceResult) -> bool:
    """Nothing to write, written, owed, restarted, held or said: what the manifest may answer."""
    return not (result.plan.changes or result.written or result.restarts or result.owed
                or result.rolled_back or result.kept or result.errors or result.notes)


def coloured() -> bool:
    """The recorded output is plain: a run whose streams are painted records none."""
    return isinstance(sys.stdout, Painter) or isinstance(sys.stderr, Painter)


def publish(args: argparse.Namespace, results: list[ServiceResult], code: int, pending: bool,
            masker: Masker, error: str | None = None) -> None:
    """The fact, the metrics, the journal entries (renderer.outputs), from the results the
    report prints, written while the run still holds its lock."""
    from renderer import outputs

    outputs.publish(results, code, sys.stderr, noop=args.noop, pending=pending, masker=masker,
                    fact_file=args.fact_file, metrics_file=args.metrics_file,
                    journal=args.journal, error=error)


def subcommand(argv: list[str], parser: argparse.ArgumentParser
               ) -> tuple[str | None, list[str]]:
    """``lookup`` or ``show`` wherever it stands among ``parser``'s positional words (option values
    skipped), and the arguments without it."""
    takes_value = {a for action in parser._actions if action.nargs is None
                   and action.option_strings for a in action.option_strings}
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            break
        if word in SUBCOMMANDS:
            return word, argv[:index] + argv[index + 1:]
        index += 2 if word in takes_value else 1
    return None, argv


def main(argv: list[str] | None = None) -> int:
    # A run lives for a tenth of a second and builds no reference cycles worth collecting; the
    # cyclic GC would only walk Jinja's and YAML's young objects over and over.
    gc.disable()
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except RenderError as exc:  # not tied to one service: --facts, --var, the lock
        print(error_line(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug in render: one line, never exit 1
        print(error_line(InternalError.from_exception(exc)), file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        gc.enable()  # for callers that embed render (tests, tools)


def _error_stream() -> TextIO | None:
    """The subcommands' error lines coloured as render's, on a terminal (``RENDER_COLOR``,
    ``NO_COLOR``; they have no ``--color``)."""

    choice = os.environ.get("RENDER_COLOR") or "auto"
    return cast(TextIO, Painter(sys.stderr, error_colour)) if enabled(choice, sys.stderr) \
        else None


def _main(argv: list[str]) -> int:
    parser = build_parser()
    command, argv = subcommand(argv, parser)
    if command == "lookup":
        from renderer.lookup import main as lookup_main

        return lookup_main(argv, err=_error_stream())
    if command == "show":
        from renderer.show import main as show_main

        return show_main(argv, err=_error_stream())
    if command == "bundle":
        from renderer.bundle_command import main as bundle_main

        return bundle_main(argv, err=_error_stream())
    if command == "preview":
        from renderer.preview import main as preview_main

        return preview_main(argv, err=_error_stream())
    from renderer.config import parse_args

    args = parse_args(parser, argv)
    args.restart_only = command == "restart"  # owed restarts alone (renderer.rollback)
    streams = sys.stdout, sys.stderr
    if args.format == "text" and enabled(args.color, sys.stdout):  # JSON stays JSON
        sys.stdout = Painter(sys.stdout, diff_colour)
    if enabled(args.color, sys.stderr):
        sys.stderr = Painter(sys.stderr, error_colour)
    try:
        check(args)
        if args.list:
            from renderer.listing import main as list_main

            return list_main(args, sys.stdout, sys.stderr)
        return run(args)
    except UsageError as exc:
        print(error_line(exc), file=sys.stderr)
        return exc.exit_code
    finally:
        sys.stdout, sys.stderr = streams
