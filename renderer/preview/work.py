"""Nodes in parallel: both revisions loaded once, the first node rendered in this process (which
reads every data file and compiles every template the others need), then a fork()ed pool. The
workers share the parsed hieradata and the compiled templates copy-on-write (the cyclic GC is
off and the heap frozen before the fork, so reading them does not copy them), and each sends
back its node's entry, already masked: nothing secret crosses the pipe.
"""

from __future__ import annotations

import gc
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

from renderer.errors import InternalError, PreviewError, error_line
from renderer.masking import Masker
from renderer.preview.compare import compare_node
from renderer.preview.desired import desire_node
from renderer.preview.nodes import Node
from renderer.preview.revision import Revision
from renderer.runner import Desire


class Job(NamedTuple):
    revisions: tuple[Revision, Revision]   # from, to
    desires: tuple[Desire, Desire]
    masker: Masker
    environment: str
    services_key: str
    context: int


_SHARED: list[Any] = []  # (job, nodes), set before the pool forks


def preview_node(job: Job, node: Node) -> dict[str, Any]:
    """One node's entry: both revisions desired, compared, masked."""
    try:
        old, new = (desire_node(desire, revision, node, job.environment, job.services_key)
                    for desire, revision in zip(job.desires, job.revisions))
        entry = compare_node(old, new, job.masker, job.context)
        entry["clusters"] = new.clusters
    except Exception as exc:  # noqa: BLE001 - a bug in render fails this node only
        line = job.masker.mask_text(error_line(InternalError.from_exception(exc)))
        entry = {"errors_before": [], "errors": [line], "services": [], "clusters": {}}
    return {"node": node.name, **entry}


def _work(index: int) -> dict[str, Any]:
    job, nodes = _SHARED
    return preview_node(job, nodes[index])


def preview_all(job: Job, nodes: list[Node], jobs: int) -> list[dict[str, Any]]:
    """Every node's entry, in the order given."""
    if not nodes:
        return []
    entries = [preview_node(job, nodes[0])]
    if jobs <= 1 or len(nodes) < 3:
        return entries + [preview_node(job, node) for node in nodes[1:]]
    _SHARED[:] = [job, nodes]
    enabled = gc.isenabled()
    gc.disable()
    gc.freeze()  # the shared heap stays shared: no collection touches its headers
    try:
        chunk = max(1, min(16, (len(nodes) - 1) // (jobs * 4)))
        # an executor, not multiprocessing.Pool: a worker killed (OOM) fails the preview
        # instead of leaving map() waiting for a result that never comes
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            entries += pool.map(_work, range(1, len(nodes)), chunksize=chunk)
    except BrokenProcessPool:
        raise PreviewError("a worker process died (killed, or out of memory); try a lower "
                           "-j") from None
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
        _SHARED.clear()
    return entries
