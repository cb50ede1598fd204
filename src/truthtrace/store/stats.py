"""A store's sizes and counts, from ``index.json`` alone (no shard is read)."""

from __future__ import annotations

from pathlib import Path

from truthtrace.store.index import INDEX_NAME


def _add_counts(into: dict[str, int], counts: dict[str, int]) -> None:
    for name, count in counts.items():
        into[name] = into.get(name, 0) + count


def store_info(root: Path, index: dict) -> dict:
    """Sizes and counts of the store at ``root`` whose parsed ``index.json`` is ``index``.

    Returns path, format_version, n_traces, n_shards, bytes_on_disk, raw_bytes (dense, stored
    dtype), packed_bytes (after triangle packing), compression_ratio (bytes_on_disk / raw_bytes),
    n_tensors, dtypes and layouts (tensor counts) and overflow_fallbacks (list of
    ``{id, key, dtype, requested, reason}``).
    """
    shards = index["shards"]
    total = {"raw_bytes": 0, "packed_bytes": 0, "n_tensors": 0}
    dtypes: dict[str, int] = {}
    layouts: dict[str, int] = {}
    fallbacks = []
    for shard in shards:
        stats = shard["stats"]
        for field in total:
            total[field] += stats[field]
        _add_counts(dtypes, stats["dtypes"])
        _add_counts(layouts, stats["layouts"])
        fallbacks += stats["fallbacks"]
    on_disk = (root / INDEX_NAME).stat().st_size + sum(s["bin_bytes"] + s["json_bytes"] for s in shards)
    return {"path": str(root), "format_version": index["format_version"],
            "n_traces": sum(len(s["ids"]) for s in shards), "n_shards": len(shards), "bytes_on_disk": on_disk,
            **total, "compression_ratio": on_disk / total["raw_bytes"] if total["raw_bytes"] else None,
            "dtypes": dtypes, "layouts": layouts, "overflow_fallbacks": fallbacks}
