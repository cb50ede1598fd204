"""Extraction over several processes: ``torchrun --nproc-per-node N -m truthtrace extract --out OUT ...``.

Rank ``k`` takes every ``N``-th question from the ``k``-th (:func:`truthtrace.distributed.slice_for_rank`,
deterministic and disjoint), writes its own store ``OUT/rank-k/`` (one writer per store; it resumes
on its own after a crash, as a one-process extraction does), and after a barrier rank 0 merges
the rank stores into ``OUT/merged/`` (:func:`truthtrace.store.merge.merge_stores`: shards hard-linked,
no trace decoded). Rerun with the same ``N`` to resume: another ``N`` slices the questions
differently and the merge then refuses ids found in two rank stores.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from truthtrace import distributed
from truthtrace.machine import peak_memory
from truthtrace.store.merge import merge_stores, remove_merged
from truthtrace.traces.extract import ExtractConfig, extract

MERGED_DIR = "merged"


def sharded_extract(questions: Sequence, out: str | Path, config: ExtractConfig, model=None,
                    tokenizer=None) -> dict:
    """This rank's share of ``questions`` into ``out/rank-k/``; on rank 0 also the merged store ``out/merged/``.

    Returns:
        this rank's extract summary plus ``rank``, ``world_size``, ``seconds_rank`` (with loading and waiting)
        and peak memory; on rank 0 also ``merged`` (the merge summary) and ``seconds_with_merge``.

    Raises:
        StoreError: from the merge, e.g. a rank store holding ids of another rank's slice.
    """
    t0 = time.perf_counter()
    rank, world = distributed.init()
    mine = distributed.slice_for_rank(questions, rank, world)
    summary = extract(mine, distributed.rank_dir(out, rank), config, model=model, tokenizer=tokenizer,
                      progress=rank == 0)
    summary = {k: v for k, v in summary.items() if k != "config"}
    summary.update(rank=rank, world_size=world, seconds_rank=round(time.perf_counter() - t0, 2), **peak_memory())
    distributed.barrier()
    if rank == 0:
        merged = Path(out) / MERGED_DIR
        remove_merged(merged)  # an earlier run's merge of these rank stores: merged again from them
        summary["merged"] = merge_stores(merged, [distributed.rank_dir(out, r) for r in range(world)])
        summary["seconds_with_merge"] = round(time.perf_counter() - t0, 2)
    distributed.barrier()
    distributed.shutdown()
    return summary
