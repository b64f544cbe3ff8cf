"""``render show SERVICE``: one service whole, without writing, reading or restarting anything.

What a run would make of the service: every file rendered in full with its destination, owner,
mode and restart actions; every hieradata key it read, with the merge, the value, and the level
and ``file:line`` each part came from; and the exact commands a run issues when a file changes
(paunch's ``debug --action print-cmd``). ``--set KEY=VALUE`` tries a value without editing the
data, as paunch's ``--overrides`` does.

The steps are the run's own (renderer.runner.bind_in_scope, Renderer.render_service,
apply_overrides, validate, plan.desired_mode, restarts.command), driven through a
renderer.recorder.Recorder in place of the run's Hiera, so show and a run cannot disagree. No
root is read: not the machines dir, the host root (owners are shown as the names the definition
gives) nor the state dir (no lock, no record, no bytecode cache). Masks use a random key unless
``--state-dir`` (its ``hmac.key``, read only) or ``--key-source`` is given, so without them the
``<redacted>#tag`` of a value differs from the run's reports; only root sees secrets in clear,
with ``--show-secrets``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from renderer.errors import InternalError, RenderError, UsageError, error_line
from renderer.options import EXIT_INTERNAL, Parser, add_source_options, from_env, template_path

DEFAULT_MACHINES = Path("/var/lib/machines")  # display paths: the default roots
DEFAULT_HOST = Path("/")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="render show",
        description="Show what render would make of SERVICE: its files in full (destination, "
                    "owner, mode, restarts), every hieradata key it reads (merge, value, level, "
                    "file:line) and the commands a change runs. Reads no root, writes nothing.",
        epilog="exit codes: 0 shown, 4 the service fails (one line each), 64 usage error.")
    parser.add_argument("service", metavar="SERVICE")
    parser.add_argument("--format", choices=("text", "json", "yaml"), default="text")
    parser.add_argument("--file", metavar="PATH",
                        help="show this file only (its destination path, as in the container)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                        help="try a data value without editing hieradata (repeatable); VALUE is "
                        "JSON when it parses, else a string; it wins over every level")
    parser.add_argument("--show-secrets", action="store_true",
                        help="print secrets in clear (root only)")
    add_source_options(parser)
    parser.add_argument("--state-dir", metavar="DIR", default=None,
                        help="read the masking key (hmac.key) from here, read only, so masks "
                        "match the run's reports (default: none, a random key)")
    parser.add_argument("--key-source", metavar="FILE", default=None,
                        help="derive the masking key from this root-only file, as a run does "
                        "while its state dir has no hmac.key")
    parser.add_argument("--systemctl", default=from_env("RENDER_SYSTEMCTL", "systemctl"),
                        metavar="CMD", help="the systemctl command shown [env RENDER_SYSTEMCTL]")
    return parser


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; VALUE parsed as JSON when it parses, else kept as a string."""
    sets: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set: expected KEY=VALUE, not {item!r}")
        try:
            sets[key] = json.loads(text)
        except ValueError:
            sets[key] = text
    return sets


class _NoState:
    """The System face host_key needs, for a show without ``--state-dir``: no key stored."""

    def read_state(self, name: str) -> bytes | None:
        return None

    def state_path(self, name: str) -> Path:
        return Path(name)


def masking_key(args: argparse.Namespace) -> bytes:
    """renderer.statefile.host_key, never creating anything."""
    from renderer.statefile import host_key

    system: Any = _NoState()
    if args.state_dir:
        from renderer.system.real import RealSystem

        system = RealSystem([], Path(args.state_dir))
    return host_key(system, create=False, source=args.key_source)


class Shown(NamedTuple):
    """Everything ``show`` prints, before formatting."""

    service: Any          # renderer.services.Service, bound
    rendered: list[Any]   # renderer.templates.Rendered, overrides merged in
    recorder: Any         # renderer.recorder.Recorder
    masker: Any           # renderer.masking.Masker
    systemctl: list[str]


def collect(args: argparse.Namespace, sets: dict[str, Any], key: bytes) -> Shown:
    """The pipeline up to ``validate``, as a run makes it, on a recording Hiera."""
    from renderer import sources
    from renderer.edits import render_edits
    from renderer.masking import Masker, secret_strings
    from renderer.optiondata import OptionData
    from renderer.overrides import apply_overrides
    from renderer.recorder import Recorder
    from renderer.runner import bind_in_scope
    from renderer.scope import build_scope
    from renderer.services import load_service
    from renderer.templates import Renderer
    from renderer.validate import validate

    templates = template_path(args.templates)
    scope = build_scope(args.node, args.facts, list(args.var), args.environment,
                        args.trusted_extension)
    definition = load_service(templates, args.service)
    hiera: list[Recorder] = []

    def recorder() -> Recorder:
        if not hiera:
            hiera.append(Recorder(sources.from_args(args).load(), sets))
        return hiera[0]

    try:
        service, local = bind_in_scope(definition, scope, recorder)  # type: ignore[arg-type]
        data = recorder()
        secrets: set[str] = set()
        data.phase = "template"

        def lookup(name: str, merge: Any, default: object) -> object:
            return data.lookup(name, local, merge=merge, default=default)

        rendered = Renderer(templates).render_service(service, lookup, local, secrets)
        data.phase = "override"
        rendered = apply_overrides(service, rendered, data, local,  # type: ignore[arg-type]
                                   OptionData(templates), secrets)
        rendered += render_edits(service, lookup, secrets)  # the argument: the edit is planned
        masker = Masker(key, secrets | data.hiera.secrets)  # with every eyaml plaintext
        for record in data.records.values():  # a Sensitive value only service.yaml read, too
            if record.secret:
                masker.add(secret_strings(_plain(record.value)))
        validate(rendered, masker)
    except RenderError as exc:
        raise exc.with_context(service=args.service)
    return Shown(service, rendered, recorder(), masker,
                 shlex.split(getattr(args, "systemctl", "systemctl")))


# --- what is shown ------------------------------------------------------------------------------

def file_entries(shown: Shown, clear: bool) -> list[dict[str, Any]]:
    from renderer.plan import desired_mode
    from renderer.restarts import command
    from renderer.rolling import policy_of
    from renderer.targets import Roots

    roots = Roots(DEFAULT_MACHINES, DEFAULT_HOST)
    policies = dict(shown.service.policies)
    entries = []
    for item in shown.rendered:
        spec = item.spec
        target = roots.target(spec, shown.service.machine)
        text = item.data.decode("utf-8", "replace")
        names = shown.masker.secret_names(text, spec.secret_options)
        mode = desired_mode(spec, None, bool(names))
        if not clear:
            text = "".join(shown.masker.mask_lines(text.splitlines(keepends=True), names=names,
                                                   whole=spec.secret))
        entries.append({
            "path": roots.display(target), "dest": str(spec.dest), "target": target.key,
            "root": spec.root.value, "machine": target.machine,
            "template": spec.template or spec.kind.value,
            "owner": spec.owner, "group": spec.group, "mode": f"{mode:04o}",
            "mode_kept": spec.mode is None,
            "restart": [a.describe() + rolling(a, policy_of(a, policies)) for a in spec.actions],
            "commands": [shlex.join([*shown.systemctl, *command(a)]) for a in spec.actions],
            "secret_options": sorted(names), "content": text})
    return entries


def rolling(action: Any, policy: Any) -> str:
    """`` (rolling, group galera, 1 at a time; probe: mysql ...)`` for a rolling unit (or the
    container restart that takes its policy)."""
    from renderer.rolling import machine

    if policy is None or not policy.rolling:
        return ""
    return (f" ({policy.describe()}, {policy.max_parallel} at a time; probe: "
            f"{shlex.join(policy.probe.argv(machine(action)))})")


def run_commands(shown: Shown) -> list[str]:
    """What a run that changes every file issues: each action once, daemon-reloads first, the
    units a container restart absorbs left out (renderer.restarts.order, as apply runs them)."""
    from renderer.restarts import command, order

    actions = [a for item in shown.rendered for a in item.spec.actions]
    ordered, absorbed = order(dict.fromkeys(actions))
    return [shlex.join([*shown.systemctl, *command(a)]) for a in ordered if a not in absorbed]


def key_entries(shown: Shown, clear: bool) -> list[dict[str, Any]]:
    from renderer.recorder import lines, root_key, segments

    records = list(shown.recorder.records.values())
    found = lines(records)
    mask = _masking(shown, clear)
    entries = []
    for record in records:
        root = root_key(record.key)
        secret = record.secret or _secret_key(record.key)
        sources = [{"level": s.level, "file": s.path,
                    "line": found.get((s.path, segments(record.key))) if s.path else None,
                    "value": mask(s.value, secret)} for s in record.sources]
        entry: dict[str, Any] = {
            "key": record.key, "merge": record.merge, "via": record.via,
            "found": record.found, "value": mask(record.value, secret) if record.found else None,
            "level": sources[0]["level"] if sources else None,
            "file": sources[0]["file"] if sources else None,
            "line": sources[0]["line"] if sources else None, "sources": sources}
        if record.via == "override" and isinstance(_plain(record.value), dict):
            entry["options"] = _options(record, root, found, mask, secret)
        entries.append(entry)
    return entries


def _options(record: Any, root: str, found: dict, mask: Any, secret: bool) -> list[dict]:
    """Which level set each option of a merged override (the highest one holding it)."""
    from renderer.masking import is_secret_option

    result = []
    for section, options in _plain(record.value).items():
        if not isinstance(options, dict):
            continue
        for option, value in options.items():
            source = next((s for s in record.sources if isinstance(_plain(s.value), dict)
                           and isinstance(_plain(s.value).get(section), dict)
                           and option in _plain(s.value)[section]), None)
            hidden = secret or is_secret_option(section, str(option))
            result.append({
                "section": section, "option": option, "value": mask(value, hidden),
                "level": source.level if source else None,
                "file": source.path if source else None,
                "line": found.get((source.path, (root, section, option)))
                if source and source.path else None})
    return result


def _plain(value: Any) -> Any:
    from renderer.hiera import Sensitive

    while isinstance(value, Sensitive):
        value = value.value
    return value


def _secret_key(key: str) -> bool:
    from renderer.explain import secret_key

    return secret_key(key.strip('"'))


def _masking(shown: Shown, clear: bool) -> Any:
    """``mask(value, secret)``: a JSON-able value; a secret one tagged as in file contents."""
    from renderer.hiera import Sensitive

    def plain(value: Any) -> Any:
        value = _plain(value)
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        return str(value)

    def hide(value: Any, secret: bool) -> Any:
        sensitive = isinstance(value, Sensitive)
        value = _plain(value)
        if isinstance(value, dict):
            return {str(k): hide(v, secret) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [hide(v, secret) for v in value]
        if (secret or sensitive) and value is not None and not isinstance(value, bool):
            return shown.masker.tag(str(value))
        if isinstance(value, str):
            return shown.masker.mask_text(value)
        return plain(value)

    if clear:
        return lambda value, secret: plain(value)
    return hide


def document(shown: Shown, args: argparse.Namespace) -> dict[str, Any]:
    clear = bool(args.show_secrets)
    files = file_entries(shown, clear)
    if args.file is not None:
        wanted = [f for f in files if args.file in (f["dest"], f["path"])]
        if not wanted:
            names = ", ".join(f["dest"] for f in files) or "none"
            raise RenderError(f"renders no file {args.file} (its files: {names})",
                              service=shown.service.name)
        files = wanted
    return {"service": shown.service.name, "machine": shown.service.machine,
            "files": files, "keys": key_entries(shown, clear), "commands": run_commands(shown)}


def write_text(doc: dict[str, Any], out: TextIO) -> None:
    from renderer.names import printable

    out.write(f"# service {doc['service']} (machine {doc['machine']})\n")
    for f in doc["files"]:
        out.write(f"\n## file {printable(f['path'])}\n")
        mode = f["mode"] + (" (kept if the file exists)" if f["mode_kept"] else "")
        out.write(f"#  target {f['target']}  template {f['template']}\n")
        out.write(f"#  owner {f['owner'] or '(kept; root when new)'}  group "
                  f"{f['group'] or '(kept; root when new)'}  mode {mode}\n")
        out.write(f"#  restart: {', '.join(f['restart']) or 'nothing'}\n")
        for cmd in f["commands"]:
            out.write(f"#  on change: {cmd}\n")
        out.write(f["content"] if f["content"].endswith("\n") or not f["content"]
                  else f["content"] + "\n")
    out.write("\n## keys (merge, value, level, file:line)\n")
    for k in doc["keys"]:
        value = json.dumps(k["value"]) if k["found"] else "(not found: default used)"
        where = f"{k['file']}:{k['line']}" if k["file"] else ""
        out.write(printable(f"{k['key']}  [{k['merge']}, {k['via']}]  {value}  "
                            f"{k['level'] or ''} {where}".rstrip()) + "\n")
        if len(k["sources"]) > 1 and "options" not in k:
            for s in k["sources"]:
                at = f"{s['file']}:{s['line']}" if s["file"] else ""
                out.write(printable(f"    {s['level']} {at}  {json.dumps(s['value'])}") + "\n")
        for o in k.get("options", ()):
            at = f"{o['file']}:{o['line']}" if o["file"] else ""
            out.write(printable(f"    [{o['section']}] {o['option']} = "
                                f"{json.dumps(o['value'])}  {o['level'] or ''} {at}") + "\n")
    out.write("\n## commands (a run that changes every file)\n")
    for cmd in doc["commands"]:
        out.write(printable(cmd) + "\n")


def main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from renderer.config import parse_args

    # root's state dir from the file would refuse everyone else: they get a random mask key
    mine = ("state_dir", "key_source") if os.geteuid() != 0 else ()
    args = parse_args(build_parser(), argv, strict=False, ignore=mine)
    try:
        if args.show_secrets and os.geteuid() != 0:
            raise UsageError("--show-secrets is for root only")
        sets = parse_sets(args.sets)
        shown = collect(args, sets, masking_key(args))
        doc = document(shown, args)
    except UsageError as exc:
        err.write(error_line(exc) + "\n")
        return exc.exit_code
    except RenderError as exc:  # secrets found before the failure are not known: mask by name
        from renderer.errors import each_error
        from renderer.masking import Masker

        for error in each_error(exc):  # every error of the service, one line each
            err.write(Masker(b"").mask_text(error_line(error)) + "\n")
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - a bug in render: one line
        err.write(error_line(InternalError.from_exception(exc)) + "\n")
        return EXIT_INTERNAL
    try:
        if args.format == "json":
            json.dump(doc, out, indent=2)
            out.write("\n")
        elif args.format == "yaml":
            import yaml

            yaml.safe_dump(doc, out, sort_keys=False, default_flow_style=False,
                           allow_unicode=True)
        else:
            write_text(doc, out)
        out.flush()
    except BrokenPipeError:  # ``render show x | head``: the reader has what it wanted
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
