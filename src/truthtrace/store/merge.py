"""``truthtrace merge-stores OUT IN...``: one store from several (e.g. the per-rank stores of a torchrun extraction).

Store-level: no trace is decoded. Every input index is loaded and checked, the schemas and
storage settings must agree (keys the schema lists as ``volatile`` aside), ids must be disjoint,
and every shard file must have the size and sha256 its index lists. The shards are then
hard-linked (copied across file systems) into a temporary folder beside ``OUT`` under new
numbers, each shard document rewritten to name its new ``.bin``, the merged ``index.json``
written last, and the folder renamed to ``OUT``: a crash leaves no half-merged store.
Shards are immutable once listed, so sharing their files between stores is safe.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from truthtrace.fileio import fsync_dir, write_bytes_atomic
from truthtrace.store.index import (
    INDEX_NAME,
    SHARD_FORMAT,
    SHARD_RE,
    StoreError,
    check_shard_doc,
    check_version,
    dumps,
    load_index,
    parse_json,
    schema_diff,
    sha256_bytes,
    shard_file_status,
    shard_files,
)


def check_mergeable(indexes: list[tuple[Path, dict]]) -> None:
    """StoreError unless every index has the first one's schema and storage and no id appears twice.

    Args:
        indexes: ``(store path, loaded index.json)`` per input, in merge order.
    """
    (first_path, first), seen = indexes[0], {}
    for path, index in indexes:
        problems = schema_diff(first["schema"], index["schema"])
        problems += [f"storage {k}: {first['storage'].get(k)!r} in {first_path}, {v!r} here"
                     for k, v in index["storage"].items() if first["storage"].get(k) != v]
        if problems:
            raise StoreError(f"{path}: cannot merge with {first_path}, written with other settings:\n  "
                             + "\n  ".join(problems))
        for shard in index["shards"]:
            for trace_id in shard["ids"]:
                if trace_id in seen:
                    raise StoreError(f"{path}: trace id {trace_id!r} is also in {seen[trace_id]}; the stores to merge "
                                     "must hold disjoint ids (each rank its own slice)")
                seen[trace_id] = path


def _link(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst``, or copy it where links are impossible (another file system)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _copy_shard(root: Path, shard: dict, number: int, tmp: Path, verify: bool) -> dict:
    """Put input ``shard`` of store ``root`` into ``tmp`` as shard ``number``; its new index entry."""
    for kind in ("bin", "json"):
        status = shard_file_status(root, shard, kind, checksum=verify)
        if status is not None:
            raise StoreError(f"{root / shard[kind]}: {status} does not match {root / INDEX_NAME}; "
                             f"`truthtrace validate {root}` reports the damage")
    bin_name, json_name = shard_files(number)
    doc = parse_json((root / shard["json"]).read_bytes(), root / shard["json"])
    check_version(doc, SHARD_FORMAT, root / shard["json"])
    check_shard_doc(doc, root / shard["json"])
    data = dumps({**doc, "bin": bin_name})
    _link(root / shard["bin"], tmp / bin_name)
    (tmp / json_name).write_bytes(data)
    return {**shard, "bin": bin_name, "json": json_name, "json_bytes": len(data), "json_sha256": sha256_bytes(data)}


def remove_merged(path: str | Path) -> bool:
    """Delete the store at ``path`` if ``merge-stores`` wrote it (its index lists ``merged_from``), else leave it.

    Only its own files go (``index.json`` and shard files, links to the input shards); a folder holding
    anything else is refused.

    Returns:
        True when a merged store was deleted.
    Raises:
        StoreError: ``path`` holds a store not written by a merge, or other files.
    """
    root = Path(path)
    if not (root / INDEX_NAME).is_file():
        return False
    if "merged_from" not in load_index(root, strict=False):
        raise StoreError(f"{root}: holds a trace store that merge-stores did not write; move it or choose "
                         "another output folder")
    other = [p.name for p in root.iterdir() if p.name != INDEX_NAME and not SHARD_RE.match(p.name)]
    if other:
        raise StoreError(f"{root}: holds files merge-stores did not write ({', '.join(sorted(other)[:3])}); "
                         "nothing was deleted")
    shutil.rmtree(root)
    return True


def merge_stores(out: str | Path, inputs: Sequence[str | Path], verify: bool = True) -> dict:
    """Merge the trace stores ``inputs`` (in this order) into a new store ``out``.

    Args:
        out: the merged store; must not exist (or be an empty folder).
        inputs: one or more stores with equal schema and storage and disjoint ids.
        verify: check every shard file's sha256 (False: sizes only, faster on big stores).

    Returns:
        ``{"out", "n_traces", "n_shards", "inputs": [{"path", "n_traces"}...]}``.

    Raises:
        StoreError: an input that is not a sound store, settings that differ, an id in two inputs, ``out``
            not empty, or ``out`` among the inputs.
        ValueError: no input.
    """
    out, roots = Path(out), [Path(p) for p in inputs]
    if not roots:
        raise ValueError("merge-stores needs at least one input store")
    if any(out.resolve() == r.resolve() for r in roots):
        raise StoreError(f"{out}: the output is one of the inputs; merge into a new folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StoreError(f"{out}: exists and is not an empty folder; merge into a new folder")
    indexes = [(r, load_index(r)) for r in roots]
    check_mergeable(indexes)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".merge.tmp", dir=out.parent))
    try:
        shards: list[dict] = []
        for root, index in indexes:
            for shard in index["shards"]:
                shards.append(_copy_shard(root, shard, len(shards), tmp, verify))
        fsync_dir(tmp)  # the shard files are in place before the index names them
        first = indexes[0][1]
        merged = {**first, "n_traces": sum(len(s["ids"]) for s in shards), "shards": shards,
                  "merged_from": [str(r) for r in roots]}
        write_bytes_atomic(tmp / INDEX_NAME, dumps(merged))
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out), "n_traces": merged["n_traces"], "n_shards": len(shards),
            "inputs": [{"path": str(r), "n_traces": index["n_traces"]} for r, index in indexes]}
