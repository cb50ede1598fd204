"""``extract --features`` over several processes: ``torchrun --nproc-per-node N -m truthtrace extract --features F``.

Rank ``k`` takes every ``N``-th question (:func:`truthtrace.distributed.slice_for_rank`) and runs
:func:`truthtrace.features.direct.extract_features` on it into its own stores: the sampled full traces
``OUT/rank-k/`` and the feature records ``F.rank-k`` (with a graph PCA to fit: still staged, raw node
features, in ``F.rank-k.raw``). Every rank resumes on its own after a crash.

ONE PCA for all ranks: after a barrier rank 0 merges the rank stores (hard links, no record decoded),
makes the split over every question as one process does, fits the PCA on the train-split tokens of
the merged staged records (the same traces, the same seeded order, the same token budget as one
process) and writes the final feature store ``F`` with ``split.json`` and ``pca.safetensors`` beside
it. The sampled traces are merged into ``OUT/merged/``, which the feature schema names as its source.
Where the capture is deterministic (batch size 1, one thread) ``F`` equals a one-process run record
for record. Rerun with the same ``N`` to resume.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Sequence

from truthtrace import distributed
from truthtrace.features.build import FEATURE_FILES, check_existing, given_pca
from truthtrace.features.config import PCA_FILE
from truthtrace.features.direct import DirectConfig, extract_features, finish_staged, staging_dir
from truthtrace.features.graphs import save_pca
from truthtrace.features.splits import SPLITS, make_split, write_split
from truthtrace.machine import peak_memory
from truthtrace.store import TraceStore, TraceWriter
from truthtrace.store.merge import merge_stores, remove_merged
from truthtrace.traces.sharded import MERGED_DIR

MERGE_TMP = ".merge"


def rank_features(out: str | Path, rank: int) -> Path:
    """``F.rank-k`` beside the feature store ``F``: the feature records rank ``k`` writes."""
    out = Path(out)
    return out.with_name(f"{out.name}.{distributed.RANK_DIR.format(rank=rank)}")


def sharded_extract_features(questions: Sequence, out: str | Path, traces: str | Path, config: DirectConfig,
                             model=None, tokenizer=None) -> dict:
    """This rank's share of ``questions`` into its rank stores; on rank 0 also the final feature store ``out``.

    Returns:
        this rank's ``extract_features`` summary plus ``rank``, ``world_size``, ``seconds_rank`` and peak memory;
        on rank 0 also ``merged`` (records, split sizes, pca) and ``seconds_with_merge``.
    """
    t0 = time.perf_counter()
    rank, world = distributed.init()
    mine = distributed.slice_for_rank(questions, rank, world)
    n_sample = len(distributed.slice_for_rank(list(questions)[:config.trace_sample], rank, world))
    rank_config = dataclasses.replace(config, trace_sample=n_sample)
    merged_traces = Path(traces) / MERGED_DIR
    summary = extract_features(mine, rank_features(out, rank), distributed.rank_dir(traces, rank), rank_config,
                               model=model, tokenizer=tokenizer, progress=rank == 0,
                               source=merged_traces.resolve(), finish=False)
    summary.update(rank=rank, world_size=world, seconds_rank=round(time.perf_counter() - t0, 2), **peak_memory())
    distributed.barrier()
    if rank == 0:
        remove_merged(merged_traces)
        merge_stores(merged_traces, [distributed.rank_dir(traces, r) for r in range(world)])
        summary["merged"] = merge_features(questions, out, world, config)
        summary["seconds_with_merge"] = round(time.perf_counter() - t0, 2)
    distributed.barrier()
    distributed.shutdown()
    return summary


def merge_features(questions: Sequence, out: str | Path, world: int, config: DirectConfig) -> dict:
    """Rank 0: the ``world`` rank stores beside ``out`` into the feature store ``out`` (split, one PCA, records).

    Returns:
        ``{"out", "n_records", "split": {name: n}, "pca"}``.
    """
    out, feat = Path(out), config.features
    staged = staging_dir(rank_features(out, 0)).exists()
    inputs = [staging_dir(rank_features(out, r)) if staged else rank_features(out, r) for r in range(world)]
    merged = staging_dir(out) if staged else out.with_name(out.name + MERGE_TMP)
    shutil.rmtree(merged, ignore_errors=True)  # an interrupted run's merge: links to the rank stores only
    merge_stores(merged, inputs)
    store = TraceStore(merged)
    schema = {k: v for k, v in store.schema.items() if k != "staging"}
    present = set(store.ids())
    ids = [q.id for q in questions if q.id in present]  # the order one process keeps them in
    split_doc = make_split(ids, ids, feat.fractions, feat.split_seed)
    if not config.overwrite:
        check_existing(out, schema, split_doc)
    with TraceWriter(out, schema, storage_dtype="float16", shard_max_traces=feat.shard_max_traces, resume=True,
                     overwrite=config.overwrite, own_files=FEATURE_FILES) as writer:
        write_split(out, split_doc)
        if staged:
            finish_staged(writer, out, split_doc, schema, feat, progress=True)
        else:
            copy_records(store, writer)
            shutil.rmtree(merged)
    graph = schema.get("graph")
    if not staged and graph and graph.get("pca") and feat.pca_from:
        save_pca(out / PCA_FILE, *given_pca(feat.pca_from, schema))
    return {"out": str(out), "n_records": len(TraceStore(out)), "split": {n: len(split_doc[n]) for n in SPLITS},
            "pca": (out / PCA_FILE).exists()}


def copy_records(store: TraceStore, writer: TraceWriter) -> int:
    """Every record of ``store`` that ``writer`` lacks, copied as stored (float16 stays float16); how many."""
    n = 0
    for tid in store.ids():
        if not writer.has(tid):
            writer.add(tid, store.get(tid).tensors(), store.meta(tid))
            n += 1
    writer.flush()
    return n
