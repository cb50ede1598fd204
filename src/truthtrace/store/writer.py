"""TraceWriter: append traces to a store shard by shard; atomic, locked, resumable after kill -9.

A shard grows in ``shard.NNNNN.bin.tmp``. ``flush`` fsyncs it, renames it and its
``.json`` into place, then rewrites ``index.json`` (temp + fsync + rename). Only that
last rename makes the shard part of the store, so a crash at any point leaves the
previous index intact; a resuming writer deletes what the crash left of its own files
(``truthtrace.store.ownership``) and never a file it did not write.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import wait
from pathlib import Path

from truthtrace.fileio import write_buffers, write_bytes_atomic
from truthtrace.store.arguments import check_trace, check_writer_args
from truthtrace.store.codec import CHUNK_CODEC, CHUNK_CODECS, CODEC, encode_pieces, entry_sizes
from truthtrace.store.index import (
    FORMAT_VERSION,
    INDEX_NAME,
    LOCK_NAME,
    SHARD_FORMAT,
    TMP_SUFFIX,
    StoreError,
    dumps,
    load_index,
    lock_store,
    new_index,
    schema_diff,
    shard_file_status,
    sha256_stream,
    shard_files,
)
from truthtrace.store.ownership import clear_store, drop_unlisted, start_store
from truthtrace.store.planes import REMEASURE
from truthtrace.store.threads import beside, check_threads, map_chunks


def _jsonable(obj: object, field: str) -> object:
    """``obj`` after a JSON round trip (tuples become lists); ValueError naming ``field`` if impossible."""
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{field} must be JSON-serialisable: {err}") from None


def _new_stats() -> dict:
    return {"n_tensors": 0, "raw_bytes": 0, "packed_bytes": 0, "dtypes": {}, "layouts": {}, "fallbacks": []}


class TraceWriter:
    """Append traces to the store at ``path``; use as a context manager.

    Args:
        path: store directory (created if missing).
        schema: JSON dict describing the traces (model id, layers, heads, ...). An
            optional ``volatile`` list names top-level keys ignored when resuming.
        storage_dtype: "float16", "bfloat16" or "float32" for floating ``layers.*`` tensors.
        shard_max_bytes: cut a shard before it would exceed this many compressed bytes.
        shard_max_traces: cut a shard once it holds this many traces.
        compression_level: zstd level of the planes that are compressed (1: as small as 3 here, and faster).
        resume: continue an existing store at ``path``; if False an existing store raises.
        overwrite: delete an existing store at ``path`` first (only its own files).
        overflow_dtype: dtype for layer tensors that overflow float16 ("float32" or "bfloat16").
        own_files: names of other files the caller writes into ``path`` (e.g. ``split.json``): they do
            not count as foreign, and ``overwrite`` deletes them too.
        threads: encode the tensors of a trace on this many threads (default: the usable CPUs, at most 4;
            one on 1-2 CPUs).
        chunk_codec: "zstd-planes-4" (default: each byte plane zstd or raw, whichever pays, the chunk
            under one xxh3-64 hash, leading rows that equal the shard's first trace's left out),
            "zstd-planes-3" (the same without shared rows: readable by truthtrace before zstd-planes-4),
            "zstd-planes-2" (raw planes under a CRC-32) or "zstd-planes" (version 1, every plane zstd).

    A new store starts only in an empty folder or one holding nothing but the writer's (and
    ``own_files``') files; ``overwrite`` likewise refuses a folder holding anything else.

    Raises:
        ValueError: a bad argument. StoreError: the store cannot be continued (other
            schema or storage dtype, missing shard, another writer holds the lock), or the
            folder holds files truthtrace did not write (named; nothing is deleted).
    """

    def __init__(self, path, schema: dict, storage_dtype: str = "float16",
                 shard_max_bytes: int = 64 * 2**20, shard_max_traces: int = 256,
                 compression_level: int = 1, resume: bool = True, overwrite: bool = False,
                 overflow_dtype: str = "float32", own_files: tuple[str, ...] = (), threads: int | None = None,
                 chunk_codec: str = CHUNK_CODEC):
        check_writer_args(schema, storage_dtype, overflow_dtype, shard_max_bytes, shard_max_traces,
                    compression_level)
        if chunk_codec not in CHUNK_CODECS:
            raise ValueError(f"chunk_codec must be one of {list(CHUNK_CODECS)}, got {chunk_codec!r}")
        self.threads, self.chunk_codec = check_threads(threads), chunk_codec
        self._hints: dict[str, list[str]] = {}  # plane_codecs of each key in the last trace (see planes.py)
        self._encoded = 0
        self.root = Path(path)
        self.shard_max_bytes, self.shard_max_traces = shard_max_bytes, shard_max_traces
        self.compression_level = compression_level
        self._schema = _jsonable(schema, "schema")
        self._storage = {"dtype": storage_dtype, "overflow_dtype": overflow_dtype, "codec": CODEC}
        self._own = tuple(own_files)
        self.root.mkdir(parents=True, exist_ok=True)
        new_lock = not (self.root / LOCK_NAME).exists()
        self._lockfile = lock_store(self.root)
        try:
            if overwrite:
                clear_store(self.root, self._own)
            self._index = self._open_index(resume)
        except BaseException:
            self._lockfile.close()
            if new_lock and not (self.root / INDEX_NAME).exists():  # refused: leave the folder as it was
                (self.root / LOCK_NAME).unlink(missing_ok=True)
            raise
        self._ids = {i for shard in self._index["shards"] for i in shard["ids"]}
        self._closed = False
        self._reset_shard()

    def _open_index(self, resume: bool) -> dict:
        """Load and check the existing index (deleting what a crash left), or write a new one."""
        if not (self.root / INDEX_NAME).exists():
            start_store(self.root, self._own)
            index = new_index(self._schema, self._storage)
            write_bytes_atomic(self.root / INDEX_NAME, dumps(index))
            return index
        if not resume:
            raise StoreError(f"{self.root} already holds a trace store; pass resume=True to continue "
                             "it, overwrite=True to replace it, or choose a new output dir")
        index = load_index(self.root)
        problems = schema_diff(index["schema"], self._schema)
        problems += [f"storage {k}: stored {index['storage'].get(k)!r}, given {v!r}"
                     for k, v in self._storage.items() if index["storage"].get(k) != v]
        if problems:
            raise StoreError(f"{self.root / INDEX_NAME}: cannot resume, the store was written with "
                             "different settings:\n  " + "\n  ".join(problems) +
                             "\nwrite to a new output dir or pass overwrite=True (CLI: --overwrite)")
        drop_unlisted(self.root, index)
        self._check_listed(index)
        return index

    def _check_listed(self, index: dict) -> None:
        """StoreError if a shard the index lists is missing or of the wrong size."""
        for shard in index["shards"]:
            for kind in ("bin", "json"):  # the size check of the store's one integrity rule (no hashing here)
                if shard_file_status(self.root, shard, kind, checksum=False) is not None:
                    raise StoreError(f"{self.root / shard[kind]}: missing or of the wrong size "
                                     f"({shard[f'{kind}_bytes']} bytes expected); check it with "
                                     f"`truthtrace validate {self.root}` or pass overwrite=True")

    def _reset_shard(self) -> None:
        self._bin = None
        self._pos = 0
        self._records: list[dict] = []
        self._stats = _new_stats()
        self._base: dict = {}  # key -> stored body of the shard's first trace

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.root}: the TraceWriter is closed")

    def has(self, trace_id: str) -> bool:
        """True if ``trace_id`` was added, in this session or in a completed shard before."""
        return trace_id in self._ids

    def add(self, trace_id: str, tensors: dict, meta: dict | None = None) -> None:
        """Add one trace: ``tensors`` maps keys to CPU tensors, ``meta`` is a JSON dict.

        The trace is encoded in full before anything is written, so a failure leaves the
        shard as it was. Raises ValueError for bad arguments, StoreError for a duplicate id.
        """
        self._check_open()
        meta = {} if meta is None else meta
        check_trace(trace_id, tensors, meta)
        if self.has(trace_id):
            raise StoreError(f"{self.root}: trace id {trace_id!r} is already stored")
        meta = _jsonable(meta, f"meta of trace {trace_id!r}")
        fresh = self._encoded % REMEASURE == 0  # then every plane is measured again, hints unused
        chunks = self._encode_all(trace_id, tensors, fresh)
        self._encoded += 1
        self._hints.update((key, entry.get("plane_codecs")) for key, _, entry, _ in chunks)
        size = sum(entry["nbytes"] for _, _, entry, _ in chunks)
        if self._records and self._pos + size > self.shard_max_bytes:
            self.flush()
            if any("shared_rows" in entry for _, _, entry, _ in chunks):  # a shard's first trace is stored whole
                chunks = self._encode_all(trace_id, tensors, fresh)
        if not self._records:  # the new shard's base: later traces may share its leading rows
            self._base = {key: body.clone() for key, _, _, body in chunks}  # the caller may reuse its tensors
        self._append(trace_id, meta, [chunk[:3] for chunk in chunks])
        if len(self._records) >= self.shard_max_traces or self._pos >= self.shard_max_bytes:
            self.flush()

    def _encode_all(self, trace_id: str, tensors: dict, fresh: bool) -> list[tuple]:
        """``(key, chunk pieces, entry, stored body)`` of every tensor, on the writer's threads; rows shared
        with the current shard's first trace when the shard has one."""
        return map_chunks(lambda item: self._encode(trace_id, *item, fresh), list(tensors.items()),
                          [t.numel() * t.element_size() for t in tensors.values()], self.threads)

    def _encode(self, trace_id: str, key: str, tensor, fresh: bool) -> tuple[str, list, dict, object]:
        """``(key, chunk pieces, entry, stored body)`` of one tensor; ValueError naming the key and trace."""
        hints = None if fresh else self._hints.get(key)
        base = self._base.get(key) if self._records else None
        try:
            return (key, *encode_pieces(key, tensor, storage_dtype=self._storage["dtype"], codec=self.chunk_codec,
                                        overflow_dtype=self._storage["overflow_dtype"],
                                        level=self.compression_level, hints=hints, base=base))
        except ValueError as err:
            raise ValueError(f"tensors[{key!r}] of trace {trace_id!r}: {err}") from None

    def _append(self, trace_id: str, meta: dict, chunks: list) -> None:
        """Write one encoded trace to the shard temp file; on failure, cut the file back."""
        if self._bin is None:
            name = shard_files(len(self._index["shards"]))[0] + TMP_SUFFIX
            self._bin = open(self.root / name, "wb", buffering=0)
        start, entries = self._pos, {}
        try:
            for key, _, entry in chunks:
                entries[key] = {"offset": self._pos, **entry}
                self._pos += entry["nbytes"]
            write_buffers(self._bin.fileno(), [piece for _, chunk, _ in chunks for piece in chunk])  # one writev
        except BaseException:
            self._bin.seek(start)
            self._bin.truncate()
            self._pos = start
            raise
        self._records.append({"id": trace_id, "meta": meta, "span": [start, self._pos],
                              "tensors": entries})
        self._ids.add(trace_id)
        self._count(trace_id, entries)

    def _count(self, trace_id: str, entries: dict) -> None:
        """Add one trace's chunks to the shard statistics kept in the index."""
        stats = self._stats
        for key, entry in entries.items():
            raw, packed = entry_sizes(entry)
            stats["n_tensors"] += 1
            stats["raw_bytes"] += raw
            stats["packed_bytes"] += packed
            for field, value in (("dtypes", entry["dtype"]), ("layouts", entry["layout"])):
                stats[field][value] = stats[field].get(value, 0) + 1
            if "fallback" in entry:
                stats["fallbacks"].append({"id": trace_id, "key": key, "dtype": entry["dtype"],
                                           **entry["fallback"]})

    def flush(self) -> None:
        """Complete the current shard now: fsync + rename its files, then rewrite ``index.json``.

        If this fails the writer closes; traces of the unfinished shard are not stored
        and ``has()`` will not report them when the store is resumed.
        """
        self._check_open()
        if not self._records:
            return
        try:
            self._commit()
        except BaseException:
            self._abandon()
            raise

    def _commit(self) -> None:
        bin_name, json_name = shard_files(len(self._index["shards"]))
        with open(self.root / (bin_name + TMP_SUFFIX), "rb") as written:
            # the shard's sha256, read back from the page cache while its fsync and the shard document's
            # write wait on the disk (65 MB: 48 ms for hash and fsync against 64 ms one after the other)
            hashing = beside(lambda: sha256_stream(written), max(2, self.threads))
            try:
                os.fsync(self._bin.fileno())
                self._bin.close()
                doc = {"format": SHARD_FORMAT, "format_version": FORMAT_VERSION, "bin": bin_name,
                       "traces": self._records}
                data = dumps(doc)
                write_bytes_atomic(self.root / json_name, data)  # first: it proves the .bin ours if no index comes
            finally:
                wait([hashing])
            bin_sha256 = hashing.result()
        os.replace(self.root / (bin_name + TMP_SUFFIX), self.root / bin_name)
        shard = {"bin": bin_name, "json": json_name, "bin_bytes": self._pos, "json_bytes": len(data),
                 "bin_sha256": bin_sha256, "json_sha256": hashlib.sha256(data).hexdigest(),
                 "compression_level": self.compression_level,
                 "ids": [r["id"] for r in self._records], "stats": self._stats}
        index = {**self._index, "n_traces": self._index["n_traces"] + len(self._records),
                 "shards": [*self._index["shards"], shard]}
        write_bytes_atomic(self.root / INDEX_NAME, dumps(index))
        self._index = index
        self._reset_shard()

    def _abandon(self) -> None:
        """Close without completing the shard, as a crash would (its temp file stays behind)."""
        if self._bin is not None and not self._bin.closed:
            self._bin.close()
        self._closed = True
        self._lockfile.close()

    def close(self) -> None:
        """Flush the last shard and release the store. Safe to call twice."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._abandon()

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # keep what is complete; never hide the original error
            self.close()
        except Exception as err:
            warnings.warn(f"{self.root}: could not flush after {exc_type.__name__}: {err}", stacklevel=2)
