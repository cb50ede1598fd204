"""The store's files: names, ``index.json`` and shard documents, atomic writes, checksums, lock.

See ``docs/FORMAT.md`` for the layout. In short::

    path/index.json           written last, atomically, after every shard; lists complete shards
    path/shard.00000.bin      compressed chunks back to back
    path/shard.00000.json     that shard's traces: id, meta, per-key chunk entries
    path/*.tmp                work in progress; readers ignore them, a resuming writer deletes them
    path/.writer.lock         flock'ed by the one writer allowed at a time

A shard exists only once ``index.json`` lists it, with the size and sha256 of both files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows has no fcntl: no cross-process lock there
    fcntl = None

from truthtrace.fileio import check_format, parse_json_object

FORMAT = "truthtrace.traces"
SHARD_FORMAT = "truthtrace.shard"
FORMAT_VERSION = 1
INDEX_NAME = "index.json"
LOCK_NAME = ".writer.lock"
TMP_SUFFIX = ".tmp"
SHARD_RE = re.compile(r"^shard\.\d{5,}\.(bin|json)$")
# only our own temp names: a store may live in a folder holding other people's *.tmp files
# shard.N.bin.tmp (a growing shard) and .NAME.XXXXXXXX.tmp (an atomic write in progress)
TMP_RE = re.compile(r"^\.?(shard\.\d{5,}\.(bin|json)|index\.json)(\.[A-Za-z0-9_]+)?\.tmp$")
_INDEX_FIELDS = ("format", "format_version", "schema", "storage", "n_traces", "shards")
_SHARD_FIELDS = ("bin", "json", "bin_bytes", "json_bytes", "bin_sha256", "json_sha256", "ids", "stats")


class StoreError(Exception):
    """A trace store is missing, corrupt, of another version, or used inconsistently."""


def shard_files(number: int) -> tuple[str, str]:
    """File names ``(bin, json)`` of shard ``number``, e.g. ``shard.00003.bin``."""
    return f"shard.{number:05d}.bin", f"shard.{number:05d}.json"


def dumps(doc: dict) -> bytes:
    """Serialise a manifest document (compact, UTF-8, key order kept)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sha256_bytes(data: bytes | memoryview) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, block: int = 4 << 20) -> str:
    """Hex sha256 of the file at ``path``, read in ``block``-byte pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(block):
            h.update(piece)
    return h.hexdigest()


def shard_file_status(root: Path, shard: dict, kind: str, data: bytes | None = None,
                      checksum: bool = True) -> str | None:
    """The one integrity rule for a shard file: present, of the listed size, with the listed sha256.

    Args:
        root: store directory.
        shard: the shard's entry in ``index.json``.
        kind: "bin" or "json".
        data: the file's bytes when the caller has read them already (no second read).
        checksum: also compare the sha256 (False: presence and size only).
    Returns:
        None when the file is good, else "missing", "size" or "sha256".
    """
    path = root / shard[kind]
    if data is None and not path.is_file():
        return "missing"
    size = len(data) if data is not None else path.stat().st_size
    if size != shard[f"{kind}_bytes"]:
        return "size"
    if checksum:
        digest = sha256_bytes(data) if data is not None else sha256_file(path)
        if digest != shard[f"{kind}_sha256"]:
            return "sha256"
    return None


def parse_json(data: bytes, where: Path) -> dict:
    """Parse a manifest document; StoreError naming ``where`` if it is not a JSON object."""
    return parse_json_object(data, where, StoreError)


def check_version(doc: dict, fmt: str, where: Path) -> None:
    """Raise StoreError naming ``where`` unless ``doc`` is format ``fmt`` at a version we read."""
    check_format(doc, fmt, tuple(range(1, FORMAT_VERSION + 1)), where, "format_version", StoreError)


def new_index(schema: dict, storage: dict) -> dict:
    """An empty index for a store with ``schema`` and ``storage`` settings (dtype, overflow dtype, codec)."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "schema": schema,
            "storage": storage, "n_traces": 0, "shards": []}


def load_index(root: Path) -> dict:
    """Read and validate ``root/index.json``; StoreError naming the file on any problem."""
    path = root / INDEX_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"{path}: missing; {root} is not a trace store (or no shard was completed)") from None
    doc = parse_json(data, path)
    check_version(doc, FORMAT, path)
    missing = [k for k in _INDEX_FIELDS if k not in doc]
    if missing:
        raise StoreError(f"{path}: missing fields {missing}")
    for i, shard in enumerate(doc["shards"]):
        absent = [k for k in _SHARD_FIELDS if k not in shard]
        if absent:
            raise StoreError(f"{path}: shards[{i}] is missing fields {absent}")
    return doc


def schema_diff(stored: dict, given: dict, prefix: str = "") -> list[str]:
    """Differences between two schema dicts as ``"key: stored X, given Y"`` lines.

    Top-level keys named in either dict's ``volatile`` list (e.g. timestamps) are ignored.
    """
    skip = set() if prefix else {"volatile", *stored.get("volatile", []), *given.get("volatile", [])}
    lines = []
    for key in sorted(set(stored) | set(given), key=str):
        if key in skip:
            continue
        a, b = stored.get(key, "<absent>"), given.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            lines += schema_diff(a, b, prefix=f"{prefix}{key}.")
        elif a != b:
            lines.append(f"{prefix}{key}: stored {a!r}, given {b!r}")
    return lines


def shard_path_names(root: Path) -> list[str]:
    """Names in ``root`` matching the store's shard and temp file patterns (not ``index.json``)."""
    if not root.is_dir():
        return []
    return sorted(n for n in os.listdir(root) if SHARD_RE.match(n) or TMP_RE.match(n))


def lock_store(root: Path) -> BinaryIO:
    """Hold an exclusive lock on ``root/.writer.lock`` (released by the OS even on kill -9)."""
    handle = open(root / LOCK_NAME, "a+b")
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise StoreError(f"{root}: another TraceWriter is writing to this store") from None
    return handle


def remove_store(root: Path) -> None:
    """Delete the store files in ``root`` (index, shards, temp files); other files are left alone."""
    index = root / INDEX_NAME
    if index.exists() and parse_json(index.read_bytes(), index).get("format") != FORMAT:
        raise StoreError(f"{index}: not a truthtrace store; refusing to overwrite it")
    for name in [INDEX_NAME, *shard_path_names(root)]:
        (root / name).unlink(missing_ok=True)
