"""TraceStore: read a trace store by id, by key, or shard by shard; verify its checksums.

Reading one tensor costs one seek, one read of its chunk, one check of its hash and one
decompress per zstd-coded byte plane, so every read is checked. ``Trace.tensors()`` decodes a
trace's chunks on several threads. Whole-file sha256 checksums of the
shards are checked by ``verify()`` (and by ``iter_shards(verify=True)``).
"""

from __future__ import annotations

import copy
import mmap
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import torch
import zstandard

from truthtrace.store.codec import decode
from truthtrace.store.index import (
    SHARD_FORMAT,
    StoreError,
    check_shard_doc,
    check_version,
    load_index,
    parse_json,
    sha256_bytes,
    shard_file_status,
)
from truthtrace.store.planes import ChecksumError
from truthtrace.store.stats import store_info
from truthtrace.store.threads import check_threads, map_chunks

_DOC_CACHE = 16  # shard documents kept parsed; each lists every chunk of up to shard_max_traces traces
_BASE_CACHE = 512  # decoded tensors of shards' first traces kept (later traces share their leading rows)


def _weight(entry: dict) -> int:
    """Bytes of a chunk, to balance the decoding threads (0 when the entry does not say)."""
    size = entry.get("nbytes")
    return size if type(size) is int else 0


class Trace:
    """One stored trace: ``.id``, ``.meta``, ``keys()``, and tensors decoded on first ``trace[key]``.

    ``buf`` is ``(bytes, base)`` when the caller already holds the bytes starting at file
    offset ``base`` (a whole shard, or the trace's own span); otherwise chunks are read
    from the shard file on demand.
    """

    def __init__(self, store: "TraceStore", shard: int, record: dict, buf=None):
        self.id: str = record["id"]
        self.meta: dict = copy.deepcopy(record["meta"])
        self._store, self._shard, self._record, self._buf = store, shard, record, buf
        self._cache: dict[str, torch.Tensor] = {}

    def keys(self) -> list[str]:
        """Tensor keys in the order they were added."""
        return list(self._record["tensors"])

    def __contains__(self, key: str) -> bool:
        return key in self._record["tensors"]

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self._cache:
            self._cache[key] = self._store._decode(self._shard, self._record, key, self._buf)
        return self._cache[key]

    def tensors(self) -> dict[str, torch.Tensor]:
        """All tensors of the trace, decoded on the store's threads; reads the trace's byte span in one go."""
        todo = [key for key in self._record["tensors"] if key not in self._cache]
        if self._buf is None and todo:
            start, end = self._record["span"]
            self._buf = (self._store._read_bytes(self._shard, start, end - start), start)
        sizes = [_weight(self._record["tensors"][key]) for key in todo]
        decoded = map_chunks(lambda key: self._store._decode(self._shard, self._record, key, self._buf),
                             todo, sizes, self._store.threads)
        self._cache.update(zip(todo, decoded))
        return {key: self[key] for key in self.keys()}

    def dtype_of(self, key: str) -> str:
        """Stored dtype name of ``key``."""
        return self._store._entry(self._record, key)["dtype"]

    def shape_of(self, key: str) -> tuple[int, ...]:
        """Logical shape of ``key`` (attention maps square)."""
        return tuple(self._store._entry(self._record, key)["shape"])

    def __repr__(self) -> str:
        return f"Trace(id={self.id!r}, keys={len(self._record['tensors'])})"


class TraceStore:
    """Read-only view of the store at ``path`` as listed by its ``index.json`` when opened.

    ``threads`` decode the chunks of a trace side by side in ``Trace.tensors()`` (default:
    the usable CPUs, at most 4; one on 1-2 CPUs). Raises StoreError naming the file when the
    index is missing, corrupt or of an unsupported version. Shards completed by a writer after opening are not seen.
    """

    def __init__(self, path, threads: int | None = None):
        self.root = Path(path)
        self.threads = check_threads(threads)
        self._index = load_index(self.root)
        self._where: dict[str, tuple[int, int]] = {}
        for n, shard in enumerate(self._index["shards"]):
            for pos, trace_id in enumerate(shard["ids"]):
                if trace_id in self._where:
                    raise StoreError(f"{self.root / shard['json']}: trace id {trace_id!r} is listed twice")
                self._where[trace_id] = (n, pos)
        self._docs: OrderedDict[int, dict] = OrderedDict()
        self._bases: OrderedDict[tuple[int, str], torch.Tensor] = OrderedDict()
        self._bases_lock = threading.Lock()  # Trace.tensors() decodes on several threads

    @property
    def schema(self) -> dict:
        """The schema dict the writer was given (model id, layers, heads, ...)."""
        return copy.deepcopy(self._index["schema"])

    @property
    def format_version(self) -> int:
        return self._index["format_version"]

    @property
    def storage(self) -> dict:
        """Storage settings: ``dtype``, ``overflow_dtype``, ``codec``."""
        return dict(self._index["storage"])

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, trace_id: str) -> bool:
        return trace_id in self._where

    def ids(self) -> list[str]:
        """All trace ids in insertion order."""
        return list(self._where)

    def shard_ids(self) -> list[list[str]]:
        """Trace ids shard by shard, in store order (the unit a streaming reader splits among workers)."""
        return [list(shard["ids"]) for shard in self._index["shards"]]

    def entries(self) -> Iterator[tuple[str, str, dict]]:
        """``(trace_id, key, index entry)`` of every stored tensor, shard by shard (no tensor is decoded).

        An entry holds ``shape``, ``dtype``, ``offset`` and ``nbytes`` among others (``docs/FORMAT.md``).
        """
        for n in range(len(self._index["shards"])):
            for record in self._doc(n)["traces"]:
                for key, entry in record["tensors"].items():
                    yield record["id"], key, entry

    def _doc(self, n: int) -> dict:
        """Shard ``n``'s document, checked against the index's sha256 and cached."""
        if n in self._docs:
            self._docs.move_to_end(n)
            return self._docs[n]
        shard = self._index["shards"][n]
        path = self.root / shard["json"]
        try:
            data = path.read_bytes()
        except OSError as err:
            raise StoreError(f"{path}: cannot read shard document ({err.strerror})") from None
        if sha256_bytes(data) != shard["json_sha256"]:
            raise StoreError(f"{path}: sha256 mismatch, the shard document is corrupt")
        doc = parse_json(data, path)
        check_version(doc, SHARD_FORMAT, path)
        check_shard_doc(doc, path)
        if [r["id"] for r in doc["traces"]] != shard["ids"]:
            raise StoreError(f"{path}: trace ids differ from those listed in index.json")
        self._docs[n] = doc
        if len(self._docs) > _DOC_CACHE:
            self._docs.popitem(last=False)
        return doc

    def _locate(self, trace_id: str) -> tuple[int, dict]:
        """``(shard number, record)`` of ``trace_id``; KeyError if absent."""
        if trace_id not in self._where:
            raise KeyError(f"trace id {trace_id!r} is not in {self.root}")
        n, pos = self._where[trace_id]
        return n, self._doc(n)["traces"][pos]

    def _entry(self, record: dict, key: str) -> dict:
        if key not in record["tensors"]:
            raise KeyError(f"trace {record['id']!r} has no tensor {key!r}; it has {list(record['tensors'])}")
        return record["tensors"][key]

    def _read_bytes(self, n: int, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of shard ``n``'s bin file: one open, one seek, one read."""
        path = self.root / self._index["shards"][n]["bin"]
        try:
            with open(path, "rb", buffering=0) as f:
                f.seek(offset)
                data = f.read(size)
        except OSError as err:
            raise StoreError(f"{path}: cannot read ({err.strerror})") from None
        if len(data) != size:
            raise StoreError(f"{path}: truncated (wanted {size} bytes at offset {offset})")
        return data

    def _map(self, n: int) -> mmap.mmap | bytes:
        """Shard ``n``'s bin file mapped read-only (zero-copy: ~1.4x faster than reading it).

        Listed shards are never rewritten; the size is checked first because touching a
        mapped page past the end of a truncated file kills the process (SIGBUS).
        """
        shard = self._index["shards"][n]
        path = self.root / shard["bin"]
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size != shard["bin_bytes"]:
                    raise StoreError(f"{path}: {size} bytes, index.json says {shard['bin_bytes']}")
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        except OSError as err:
            raise StoreError(f"{path}: cannot read ({err.strerror})") from None

    def _chunk(self, n: int, entry: dict, buf=None) -> bytes | memoryview:
        """The bytes of one chunk of shard ``n``: a view of ``buf`` when it holds them, else read from the file."""
        if buf is not None:
            data, start = buf
            lo = entry["offset"] - start
            if lo >= 0 and lo + entry["nbytes"] <= len(data):
                return memoryview(data)[lo:lo + entry["nbytes"]]
        return self._read_bytes(n, entry["offset"], entry["nbytes"])

    def _base_body(self, n: int, key: str, buf=None) -> torch.Tensor:
        """The packed body of ``key`` in shard ``n``'s first trace, which later chunks share rows with (cached)."""
        with self._bases_lock:
            if (n, key) in self._bases:
                self._bases.move_to_end((n, key))
                return self._bases[n, key]
        first = self._doc(n)["traces"][0]
        entry = self._entry(first, key)
        if entry.get("shared_rows"):
            raise ValueError(f"the shard's first trace {first['id']!r} itself shares rows")
        body = decode(self._chunk(n, entry, buf), entry, unpack=False)
        with self._bases_lock:
            self._bases[n, key] = body
            while len(self._bases) > _BASE_CACHE:
                self._bases.popitem(last=False)
        return body

    def _decode(self, n: int, record: dict, key: str, buf=None, unpack: bool = True) -> torch.Tensor:
        """Decode ``record``'s tensor ``key``, from ``buf`` if given; StoreError on corrupt bytes."""
        entry = self._entry(record, key)
        try:
            base = self._base_body(n, key, buf) if entry.get("shared_rows") else None
            return decode(self._chunk(n, entry, buf), entry, unpack=unpack, base=base)
        except (zstandard.ZstdError, ChecksumError, ValueError, RuntimeError, TypeError, KeyError) as err:
            path = self.root / self._index["shards"][n]["bin"]
            raise StoreError(f"{path}: trace {record['id']!r} key {key!r}: corrupt chunk ({err})") from None

    def read(self, trace_id: str, key: str, unpack: bool = True) -> torch.Tensor:
        """One tensor, in its stored dtype and logical shape (``unpack=False`` keeps a packed
        lower triangle ``(..., T*(T+1)/2)``). KeyError for unknown id or key, StoreError if corrupt."""
        n, record = self._locate(trace_id)
        return self._decode(n, record, key, unpack=unpack)

    def get(self, trace_id: str) -> Trace:
        """A lazy Trace for ``trace_id`` (KeyError if absent)."""
        n, record = self._locate(trace_id)
        return Trace(self, n, record)

    def meta(self, trace_id: str) -> dict:
        """The meta dict of ``trace_id``, without decoding tensors."""
        return copy.deepcopy(self._locate(trace_id)[1]["meta"])

    def metas(self) -> Iterator[tuple[str, dict]]:
        """``(id, meta)`` of every trace in insertion order, without decoding tensors."""
        for n in range(len(self._index["shards"])):
            for record in self._doc(n)["traces"]:
                yield record["id"], copy.deepcopy(record["meta"])

    def keys(self, trace_id: str) -> list[str]:
        """Tensor keys of ``trace_id`` in the order they were added."""
        return list(self._locate(trace_id)[1]["tensors"])

    def dtype_of(self, trace_id: str, key: str) -> str:
        """Stored dtype name of one tensor, e.g. ``"float16"`` (``"float32"`` after an overflow fallback)."""
        return self._entry(self._locate(trace_id)[1], key)["dtype"]

    def shape_of(self, trace_id: str, key: str) -> tuple[int, ...]:
        """Logical shape of one tensor, e.g. ``(H, T, T)`` for an attention map."""
        return tuple(self._entry(self._locate(trace_id)[1], key)["shape"])

    def iter_shards(self, verify: bool = False) -> Iterator[list[Trace]]:
        """Traces shard by shard, each shard's bin file mapped once; ``verify`` checks its sha256 first."""
        for n, shard in enumerate(self._index["shards"]):
            records = self._doc(n)["traces"]
            data = self._map(n)
            if verify and sha256_bytes(data) != shard["bin_sha256"]:
                raise StoreError(f"{self.root / shard['bin']}: sha256 mismatch, the shard is corrupt")
            yield [Trace(self, n, record, (data, 0)) for record in records]

    def __iter__(self) -> Iterator[Trace]:
        for traces in self.iter_shards():
            yield from traces

    def verify(self) -> list[str]:
        """Check every shard file's size and sha256; one message per bad or missing file, [] if all good.

        A quick check for scripts; ``truthtrace validate`` applies the same rule (:func:`shard_file_status`)
        and then decodes and checks every tensor.
        """
        problems = []
        for shard in self._index["shards"]:
            for kind in ("json", "bin"):
                path, status = self.root / shard[kind], shard_file_status(self.root, shard, kind)
                if status == "missing":
                    problems.append(f"{path}: missing")
                elif status == "size":
                    problems.append(f"{path}: {path.stat().st_size} bytes, index.json says "
                                    f"{shard[f'{kind}_bytes']}")
                elif status == "sha256":
                    problems.append(f"{path}: sha256 mismatch, the file is corrupt")
        return problems

    def info(self) -> dict:
        """Sizes and counts from the index alone (no shard is read): see :func:`truthtrace.store.stats.store_info`."""
        return store_info(self.root, self._index)
