"""DistributedDataParallel for :func:`truthtrace.training.fit_module` under ``torchrun ... truthtrace train``.

Every rank is given the same batches in the same order (the detectors read the whole split, so
their standardisers, sklearn parts and class weights match one process exactly); the loop then
deals them out: from each group of ``world`` consecutive batches, rank ``k`` trains on the
``k``-th. The last, incomplete group gives the ranks without a batch a zero-weight step on
another batch, so every rank runs the same number of optimizer steps and DDP's gradient
all-reduce never waits for a rank that has run out (the job that ``Join`` does, without ranks
diverging). Validation runs on every rank over the whole val split, so early stopping decides
the same everywhere; only rank 0 writes checkpoints and tracker logs.

Batches split over the ranks instead (a train source with ``split_over_ranks`` True, e.g. the gnn's
:class:`~truthtrace.detectors.graph_batches.PreparedBatches`): every rank steps on every batch, holding
only its part of it (``"label"``) and the whole batch's labels (``"label_full"``); each part's mean loss is
weighted by its share of the batch's known labels (:func:`part_weight`), so the all-reduced gradient is the
one-process gradient of the whole batch and an epoch has as many steps as in one process.
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


def steps_per_epoch(n_batches: int, split: bool = False) -> int:
    """Optimizer steps per epoch on each rank: ``ceil(n_batches / world)``; ``n_batches`` for split batches."""
    world = distributed.env_world()[1] if distributed.active() and not split else 1
    return math.ceil(n_batches / world)


def splits_batches(batches: Iterable[Batch]) -> bool:
    """True when every rank holds its part of every batch (``batches.split_over_ranks``) under a process group."""
    return distributed.active() and bool(getattr(batches, "split_over_ranks", False))


def part_weight(batch: Batch, n_known: int) -> float:
    """The factor on a rank's mean loss over its ``n_known`` known labels of a split batch (1 otherwise).

    ``n_known * world / N``, ``N`` the known labels of the whole batch (``"label_full"``): DDP averages the ranks'
    gradients, so the parts then add up to the gradient of the whole batch's mean loss.
    """
    if "label_full" not in batch or not distributed.active():
        return 1.0
    full = int((torch.as_tensor(batch["label_full"]).reshape(-1) >= 0).sum())
    return n_known * distributed.env_world()[1] / full if full else 0.0


def rank_batches(batches: Iterable[Batch]) -> Iterator[tuple[Batch, bool]]:
    """This rank's ``(batch, real)`` pairs: the ``rank``-th of each group of ``world`` batches.

    ``real`` is False for the filler step of the last, incomplete group (the group's first batch,
    trained with zero weight). In a single process, or for batches split over the ranks: every batch, all real.
    """
    if not distributed.active() or splits_batches(batches):
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
