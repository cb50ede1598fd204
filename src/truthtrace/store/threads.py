"""Encode and decode the chunks of one trace on several threads.

zstd, zlib's CRC-32, numpy and torch release the GIL while they work on a chunk, so the
chunks of a trace split into ``threads`` groups of about equal bytes run side by side: the
calling thread takes one group, a pool shared by every store of the process the others.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

from truthtrace.machine import usable_cpus

T = TypeVar("T")
R = TypeVar("R")
MAX_DEFAULT_THREADS = 4  # past this the Python part of each chunk (GIL held) gains little
# On 2 cores a second thread lost reading in 4 bench_store runs of 4 (0.70x-0.89x of one thread)
# and writing in 3 of 4 (0.79x-1.07x; BENCHMARKS.md "Trace store"): this few CPUs default to one.
MIN_CPUS_FOR_THREADS = 3
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def default_threads() -> int:
    """Threads used when none are given: the CPUs this process may run on, at most 4; 1 on 1-2 CPUs."""
    cpus = usable_cpus()
    return 1 if cpus < MIN_CPUS_FOR_THREADS else min(MAX_DEFAULT_THREADS, cpus)


def check_threads(threads: int | None) -> int:
    """``threads`` checked (an int >= 1), or the default for None; ValueError otherwise."""
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    return threads


def _pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool of ``workers`` threads (a new one after a fork: threads do not survive it)."""
    key = (os.getpid(), workers)
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(workers, thread_name_prefix="truthtrace-store")
    return _pools[key]


def beside(fn: Callable[[], R], threads: int) -> Future:
    """Start ``fn()`` on the pool of a ``threads``-thread store (``threads >= 2``) and return its future,
    so the caller can work beside it (the writer hashes a shard while its fsync waits on the disk)."""
    return _pool(threads - 1).submit(fn)


def _groups(weights: Sequence[int], n: int) -> list[list[int]]:
    """Indices split into ``n`` groups of about equal total weight (heaviest first to the lightest group)."""
    heap = [(0, g) for g in range(n)]
    groups: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(len(weights)), key=lambda i: -weights[i]):
        load, g = heapq.heappop(heap)
        groups[g].append(i)
        heapq.heappush(heap, (load + weights[i], g))
    return [g for g in groups if g]


def map_chunks(fn: Callable[[T], R], items: Sequence[T], weights: Sequence[int], threads: int) -> list[R]:
    """``[fn(x) for x in items]``, run as ``threads`` groups balanced by ``weights`` (bytes per item).

    An exception raised by ``fn`` is raised here once every group has finished.
    """
    if threads <= 1 or len(items) < 2:
        return [fn(x) for x in items]
    groups = _groups(weights, min(threads, len(items)))

    def run(group: list[int]) -> list[tuple[int, R]]:
        return [(i, fn(items[i])) for i in group]

    futures = [_pool(threads - 1).submit(run, g) for g in groups[1:]]
    try:
        done = run(groups[0])
    finally:
        wait(futures)  # no group outlives the call, even when this thread's group raised
    for future in futures:
        done += future.result()  # raises a worker's exception
    out: list = [None] * len(items)
    for i, value in done:
        out[i] = value
    return out
