"""The ``train`` stage's fits on several processes of this machine (``TrainConfig.procs``).

Every ``(detector, seed)`` fit is independent: it reads the feature store, writes only
``<out>/<detector>/seed-<s>/`` and returns its fit info. With ``procs`` > 1 they run in a pool of
``procs`` spawned processes of ``usable CPUs // procs`` torch threads each, the slowest detectors
submitted first so the processes end about together. The small detectors of a 135M model keep about
one core busy each, so two processes use two cores where one process of two threads does not.
The summary lists the fits in the order of the jobs, whichever process ended first; a fit's numbers
may differ from a one-process run in the last float bits (another thread count), not between two
runs with the same ``procs``. Detectors that split their batches over DDP ranks (``splits_over_ranks``:
the gnn, the longest fit by far) are not put in the pool: ``train`` fits each of them first on all
``procs`` processes as local ranks (see ``truthtrace.training.ddp``).
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable

import torch
from tqdm.auto import tqdm

# rough relative cost of one fit on the embedded model's feature store (the order fits are handed out in)
COST = {"gnn": 8, "gnn_layer": 4, "lstm": 4, "transformer": 4, "mlp": 3, "sep": 2, "probe": 2, "probe_exact": 2,
        "lookback": 2}


def by_cost(jobs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """``jobs`` with the most expensive first (ties keep their order)."""
    return sorted(jobs, key=lambda job: -COST.get(job[0], 1))


def _init(threads: int) -> None:
    torch.set_num_threads(threads)


def fit_in_pool(jobs: list[tuple[str, int]], fit: Callable, args: tuple, procs: int, threads: int,
                progress: bool) -> dict[tuple[str, int], dict]:
    """``fit(name, seed, *args)`` of every job on ``procs`` spawned processes; ``{(name, seed): info}``.

    Args:
        fit: a module-level function (it is pickled to the workers), e.g. ``train.fit_job``; its warnings are
            raised again in this process.
        threads: torch threads per process.
    Raises:
        whatever a fit raised (the first, by job order of completion); the pool is shut down first.
    """
    ctx = multiprocessing.get_context("spawn")  # fork would copy this process's torch thread pools and locks
    results: dict[tuple[str, int], dict] = {}
    with ProcessPoolExecutor(max_workers=procs, mp_context=ctx, initializer=_init, initargs=(threads,)) as pool:
        futures = {pool.submit(warned, fit, name, seed, *args): (name, seed) for name, seed in by_cost(jobs)}
        with tqdm(as_completed(futures), total=len(futures), desc=f"train ({procs} processes)",
                  disable=not progress) as done:  # closed before an error propagates
            for future in done:
                info, caught = future.result()
                for message in caught:  # warnings of the worker, raised again here where the caller sees them
                    warnings.warn(message, stacklevel=2)
                results[futures[future]] = info
    return results


def warned(fn: Callable, *args) -> tuple[dict, list[str]]:
    """``(fn(*args), the messages of the warnings it raised)``: a worker's warnings travel back with its result.

    Deprecation warnings of other packages (e.g. torch_geometric's ``torch.jit.script`` on import) are left out,
    as Python's default filters hide them in one process.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = fn(*args)
    return info, [str(w.message) for w in caught if not _foreign_deprecation(w)]


def _foreign_deprecation(w: warnings.WarningMessage) -> bool:
    """True for a (pending) deprecation warning raised outside truthtrace's own code."""
    return issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)) and \
        f"{os.sep}truthtrace{os.sep}" not in str(w.filename)
