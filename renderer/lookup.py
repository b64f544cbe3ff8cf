"""``render lookup KEY``: a Hiera lookup from the command line, answered as ``puppet lookup`` does.

The value is printed as ``puppet lookup --render-as json`` prints it (compact JSON, Ruby's float
format, Sensitive as ``"Sensitive [value redacted]"``). Exit codes tell the three outcomes apart,
where Puppet exits 1 for both of the last two:

    0   found (a null value prints ``null``)
    1   not found: ``Function lookup() did not find a value for the name 'KEY'`` on stderr
    4   a data error (bad YAML, bad hiera.yaml, a loop, a merge type error...): one line on stderr,
        with file:line where known
    64  usage error
    70  a bug in render (one line, as ``render`` says it): never 1, which reads as "not found"

The scope is the one ``puppet lookup --node NODE --facts FILE`` builds (see
``renderer.scope.build_scope``); ``--service NAME`` adds the variables ``render`` sets when
it renders that service (``service`` and ``machine``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from renderer.errors import InternalError, LookupNotFound, RenderError, UsageError, error_line
from renderer.options import EXIT_INTERNAL, Parser, add_source_options, template_path

EXIT_FOUND = 0
EXIT_NOT_FOUND = 1
EXIT_DATA_ERROR = 4
STRATEGIES = ("first", "unique", "hash", "deep")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="render lookup",
        description="Look up KEY in the hieradata exactly as `puppet lookup` does and print the "
                    "value as JSON. With several keys, the first one found is printed.",
        epilog="exit codes: 0 found, 1 not found, 4 data error, 64 usage error.")
    parser.add_argument("keys", nargs="*", metavar="KEY")
    parser.add_argument("--merge", choices=STRATEGIES,
                        help="merge strategy; replaces the key's lookup_options entirely")
    parser.add_argument("--knock-out-prefix", metavar="PREFIX", dest="knockout_prefix",
                        help="with --merge deep: array elements and hash values starting with "
                             "PREFIX knock out lower-level ones")
    parser.add_argument("--sort-merged-arrays", action="store_true",
                        help="with --merge deep: sort arrays after each merge")
    parser.add_argument("--merge-hash-arrays", action="store_true",
                        help="with --merge deep: merge arrays of hashes by position")
    parser.add_argument("--default", metavar="VALUE", help="a string to print when not found")
    parser.add_argument("--explain", action="store_true",
                        help="explain, level by level, how the value was found (secrets masked)")
    parser.add_argument("--render-as", choices=("json",), default="json",
                        help="output format (JSON only; accepted for `puppet lookup` habits)")
    add_source_options(parser)
    parser.add_argument("--service", metavar="NAME",
                        help="look up as render does for this service (sets $service, $machine; "
                        "an INI override key NAME::config::FILE gets render's merge)")
    parser.add_argument("--all-keys", action="store_true",
                        help="with --service: list every key the service reads and the merge "
                        "render uses for it, one per line (no KEY)")
    puppet = parser.add_argument_group("as `puppet lookup` spells them")
    puppet.add_argument("--type", metavar="TYPE",
                        help="fail unless the value is an instance of this Puppet type")
    puppet.add_argument("--compile", action="store_true",
                        help="accepted and ignored: variables come from --var")
    return parser


def merge_option(args: argparse.Namespace) -> str | dict[str, Any] | None:
    """The merge ``puppet lookup`` builds from its options (deep always names its two flags)."""
    flags = args.sort_merged_arrays or args.merge_hash_arrays or args.knockout_prefix is not None
    if flags and args.merge != "deep":
        raise UsageError("--knock-out-prefix, --sort-merged-arrays and --merge-hash-arrays are "
                         "only available with '--merge deep'")
    if args.merge != "deep":
        return args.merge
    merge: dict[str, Any] = {"strategy": "deep", "sort_merged_arrays": args.sort_merged_arrays,
                             "merge_hash_arrays": args.merge_hash_arrays}
    if args.knockout_prefix is not None:
        merge["knockout_prefix"] = args.knockout_prefix
    return merge


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; the knockout prefix is taken out first, because argparse drops a value
    that is exactly ``--`` (the prefix Puppet's documentation uses) and refuses one that starts
    with ``-`` unless it is joined with ``=``."""
    rest: list[str] = []
    prefix = None
    words = iter(argv)
    for word in words:
        if word == "--":
            rest += ["--", *words]
        elif word == "--knock-out-prefix":
            prefix = next(words, None)
            if prefix is None:
                build_parser().error("argument --knock-out-prefix: expected one argument")
        elif word.startswith("--knock-out-prefix="):
            prefix = word.partition("=")[2]
        else:
            rest.append(word)
    parser = build_parser()
    from renderer.config import parse_args as configured

    args = configured(parser, rest, strict=False)
    args.knockout_prefix = prefix
    if args.all_keys and (args.keys or not args.service):
        parser.error("--all-keys takes --service NAME and no KEY")
    if not args.all_keys and not args.keys:
        parser.error("the following arguments are required: KEY")
    return args


def main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = parse_args(argv)
    if args.all_keys:
        return all_keys(args, out, err)
    explainer = None
    if args.explain:
        from renderer.explain import Explainer

        explainer = Explainer(out)
    try:
        text = to_text(resolve(args, explainer))
    except LookupNotFound as exc:
        _report(explainer, out, err, exc.message)
        for key in args.keys:
            hint = quoting_hint(key, args.service)
            if hint:
                err.write(hint + "\n")
        return EXIT_NOT_FOUND
    except RenderError as exc:
        _report(explainer, out, err, error_line(exc))
        return exc.exit_code
    except RecursionError:
        _report(explainer, out, err, "render: the data is nested too deeply to look up")
        return EXIT_DATA_ERROR
    except Exception as exc:  # noqa: BLE001 - a bug in render: never exit 1 ("not found")
        _report(explainer, out, err, error_line(InternalError.from_exception(exc)))
        return EXIT_INTERNAL
    if explainer is None:
        out.write(text + "\n")
    return EXIT_FOUND


def _report(explainer: Any, out: TextIO, err: TextIO, message: str) -> None:
    if explainer is not None:
        explainer.unwind()
        message = explainer.mask(message)  # it knows the secrets found before the failure
        out.write(message + "\n")
    err.write(message + "\n")  # error_line has escaped the names in it already


def resolve(args: argparse.Namespace, explain: Any = None) -> Any:
    """The value for ``args.keys`` (the first key found); LookupNotFound when none is."""
    from renderer.scope import build_scope

    merge = merge_option(args)
    scope = build_scope(args.node, args.facts, args.var, args.environment,
                        args.trusted_extension)
    service = None
    if args.service:
        from renderer.services import load_service

        service = load_service(template_path(args.templates), args.service)
        scope = scope.with_variables(service=service.name)
        if isinstance(service.machine, str):
            scope = scope.with_variables(machine=service.machine)
    wanted = parse_type(args.type)
    from renderer import sources

    source = sources.from_args(args)
    if not source.environment.is_dir():  # Puppet: no such environment
        from renderer.errors import HieraConfigError

        raise HieraConfigError("no such directory (the environment; see --hieradata, "
                               "--environment)", path=source.environment)
    hiera = load_hiera(source.config, source)
    if hiera is not None:
        if service is not None and not isinstance(service.machine, str):  # the data decides it
            scope = scope.with_variables(machine=_machine(service, hiera, scope))
        for key in args.keys:
            key_merge = merge
            if service is not None and args.merge is None:
                key, key_merge = override_key(key, service.name, hiera, scope, merge)
            try:
                value = hiera.lookup(key, scope, merge=key_merge, explain=explain)
            except LookupNotFound:
                continue
            return checked(wanted, "Found value", value)
    if args.default is not None:
        return checked(wanted, "Default value", args.default)
    if len(args.keys) == 1:
        raise LookupNotFound(args.keys[0])
    names = ", ".join(f"'{key}'" for key in args.keys)
    raise _NotFoundAny(names)


def override_key(key: str, service: str, hiera: Any, scope: Any, merge: Any) -> tuple[str, Any]:
    """An INI override key (``<service>::config::<file>``, renderer.overrides) as render looks it
    up: quoted (the file name's dot would dig), with a deep merge unless lookup_options names
    one; ``keystone::config::keystone.conf.DEFAULT`` digs into the override. Other keys as
    given."""
    from renderer.overrides import SEPARATOR

    prefix = service + SEPARATOR
    if key.startswith('"' + prefix):
        end = key.find('"', 1)
        root = key[:end + 1] if end > 0 else key
    elif key.startswith(prefix):
        known = sorted(hiera.keys_with_prefix(prefix, scope), key=len, reverse=True)
        name = next((k for k in known if key == k or key.startswith(k + ".")), key)
        root = f'"{name}"' if '"' not in name else name
        key = root + key[len(name):]
    else:
        return key, merge
    return key, None if "merge" in hiera.lookup_options(root, scope) else "deep"


def quoting_hint(key: str, service: str | None) -> str | None:
    """For a key not found whose dot Puppet reads as "dig into": how to name the key itself."""
    from renderer.overrides import SEPARATOR

    root = key.partition(".")[0]
    if key.startswith('"') or "." not in key or "::" not in root:
        return None
    if service is not None and key.startswith(service + SEPARATOR):
        return None  # quoted already, as render looks it up
    hint = (f"render: hint: a '.' in a key digs into the value of '{root}'; to look up "
            f"'{key}' itself, quote it: '\"{key}\"'")
    if SEPARATOR in root:
        hint += "; with --service NAME an INI override key is looked up as render merges it"
    return hint


def all_keys(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Every key ``args.service`` reads and the merge render uses, from ``render show``'s
    recorder (the run's own steps)."""
    from renderer.show import collect

    try:
        shown = collect(args, {}, b"")
    except RenderError as exc:
        err.write(error_line(exc) + "\n")
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - a bug in render: never exit 1 ("not found")
        err.write(error_line(InternalError.from_exception(exc)) + "\n")
        return EXIT_INTERNAL
    for record in shown.recorder.records.values():
        out.write(f"{record.key}\t{record.merge}\n")
    return EXIT_FOUND


def _machine(service: Any, hiera: Any, scope: Any) -> str:
    """The machine the data gives a service, looked up as render's runner looks it up: in the
    service's scope, before ``machine`` is a variable."""
    from renderer.services import resolve_machine

    return resolve_machine(service, lambda key, default: hiera.lookup(key, scope,
                                                                      default=default))


def load_hiera(config: Path, source: Any = None) -> Any:
    """The Hiera for ``config`` (with ``source``'s global and module layers); None when Puppet
    would find no environment data there: no hiera.yaml, or a Hiera 3 one (no version, version
    3, not a hash), which Puppet ignores in an environment."""
    from renderer.hiera import Hiera
    from renderer.hiera.config import HieraVersion3Error
    from renderer.log import warning

    if not config.exists():
        warning(__name__, "%s does not exist: no data to look up", config)
        return None
    try:
        return source.load() if source is not None else Hiera.load(config)
    except HieraVersion3Error as exc:
        warning(__name__, "%s; as Puppet does, no data is looked up there", exc)
        return None


def parse_type(text: str | None) -> Any:
    """The parsed ``--type``, or None."""
    if text is None:
        return None
    from renderer.hiera import types

    try:
        return types.parse(text)
    except types.TypeSyntaxError:
        raise UsageError(f"--type: not a Puppet type: {text!r}") from None


def checked(wanted: Any, what: str, value: Any) -> Any:
    """``value``, if it is an instance of ``--type`` (Puppet's assert_type)."""
    if wanted is None:
        return value
    from renderer.hiera import types

    if not types.instance(wanted, value):
        from renderer.errors import HieraError
        from renderer.hiera.merge import type_name

        raise HieraError(f"{what} has wrong type, expects {wanted}, got {type_name(value)}")
    return value


class _NotFoundAny(LookupNotFound):
    """None of several keys was found (Puppet's plural wording)."""

    def __init__(self, names: str) -> None:
        super().__init__(names)
        self.message = f"Function lookup() did not find a value for any of the names [{names}]"


def to_text(value: Any) -> str:
    """The JSON Puppet prints; a value Ruby's JSON refuses (NaN, Infinity) is a data error."""
    from renderer.errors import HieraDataError
    from renderer.hiera.ruby import JSONError, to_json

    try:
        return to_json(value)
    except JSONError as exc:
        raise HieraDataError(f"cannot print the value as JSON: {exc}") from exc
