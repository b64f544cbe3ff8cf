"""Services planned in parallel on a host of many: the same plans as one after another.

The first service is planned in this process (it loads the hiera data, the templates'
environment and the option data), then a fork()ed pool plans the others in slices, sharing
what is loaded copy-on-write (the cyclic GC off and the heap frozen, as renderer.preview.work
does). Planning only reads (load -> ... -> plan: the System is only read), so a worker's
plans are what this process would make, but for what depends on the order: the secrets the
services before it taught the masker, and the fast path's notes. Each worker therefore sends
back, per service, its plan and the secrets it learned, and per slice its manifest notes; this
process adds them in service order, and plans here again every service whose plan might
differ from the serial one (one with errors, one whose secret options the whole masker sees
otherwise, one that did not pickle) and every service of a worker that died.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from renderer import manifest
from renderer.plan import ServicePlan

MIN_SERVICES = 64   # below, forking costs more than it saves

_SHARED: list[Any] = []  # (runner, names), set before the pool forks


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def plan_all(runner: Any, names: list[str]) -> list[ServicePlan]:
    """Every service's plan, in the order given (``runner``: the renderer.runner.Runner, which
    imports this module)."""
    jobs = min(cores(), 8)
    s = runner.settings
    if len(names) < MIN_SERVICES or jobs <= 1 or s.rollback or s.restart_only:
        return [runner.plan_one(name) for name in names]
    import multiprocessing  # not at import: a run of a few services never forks
    from concurrent.futures import ProcessPoolExecutor

    plans = [runner.plan_one(names[0])]
    slices = _slices(len(names), jobs)
    done: list[tuple[list[tuple[bytes | None, list[str]]], Any] | None] = [None] * len(slices)
    _SHARED[:] = [runner, names]
    enabled = gc.isenabled()
    gc.disable()
    gc.freeze()  # the shared heap stays shared: no collection touches its headers
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_work, start, stop) for start, stop in slices]
            for index, future in enumerate(futures):
                try:
                    done[index] = future.result()
                except Exception:  # noqa: BLE001 - a dead worker: its services are planned here
                    done[index] = None
    except Exception:  # noqa: BLE001 - no pool at all (no fork, no semaphores): serially
        pass
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
        _SHARED.clear()
    for (start, stop), result in zip(slices, done, strict=True):
        if result is None:
            plans += [runner.plan_one(name) for name in names[start:stop]]
            continue
        per_service, notes = result
        manifest.merge(*notes)
        for name, (raw, learned) in zip(names[start:stop], per_service, strict=True):
            runner.masker.add(learned)
            plan = _same(runner, raw)
            plans.append(plan if plan is not None else runner.plan_one(name))
    return plans


def _slices(total: int, jobs: int) -> list[tuple[int, int]]:
    """Services 1.. in contiguous slices, a few per worker so a slow one does not hold back."""
    size = max(1, min(32, (total - 1) // (jobs * 4)))
    return [(start, min(start + size, total)) for start in range(1, total, size)]


def _work(start: int, stop: int) -> tuple[list[tuple[bytes | None, list[str]]], Any]:
    """In a worker: the slice's plans, pickled (None: plan it in the parent), with the secrets
    each service taught the masker, then the slice's manifest notes."""
    import pickle

    runner, names = _SHARED
    manifest.detach()
    out: list[tuple[bytes | None, list[str]]] = []
    for name in names[start:stop]:
        learned: list[str] = []
        runner.masker.learned = learned
        plan = runner.plan_one(name)
        runner.masker.learned = None
        raw: bytes | None = None
        if not plan.errors:
            try:
                raw = pickle.dumps(plan, pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - planned again in the parent, which says why
                raw = None
        out.append((raw, learned))
    return out, manifest.take()


def _same(runner: Any, raw: bytes | None) -> ServicePlan | None:
    """The worker's plan when the serial run would have made the same, else None. Its masker
    knew a subset of the secrets this one knows now (this service's own and some of the
    earlier ones'): a file whose secret options differ under the whole set is planned again."""
    if raw is None:
        return None
    import pickle

    plan: ServicePlan = pickle.loads(raw)  # noqa: S301 - our own fork's plan
    for change in plan.files:
        names = runner.masker.secret_names(change.data.decode("utf-8", "replace"),
                                           change.spec.secret_options)
        if names != change.secret_names:
            return None
    return plan
