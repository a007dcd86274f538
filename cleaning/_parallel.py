"""A process pool that applies per-value cleaning functions to distinct values in chunks.

Cleaning parses each distinct value once in Python (addresses, names, phones, dates); on a
machine with several cores those values are split into chunks and parsed in worker processes.
The result is the same list, in the same order, as ``[func(v) for v in values]``: the functions
are pure, so where a value is parsed does not change what it becomes.

The pool uses the ``spawn`` start method (safe beside DuckDB's and Dagster's threads, and the
only method on every platform); it lives for one :func:`worker_pool` block, so a clean stage pays
the workers' start-up (importing ``cleaning``) once, not per column.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")

MIN_VALUES_PER_CHUNK = 25_000
"""Below this many values per worker a column is parsed in this process: shipping values and
results and the workers' cold caches cost more than a column of 50 k values saves on 2 cores
(measured: BENCHMARKS.md, "Both cores (issue #22)")."""
CHUNKS_PER_WORKER = 2
"""Chunks per worker: a little balancing between fast and slow chunks, few round trips."""

_pool: ProcessPoolExecutor | None = None
_workers = 1


@contextmanager
def worker_pool(workers: int) -> Iterator[None]:
    """Parse distinct values in ``workers`` processes inside this block (1 = in this process).

    Args:
        workers: Worker processes; 1 (or less) keeps everything in the calling process.

    Yields:
        None; :func:`apply_values` uses the pool until the block ends.
    """
    global _pool, _workers
    if workers <= 1 or _pool is not None:  # nested blocks reuse the outer pool
        yield
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    _pool, _workers = pool, workers
    try:
        yield
    finally:
        _pool, _workers = None, 1
        pool.shutdown(wait=True, cancel_futures=True)


def _apply_chunk(func: Callable[[Any], T], values: Sequence[Any]) -> list[T]:
    return [func(v) for v in values]


def apply_values(func: Callable[[Any], T], values: Sequence[Any]) -> list[T]:
    """``[func(v) for v in values]``, in the worker pool's processes when one is open and large.

    Args:
        func: A picklable (module-level) pure function of one value.
        values: The distinct values.

    Returns:
        One result per value, in the order of ``values``.
    """
    return apply_bulk(partial(_apply_chunk, func), values)


def apply_bulk(bulk: Callable[[Sequence[Any]], list[T]], values: Sequence[Any]) -> list[T]:
    """``bulk(values)``, split into chunks over the worker pool when one is open and large.

    Args:
        bulk: A picklable pure function of a list of values returning one result per value,
            whose result for a value does not depend on the other values of the list.
        values: The distinct values.

    Returns:
        One result per value, in the order of ``values``.
    """
    pool, workers = _pool, _workers
    if pool is None or len(values) < MIN_VALUES_PER_CHUNK * workers:
        return bulk(values)
    # fail here, loudly, on a function a worker cannot receive (a lambda): an unpicklable work
    # item inside the executor can leave its manager thread waiting (a hang seen in testing)
    pickle.dumps(bulk)
    chunks = min(workers * CHUNKS_PER_WORKER, len(values) // MIN_VALUES_PER_CHUNK)
    size = -(-len(values) // chunks)
    parts = [values[i : i + size] for i in range(0, len(values), size)]
    out: list[T] = []
    for part in pool.map(bulk, parts):
        out.extend(part)
    return out
