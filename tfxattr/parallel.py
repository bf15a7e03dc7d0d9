"""Per-image CPU work on several cores: ``jobs=`` of the metrics and of ``tfxattr eval --jobs``.

What runs in the workers is only the NumPy / SciPy / qhull / PIL work a metric does for one image after
(or before) the model's predictions: the bokeh images and WebP sizes of SIC/AIC, ROAD's sparse imputations.
TensorFlow stays in the parent, which feeds the model while the workers build the next images: a worker
never calls TensorFlow, so nothing about the model (its weights, its traced functions, a GPU) is copied,
loaded or initialised there, and the workers can be forked from the parent as it is.

A :class:`WorkerPool` is started once per run (``compute()`` call, ``evaluate()`` run) and handed to every
metric of the run; :meth:`WorkerPool.ordered` runs one task per image and yields the results in the images'
order with a bounded number of tasks in flight (memory bounded by ``ahead`` images' results). Every task is a
module-level function of its arguments, run the same way inline (``jobs=1``) or in a worker, so the numbers
are identical for every ``jobs`` by construction (tested: ``tests/metrics/test_jobs.py``).
"""
from __future__ import annotations

import collections
import multiprocessing
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, Optional, Tuple

from .checks import positive_int


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve_jobs(jobs: Optional[int]) -> int:
    """``jobs`` as a number of processes: None = :func:`available_cores`."""
    return available_cores() if jobs is None else positive_int(jobs, "jobs")


#: "fork" where the platform has it: a worker starts in milliseconds, with nothing to import, and inherits
#: the parent's memory copy-on-write (it only reads the arrays it is sent). A forked child must not touch
#: the threads TensorFlow runs in the parent; our tasks never call TensorFlow. Elsewhere "spawn".
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


class WorkerPool:
    """``jobs`` worker processes (or none: ``jobs=1`` runs every task inline, in order).

    ``WorkerPool.started`` counts the process pools started in this process (tests check that a run
    starts one, not one per image)."""

    started = 0

    def __init__(self, jobs: Optional[int] = None):
        self.jobs = resolve_jobs(jobs)
        self._executor = None
        if self.jobs > 1:
            with warnings.catch_warnings():  # Python >= 3.12 warns about forking a threaded process: see START_METHOD
                warnings.simplefilter("ignore", DeprecationWarning)
                self._executor = ProcessPoolExecutor(self.jobs, multiprocessing.get_context(START_METHOD))
                # start every worker now, once, before the run's first image (not at the first task)
                list(self._executor.map(_nothing, range(self.jobs)))
            WorkerPool.started += 1

    @property
    def parallel(self) -> bool:
        return self._executor is not None

    def ordered(self, fn: Callable, args: Iterable[Tuple], ahead: Optional[int] = None) -> Iterator:
        """``fn(*a)`` for every ``a`` in ``args``, yielded in order; at most ``ahead`` (default 2 x jobs)
        tasks submitted and not yet yielded (the results held at once). Inline when ``jobs == 1``."""
        if self._executor is None:
            for a in args:
                yield fn(*a)
            return
        ahead = max(1, ahead or 2 * self.jobs)
        pending = collections.deque()
        for a in args:
            pending.append(self._executor.submit(fn, *a))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self):
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _nothing(_):
    return None


class _Borrowed:
    """A pool given by the caller: used, not closed."""

    def __init__(self, pool):
        self.pool = pool

    def __enter__(self):
        return self.pool

    def __exit__(self, *exc):
        return None


def worker_pool(jobs, tasks: Optional[int] = None):
    """A context manager giving a :class:`WorkerPool`: ``jobs`` itself when it is one (the run's pool, left
    open), else a new pool of ``jobs`` processes (None: every available core) closed on exit. ``tasks``: how
    many independent tasks there are; no more processes than that are started (one task: none)."""
    if isinstance(jobs, WorkerPool):
        return _Borrowed(jobs)
    n = resolve_jobs(jobs)
    if tasks is not None:
        n = max(1, min(n, tasks))
    return WorkerPool(n)
