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

``torchrun --nproc-per-node N -m truthtrace preprocess TRACES --out F`` (:func:`sharded_preprocess`): rank ``k``
takes every ``N``-th trace id of ``TRACES`` into ``F.rank-k``. The PCA comes first: rank 0 fits it on the train
split of the whole store exactly as one process does (the same traces, order and token budget), every rank
applies it, and after a barrier rank 0 merges the rank stores into ``F`` in the source order: ``F`` equals a
one-process ``preprocess`` record for record, with the same ``split.json`` and ``pca.safetensors``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Sequence

from truthtrace import distributed
from truthtrace.features.build import (
    FEATURE_FILES,
    check_existing,
    feature_summary,
    feature_writer,
    given_pca,
    open_source,
    prepare_pca,
    write_records,
)
from truthtrace.features.config import PCA_FILE, PreprocessConfig
from truthtrace.features.direct import DirectConfig, extract_features, finish_staged, staging_dir
from truthtrace.features.graphs import load_pca, save_pca
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
    staged = staging_dir(rank_features(out, 0)).exists()
    store = merge_rank_features(out, world, staged)
    present = set(store.ids())
    ids = [q.id for q in questions if q.id in present]  # the order one process keeps them in
    split_doc = make_split(ids, ids, config.features.fractions, config.features.split_seed)
    return write_merged(out, store, staged, split_doc, config.features, config.overwrite)


def merge_rank_features(out: str | Path, world: int, staged: bool) -> TraceStore:
    """The rank stores ``F.rank-k`` (``staged``: their ``.raw`` stores) merged by hard links into a temporary store.

    The temporary store is ``F.raw`` (staged) or ``F.merge``; :func:`write_merged` deletes it.
    """
    out = Path(out)
    inputs = [staging_dir(rank_features(out, r)) if staged else rank_features(out, r) for r in range(world)]
    merged = staging_dir(out) if staged else out.with_name(out.name + MERGE_TMP)
    shutil.rmtree(merged, ignore_errors=True)  # an interrupted run's merge: links to the rank stores only
    merge_stores(merged, inputs)
    return TraceStore(merged)


def write_merged(out: str | Path, store: TraceStore, staged: bool, split_doc: dict, feat: PreprocessConfig,
                 overwrite: bool, pca=None, order: Sequence[str] | None = None) -> dict:
    """Rank 0: the merged rank records ``store`` into the feature store ``out``, with ``split.json`` and the PCA.

    Args:
        staged: ``store`` holds raw node features: the PCA is fitted on its train records and applied here.
        pca: ``(mean (G, d), components (G, k, d))`` the ranks applied (saved as ``pca.safetensors``); None: the
            ``pca_from`` one, if any.
        order: the record order of ``out`` (default: ``store``'s).
    Returns:
        ``{"out", "n_records", "split": {name: n}, "pca"}``.
    """
    out = Path(out)
    schema = {k: v for k, v in store.schema.items() if k != "staging"}
    if not overwrite:
        check_existing(out, schema, split_doc)
    with TraceWriter(out, schema, storage_dtype="float16", shard_max_traces=feat.shard_max_traces, resume=True,
                     overwrite=overwrite, own_files=FEATURE_FILES) as writer:
        write_split(out, split_doc)
        if staged:
            finish_staged(writer, out, split_doc, schema, feat, progress=True)
        else:
            copy_records(store, writer, order)
            shutil.rmtree(store.root)
    graph = schema.get("graph")
    if not staged and graph and graph.get("pca"):
        if pca is None and feat.pca_from:
            pca = given_pca(feat.pca_from, schema)
        if pca is not None:
            save_pca(out / PCA_FILE, *pca)
    return {"out": str(out), "n_records": len(TraceStore(out)), "split": {n: len(split_doc[n]) for n in SPLITS},
            "pca": (out / PCA_FILE).exists()}


def copy_records(store: TraceStore, writer: TraceWriter, order: Sequence[str] | None = None) -> int:
    """Every record of ``store`` that ``writer`` lacks, copied as stored (float16 stays float16); how many.

    ``order``: the ids in the order to write them (default ``store.ids()``).
    """
    n = 0
    for tid in store.ids() if order is None else order:
        if not writer.has(tid):
            writer.add(tid, store.get(tid).tensors(), store.meta(tid))
            n += 1
    writer.flush()
    return n


def shared_pca(parts: list[Path], source: TraceStore, split_doc: dict, schema: dict, config: PreprocessConfig,
               resuming: bool, progress: bool):
    """The one PCA every rank applies: rank 0 prepares it as one process does, the others load it after a barrier.

    Rank 0 fits it on the train split of the whole source store (or reloads it when resuming, or takes
    ``pca_from``) into ``parts[0]/pca.safetensors``; every rank reaches the barrier, so none waits forever.

    Args:
        parts: the rank feature stores ``F.rank-k`` (``parts[0]`` is rank 0's).
    Returns:
        ``(mean (G, d), components (G, node_dim, d))``, or None without PCA.
    """
    rank, _ = distributed.env_world()
    pca = prepare_pca(parts[0], source, split_doc, schema, config, resuming, progress) if rank == 0 else None
    distributed.barrier()
    graph = schema["graph"]
    if rank != 0 and graph and graph["pca"]:
        pca = load_pca(parts[0] / PCA_FILE)
    return pca


def sharded_preprocess(store: str | Path, out: str | Path, config: PreprocessConfig | None = None,
                       labels: str | Path | dict[str, int] | None = None, progress: bool = True) -> dict:
    """``torchrun ... truthtrace preprocess``: this rank's slice of the store's ids into ``F.rank-k``; rank 0 merges.

    Every rank computes the schema and the split of the whole store (metas only); rank 0 fits the one PCA on
    the whole train split exactly as :func:`truthtrace.features.build.preprocess` does, before any record is
    written, so every rank projects with it and no record is written twice. After a barrier rank 0 merges the
    rank stores into ``out`` in the source store's order, with ``split.json`` and ``pca.safetensors``.

    Returns:
        on rank 0 ``preprocess``'s summary of ``out`` (``written``/``skipped`` summed over the ranks) plus
        ``rank``, ``world_size``, ``written_rank``, ``skipped_rank``, ``seconds_rank``, ``merged`` and peak
        memory; on the other ranks only the per-rank fields.
    Raises:
        ValueError, StoreError: as ``preprocess``; StoreError from the merge when a rank store holds ids of
            another rank's slice (rerun with the same N).
    """
    config, out, t0 = config or PreprocessConfig(), Path(out), time.perf_counter()
    rank, world = distributed.init()
    source, label_map, schema, split_doc = open_source(store, out, config, labels, warn=rank == 0)
    parts = [rank_features(out, r) for r in range(world)]
    resuming = not config.overwrite and check_existing(parts[rank], schema, split_doc)
    mine = set(distributed.slice_for_rank(source.ids(), rank, world))
    with feature_writer(parts[rank], schema, config) as writer:
        write_split(parts[rank], split_doc)
        pca = shared_pca(parts, source, split_doc, schema, config, resuming, progress and rank == 0)
        counts = write_records(source, writer, schema, pca, mine, progress and rank == 0)
    summary = {"rank": rank, "world_size": world, "written_rank": counts[0], "skipped_rank": counts[1],
               "seconds_rank": round(time.perf_counter() - t0, 2), **peak_memory()}
    totals = distributed.all_sum(counts)  # every rank is done writing (a collective: also the barrier)
    if rank == 0:
        merged = write_merged(out, merge_rank_features(out, world, staged=False), False, split_doc, config,
                              config.overwrite, pca, order=source.ids())
        counts = (int(totals[0]), int(totals[1]))
        summary = {**feature_summary(out, source, schema, split_doc, label_map, counts, time.perf_counter() - t0),
                   **summary, "merged": merged}
    distributed.barrier()
    distributed.shutdown()
    return summary
