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
from typing import TYPE_CHECKING, Any, TextIO

from renderer.errors import InternalError, RenderError, UsageError, error_line
from renderer.options import EXIT_INTERNAL, Parser, add_source_options, template_path

if TYPE_CHECKING:
    from renderer.scope import Scope


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
    parser.add_argument("--encrypt-to", metavar="CERT",
                        help="encrypt the bundle to this PEM certificate (the agent's)")
    parser.add_argument("--envelope-cache", metavar="DIR",
                        help="with --encrypt-to: reuse the envelope kept here while the bundle "
                        "and the certificate are unchanged, so Puppet sees no change (ciphertext "
                        "only; created 0700)")
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


def capture_service(name: str, templates: Any, scope: Scope, hiera: Any) -> dict[str, Any]:
    """One service's answers, its pipeline driven as ``render show`` drives it. A failure is
    noted and the answers so far kept: the node, asking the same questions, fails the same
    way."""
    from renderer.bundle import Capture
    from renderer.edits import render_edits
    from renderer.optiondata import OptionData
    from renderer.overrides import apply_overrides
    from renderer.runner import bind_in_scope
    from renderer.services import load_service
    from renderer.templates import Renderer

    capture = Capture(hiera)
    entry: dict[str, Any] = {"answers": capture.answers}
    try:
        definition = load_service(templates, name)
        service, local = bind_in_scope(definition, scope, lambda: capture)  # type: ignore
        entry["machine"] = service.machine
        secrets: set[str] = set()

        def lookup(key: str, merge: Any, default: object) -> object:
            return capture.lookup(key, local, merge=merge, default=default)

        capture.phase = "template"
        rendered = Renderer(templates).render_service(service, lookup, local, secrets)
        render_edits(service, lookup, secrets)  # a password's hash is looked up too
        capture.phase = "override"
        apply_overrides(service, rendered, capture, local,  # type: ignore[arg-type]
                        OptionData(templates), secrets)
    except RenderError as exc:
        from renderer.errors import error_line
        from renderer.masking import Masker

        entry["error"] = Masker(b"").mask_text(error_line(exc.with_context(service=name)))
    return entry


def make(services: list[str], templates: Any, scope: Scope, hiera: Any, hieradata: Path
         ) -> dict[str, Any]:
    from renderer import __version__
    from renderer.bundle import FORMAT, VERSION, data_digest

    return {"format": FORMAT, "version": VERSION, "render": __version__,
            "node": scope.trusted.get("certname"),
            "environment": scope.variables.get("environment"),
            "hieradata": {"path": str(hieradata), "sha256": data_digest(hieradata)},
            "services": {name: capture_service(name, templates, scope, hiera)
                         for name in services}}


def build(args: argparse.Namespace) -> bytes:
    from renderer import sources
    from renderer.bundle import encrypt
    from renderer.scope import build_scope
    from renderer.services import list_services

    templates = template_path(args.templates)
    scope = build_scope(args.node, args.facts, list(args.var), args.environment,
                        args.trusted_extension)
    if args.trusted:
        from renderer.scope import load_facts_file

        trusted = load_facts_file(args.trusted)
        scope = scope.__class__(scope.facts, dict(trusted), scope.variables)
    source = sources.from_args(args)  # the three layers, as the catalog's lookups see them
    hieradata = source.environment
    hiera = source.load()
    names = list_services(templates) if args.all else list(dict.fromkeys(args.services))
    text = (json.dumps(make(names, templates, scope, hiera, hieradata), sort_keys=True,
                       indent=1) + "\n").encode()
    if not args.encrypt_to:
        return text
    if not args.envelope_cache:
        return encrypt(text, args.encrypt_to)
    return cached_envelope(text, args.encrypt_to, Path(args.envelope_cache),
                           str(scope.trusted.get("certname") or "node"))


def cached_envelope(text: bytes, certificate: str, cache: Path, node: str) -> bytes:
    """The envelope made for the same bundle and certificate before, else a new one (kept). A
    CMS envelope is random each time: without this, every agent run would replace the file."""
    import hashlib

    from renderer.bounds import read_regular
    from renderer.bundle import BundleError, encrypt
    from renderer.names import is_name

    if not is_name(node.lower()):
        raise BundleError(f"not a node name for a cache file: {node!r}", path=cache)
    digest = hashlib.sha256(text + b"\0" + read_regular(certificate, BundleError)).hexdigest()
    path = cache / f"{node.lower()}.pem"
    try:
        kept = path.read_bytes()
    except OSError:
        kept = b""
    head, _, envelope = kept.partition(b"\n")
    if head == digest.encode():
        return envelope
    envelope = encrypt(text, certificate)
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(digest.encode() + b"\n" + envelope)
    os.replace(temp, path)
    return envelope
