"""DistributedDataParallel for :func:`truthtrace.training.fit_module` under ``torchrun ... truthtrace train``.

Every rank is given the same batches in the same order (the detectors read the whole split, so
their standardisers, sklearn parts and class weights match one process exactly); the loop then
deals them out: from each group of ``world`` consecutive batches, rank ``k`` trains on the
``k``-th. The last, incomplete group gives the ranks without a batch a zero-weight step on
another batch, so every rank runs the same number of optimizer steps and DDP's gradient
all-reduce never waits for a rank that has run out (the job that ``Join`` does, without ranks
diverging). Validation runs on every rank over the whole val split, so early stopping decides
the same everywhere; only rank 0 writes checkpoints and tracker logs.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator

import torch

from truthtrace import distributed

Batch = dict[str, Any]


def wrap(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel` when a process group is up, else as is.

    DDP broadcasts rank 0's parameters and buffers at construction, so every rank starts equal.
    ``find_unused_parameters``: some detectors leave parts unused for some inputs.
    """
    if not distributed.active():
        return module
    return torch.nn.parallel.DistributedDataParallel(module, find_unused_parameters=True)


def steps_per_epoch(n_batches: int) -> int:
    """Optimizer steps per epoch on each rank: ``ceil(n_batches / world)``."""
    world = distributed.env_world()[1] if distributed.active() else 1
    return math.ceil(n_batches / world)


def rank_batches(batches: Iterable[Batch]) -> Iterator[tuple[Batch, bool]]:
    """This rank's ``(batch, real)`` pairs: the ``rank``-th of each group of ``world`` batches.

    ``real`` is False for the filler step of the last, incomplete group (the group's first batch,
    trained with zero weight). In a single process: every batch, all real.
    """
    if not distributed.active():
        yield from ((b, True) for b in batches)
        return
    rank, world = distributed.env_world()
    group: list[Batch] = []
    for batch in batches:
        group.append(batch)
        if len(group) == world:
            yield group[rank], True
            group = []
    if group:
        yield (group[rank], True) if rank < len(group) else (group[0], False)


def check_same_data(n_neg: int, n_pos: int, n_batches: int) -> None:
    """ValueError unless every rank counted the same train labels and batches (else collectives would hang)."""
    if not distributed.all_equal(f"{n_neg},{n_pos},{n_batches}"):
        raise ValueError("DDP training: the ranks were given different train batches; give every rank the whole "
                         "split (FeatureDataset(rank=None) does) and let fit_module deal them out")


def is_writer() -> bool:
    """True where checkpoints and tracker logs are written: rank 0, or a single process."""
    return distributed.is_main()
