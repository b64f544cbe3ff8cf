"""Services planned in parallel on a host of many: the same plans as one after another.

The first service is planned in this process (it loads the hiera data, the templates'
environment and the option data), then a fork()ed pool plans the others in slices, sharing
what is loaded copy-on-write (the cyclic GC off and the heap frozen, as renderer.preview.work
does). Planning only reads (load -> ... -> plan: the System is only read), so a worker's
plans are what this process would make, but for what depends on the order: the secrets the
services before it taught the masker, and the fast path's notes. Each worker therefore sends
back, per service, its plan and the secrets it learned, and per slice its manifest notes; this
process adds them in service order, each slice as it comes back, and plans here again every
service whose plan might differ from the serial one (one with errors, one whose secret options
the whole masker sees otherwise, one that did not pickle) and every service of a worker that
died. Only a file that a secret its worker did not know occurs in can have other secret
options (Secrets); the others are not masked again here.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable
from typing import Any

from renderer import manifest, yamlcache
from renderer.masking import MIN_SUBSTRING
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
    _SHARED[:] = [runner, names]
    enabled = gc.isenabled()
    gc.disable()
    gc.freeze()  # the shared heap stays shared: no collection touches its headers
    pool, futures = None, []
    try:
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))
        futures = [pool.submit(_work, start, stop) for start, stop in slices]
    except Exception:  # noqa: BLE001 - no pool (no fork, no semaphores): planned here
        pass
    merge = _Merge(runner, plans)
    try:
        # each slice is added as it comes back, while the workers plan the later ones
        for index, (start, stop) in enumerate(slices):
            result = None
            if index < len(futures):
                try:
                    result = futures[index].result()
                except Exception:  # noqa: BLE001 - a dead worker: its services are planned here
                    result = None
            merge.add(names[start:stop], result)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        runner.masker.learned = None
        gc.unfreeze()
        if enabled:
            gc.enable()
        _SHARED.clear()
    return plans


class _Merge:
    """The workers' plans added to ``plans`` in service order, with what they taught."""

    def __init__(self, runner: Any, plans: list[ServicePlan]) -> None:
        self.runner = runner
        self.plans = plans
        self.added: list[str] = []  # every secret this process learns from here on, in order
        self.earlier = Secrets()    # those learned before the slice at hand: unseen by its worker
        runner.masker.learned = self.added

    def add(self, names: list[str], result: tuple[list[tuple[bytes | None, list[str]]], Any, Any]
            | None) -> None:
        runner = self.runner
        self.earlier.add(self.added[len(self.earlier):])
        if result is None:
            self.plans += [runner.plan_one(name) for name in names]
            return
        per_service, notes, parsed = result
        manifest.merge(*notes)
        yamlcache.merge(parsed)
        seen: set[str] = set()  # the secrets the worker learned, up to this service
        for name, (raw, learned) in zip(names, per_service, strict=True):
            runner.masker.add(learned)
            seen.update(learned)
            plan = _same(runner, raw, self.earlier, seen)
            self.plans.append(plan if plan is not None else runner.plan_one(name))


def _slices(total: int, jobs: int) -> list[tuple[int, int]]:
    """Services 1.. in contiguous slices, a few per worker so a slow one does not hold back."""
    size = max(1, min(32, (total - 1) // (jobs * 4)))
    return [(start, min(start + size, total)) for start in range(1, total, size)]


def _work(start: int, stop: int) -> tuple[list[tuple[bytes | None, list[str]]], Any, Any]:
    """In a worker: the slice's plans, pickled (None: plan it in the parent), with the secrets
    each service taught the masker, then the slice's manifest notes and parse-cache use."""
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
    return out, manifest.take(), yamlcache.take()


def _same(runner: Any, raw: bytes | None, unseen: Secrets, seen: set[str]
          ) -> ServicePlan | None:
    """The worker's plan when the serial run would have made the same, else None. Its masker
    knew a subset of the secrets this one knows now (this service's own and some of the
    earlier ones'): a file whose secret options differ under the whole set is planned again.
    The secrets it did not know are ``unseen`` but for those in ``seen``: a file none of them
    touches is not asked again (asking was a sixth of a 1,000-service run, one core's work
    after the pool)."""
    if raw is None:
        return None
    import pickle

    plan: ServicePlan = pickle.loads(raw)  # noqa: S301 - our own fork's plan
    for change in plan.files:
        text = change.data.decode("utf-8", "replace")
        if unseen.touching(text) <= seen:
            continue
        names = runner.masker.secret_names(text, change.spec.secret_options)
        if names != change.secret_names:
            return None
    return plan


class Secrets:
    """Secret values indexed to say which of them could change how a text is masked.

    Masking a text depends on a known value only where that value, or a line of a multi-line
    one, occurs in the text (Masker: every rule starts from such an occurrence; a rule sees the
    text with earlier secrets replaced by a tag, so a value holding a NUL, which a tag could
    form, counts everywhere). ``touching`` finds them the way Masker finds occurrences: by
    their first MIN_SUBSTRING characters, one scan of the text whatever their number."""

    __slots__ = ("_count", "_values", "_by_prefix", "_short", "_everywhere")

    def __init__(self) -> None:
        self._count = 0
        self._values: dict[str, set[str]] = {}  # the values a piece (one or a line of one) is of
        self._by_prefix: dict[str, set[int]] = {}  # the lengths of the pieces with that prefix
        self._short: set[str] = set()  # pieces too short to index
        self._everywhere: set[str] = set()

    def __len__(self) -> int:
        return self._count

    def add(self, values: Iterable[str]) -> None:
        for value in values:
            self._count += 1
            if "\0" in value:
                self._everywhere.add(value)
            pieces = {value}
            if "\n" in value or "\r" in value:
                pieces.update(part.strip() for part in value.splitlines())
            for piece in pieces - {""}:
                self._values.setdefault(piece, set()).add(value)
                if len(piece) >= MIN_SUBSTRING:
                    self._by_prefix.setdefault(piece[:MIN_SUBSTRING], set()).add(len(piece))
                else:
                    self._short.add(piece)

    def touching(self, text: str) -> set[str]:
        """The values of which the text holds the whole or a line."""
        found = set(self._everywhere)
        pieces = self._values
        grams = set(map("".join, zip(*(text[i:] for i in range(MIN_SUBSTRING)))))
        for prefix in grams.intersection(self._by_prefix):
            lengths = self._by_prefix[prefix]
            start = text.find(prefix)
            while start >= 0:
                for length in lengths:
                    found.update(pieces.get(text[start:start + length], ()))
                start = text.find(prefix, start + 1)
        for piece in self._short:
            if piece in text:
                found.update(pieces[piece])
        return found
