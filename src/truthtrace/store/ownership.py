"""Which files in a store's folder the writer wrote: it deletes only those, and starts or replaces a
store only in a folder that holds nothing else.

The writer's own files: ``index.json``, ``.writer.lock``, the shards ``index.json`` lists, its temp
files (``TMP_RE``: ``shard.N.bin.tmp``, ``.shard.N.json.XXXX.tmp``, ``.index.json.XXXX.tmp``), and a
shard the index does not list (a crash between the shard and the index) only when its own manifest
proves it: ``shard.N.json`` is a truthtrace shard document naming ``shard.N.bin``, and that ``.bin``
has the size its traces' spans end at. A file merely named like a shard is not the writer's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

from truthtrace.fileio import refuse_foreign, temp_pattern
from truthtrace.store.index import (
    FORMAT,
    INDEX_NAME,
    LOCK_NAME,
    SHARD_FORMAT,
    SHARD_RE,
    TMP_RE,
    StoreError,
    check_version,
    parse_json,
)

FIELD, OWNER = "output folder", "truthtrace's trace store writer"


def listed_files(index: dict) -> set[str]:
    """The shard file names an index document lists (malformed entries list nothing)."""
    shards = index.get("shards")
    if not isinstance(shards, list):
        return set()
    return {shard[kind] for shard in shards if isinstance(shard, dict)
            for kind in ("bin", "json") if isinstance(shard.get(kind), str)}


def _bin_size(root: Path, json_name: str) -> int | None:
    """The ``.bin`` size the shard manifest ``json_name`` implies; None unless it is ours naming its ``.bin``."""
    path = root / json_name
    try:
        doc = parse_json(path.read_bytes(), path)
        check_version(doc, SHARD_FORMAT, path)
        if doc.get("bin") != json_name[: -len("json")] + "bin":
            return None
        return max((int(trace["span"][1]) for trace in doc["traces"]), default=0)
    except (OSError, StoreError, KeyError, TypeError, IndexError, ValueError):
        return None


def proven_shards(root: Path, names: list[str]) -> set[str]:
    """Those of the unlisted shard files ``names`` in ``root`` that their own manifest proves ours."""
    proven = set()
    for name in names:
        if not name.endswith(".json") or (size := _bin_size(root, name)) is None:
            continue
        proven.add(name)
        bin_path = root / (name[: -len("json")] + "bin")
        if bin_path.name in names and bin_path.is_file() and bin_path.stat().st_size == size:
            proven.add(bin_path.name)
    return proven


def store_owner(root: Path, index: dict | None, extra: tuple[str, ...] = ()) -> Callable[[str], bool]:
    """The test of what in ``root`` is the writer's own, for :func:`truthtrace.fileio.refuse_foreign`.

    Args:
        root: the store folder.
        index: its index document (None when there is none); only what it lists counts as listed.
        extra: names of files the caller writes beside the shards (their atomic-write temps count too).
    """
    listed = listed_files(index) if index is not None else set()
    unlisted = [n for n in os.listdir(root) if SHARD_RE.match(n) and n not in listed and (root / n).is_file()]
    own = {INDEX_NAME, LOCK_NAME, *listed, *proven_shards(root, unlisted), *extra}
    temps = [TMP_RE, *(re.compile(temp_pattern(name)) for name in extra)]
    return lambda rel: rel in own or any(p.fullmatch(rel) for p in temps)


def _stored_index(root: Path) -> dict | None:
    """``root/index.json`` parsed, None if absent; StoreError if it is not a truthtrace store's."""
    path = root / INDEX_NAME
    if not path.exists():
        return None
    doc = parse_json(path.read_bytes(), path)
    if doc.get("format") != FORMAT:
        raise StoreError(f"{path}: not a truthtrace store; refusing to overwrite it")
    return doc


def clear_store(root: Path, extra: tuple[str, ...] = ()) -> None:
    """Delete the store in ``root`` (``overwrite=True``): its own files and ``extra``, never another file.

    The lock file stays (the caller holds it). Raises StoreError: ``index.json`` is not a truthtrace
    store's, or ``root`` holds files the writer did not write (named; nothing is deleted).
    """
    owner = store_owner(root, _stored_index(root), extra)
    for path in refuse_foreign(root, owner, FIELD, OWNER, StoreError):
        if path.name != LOCK_NAME:
            path.unlink()


def start_store(root: Path, extra: tuple[str, ...] = ()) -> None:
    """Check that a new store may begin in ``root`` (no ``index.json``); delete the temp files a failed start left.

    Raises:
        StoreError: shard files are here although ``index.json`` is not (it was lost: they are data), or
            ``root`` holds files the writer did not write (named). Nothing is deleted then.
    """
    committed = sorted(n for n in os.listdir(root) if SHARD_RE.match(n))
    if committed:  # the index is written before any shard: it was lost, the shards are data
        raise StoreError(f"{root}: {INDEX_NAME} is missing but {len(committed)} shard files are here "
                         f"({committed[0]}, ...); nothing was deleted. Check them with `truthtrace "
                         f"validate {root}`, or pass --overwrite (overwrite=True) to start over")
    for path in refuse_foreign(root, store_owner(root, None, extra), FIELD, OWNER, StoreError):
        if TMP_RE.fullmatch(path.name):
            path.unlink()


def drop_unlisted(root: Path, index: dict) -> None:
    """Delete what a crash left in a resumed store: the writer's temp files and the unlisted shards it can prove.

    Raises:
        StoreError: something named like a shard (or our temp file) is neither listed nor proven ours;
            it would be overwritten by a later shard. Nothing is deleted then.
    """
    listed = listed_files(index)
    unlisted = sorted(n for n in os.listdir(root) if (SHARD_RE.match(n) or TMP_RE.match(n)) and n not in listed)
    files = [n for n in unlisted if (root / n).is_file() or (root / n).is_symlink()]
    proven = proven_shards(root, [n for n in files if SHARD_RE.match(n)])
    strangers = [n for n in unlisted if n not in files or (SHARD_RE.match(n) and n not in proven)]
    if strangers:
        raise StoreError(f"{root}: {', '.join(strangers[:5])} named like shard files but not this store's "
                         f"({INDEX_NAME} does not list them, no shard manifest of ours proves them); nothing was "
                         "deleted: move them away, or check the store with `truthtrace validate`")
    for name in unlisted:
        (root / name).unlink()
