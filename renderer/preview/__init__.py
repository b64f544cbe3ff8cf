"""``render preview``: what merging a hieradata or template change would do on every node.

Two revisions of the repository that holds the hieradata and the templates (git refs, read with
``git archive``; the working tree only with ``--worktree``) are rendered for every node of a set
of factsets, in memory: render's own steps (renderer.runner.Desire), no root, no state dir, no
System. Per node, service and file: the masked diff and the units that would restart (their
config hash differs between the revisions); nodes with identical changes grouped; a warning
when every member of a cluster group the data defines would restart; a summary. Exit 0 no
change, 2 changes, 4 errors, 6 both.

Modules: ``nodes`` (factsets), ``revision`` (git), ``desired`` (one revision for one node),
``compare`` (two of them), ``work`` (the fork()ed pool), ``report`` (grouping, formats).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from renderer.errors import InternalError, RenderError, UsageError, error_line
from renderer.options import EXIT_INTERNAL, Parser, count

DEFAULT_HIERADATA = "hieradata"
DEFAULT_TEMPLATES = "service_templates"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="render preview",
        description="Preview a change of hieradata or templates on every node: render two git "
                    "revisions for each node's facts, in memory, and report the masked diffs "
                    "and the units that would restart. Reads no root and no state dir.",
        epilog="exit codes: 0 no node changes, 2 changes, 4 errors, 6 both, 64 usage error.")
    parser.add_argument("--repo", metavar="DIR", default=".",
                        help="the git repository holding the hieradata and templates "
                        "(default: the current directory)")
    parser.add_argument("--from", dest="old", metavar="REF", required=True,
                        help="the revision the nodes run now (e.g. origin/main)")
    parser.add_argument("--to", dest="new", metavar="REF", default=None,
                        help="the revision to preview (default HEAD)")
    parser.add_argument("--worktree", action="store_true",
                        help="preview the working tree as it is on disk, uncommitted edits "
                        "included, instead of --to")
    parser.add_argument("--nodes", metavar="PATH", required=True,
                        help="a factset file or a folder of them: onceover factsets, Puppet's "
                        "cached facts (yaml) or a PuppetDB factsets export (JSON list)")
    parser.add_argument("--hieradata", metavar="PATH", default=DEFAULT_HIERADATA,
                        help="the environment directory (with hiera.yaml) inside the "
                        f"repository (default {DEFAULT_HIERADATA})")
    parser.add_argument("--templates", metavar="PATH", action="append", default=None,
                        help="a template directory inside the repository; repeatable, earlier "
                        f"wins (default {DEFAULT_TEMPLATES})")
    parser.add_argument("--services-key", metavar="KEY", default="render::services",
                        help="the hiera key, looked up in each node's scope, that lists the "
                        "services the node runs (default render::services)")
    parser.add_argument("--environment", default="production",
                        help="$environment for nodes whose facts do not say (default "
                        "production)")
    parser.add_argument("-j", "--jobs", type=count, default=os.cpu_count() or 1, metavar="N",
                        help="nodes rendered in parallel, in processes (default: the CPUs)")
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    parser.add_argument("--no-diff", action="store_true",
                        help="text: name the files that change without their diffs")
    parser.add_argument("--diff-context", type=count, default=3, metavar="N",
                        help="lines of context around each difference (default 3)")
    return parser


def main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        if args.worktree and args.new:
            raise UsageError("give --to REF or --worktree, not both")
        return run(args, out)
    except RenderError as exc:
        err.write(error_line(exc) + "\n")
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - a bug in render: one line
        err.write(error_line(InternalError.from_exception(exc)) + "\n")
        return EXIT_INTERNAL


def run(args: argparse.Namespace, out: TextIO) -> int:
    from renderer.masking import Masker
    from renderer.preview import report, revision
    from renderer.preview.desired import desire_for
    from renderer.preview.nodes import load_nodes
    from renderer.preview.work import Job, preview_all

    repo = Path(args.repo)
    templates = tuple(args.templates or (DEFAULT_TEMPLATES,))
    nodes = load_nodes(Path(args.nodes))
    with tempfile.TemporaryDirectory(prefix="render-preview.") as tmp:
        old = revision.extract(repo, args.old, args.hieradata, templates, Path(tmp) / "from")
        new = revision.worktree(repo, args.hieradata, templates) if args.worktree else \
            revision.extract(repo, args.new or "HEAD", args.hieradata, templates,
                             Path(tmp) / "to")
        masker = Masker(os.urandom(32))  # tags match within one report, never across reports
        job = Job((old, new), (desire_for(old, masker, args.environment),
                               desire_for(new, masker, args.environment)),
                  masker, args.environment, args.services_key, args.diff_context)
        entries = preview_all(job, nodes, args.jobs)
    doc = report.document(entries, (old, new))
    if args.format == "json":
        report.as_json(doc, out)
    elif args.format == "markdown":
        report.markdown(doc, out)
    else:
        report.text(doc, out, diff=not args.no_diff)
    return report.exit_code(entries)
