"""The store's files: names, ``index.json`` and shard documents, atomic writes, checksums, lock.

See ``docs/FORMAT.md`` for the layout. In short::

    path/index.json           written last, atomically, after every shard; lists complete shards
    path/shard.00000.bin      compressed chunks back to back
    path/shard.00000.json     that shard's traces: id, meta, per-key chunk entries
    path/*.tmp                work in progress; readers ignore them, a resuming writer deletes them
    path/.writer.lock         flock'ed by the one writer allowed at a time

A shard exists only once ``index.json`` lists it, with the size and sha256 of both files.
Readers check the type of every field they use (:func:`index_problems`, :func:`shard_problems`,
:func:`record_problems`) so a hand-edited or corrupt manifest is a StoreError naming the file and
field, never a TypeError deep inside a command.
"""

from __future__ import annotations

import hashlib
import json
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
_INDEX_TYPES = {"schema": dict, "storage": dict, "n_traces": int, "shards": list}
_SHARD_TYPES = {"bin": str, "json": str, "bin_bytes": int, "json_bytes": int, "bin_sha256": str, "json_sha256": str,
                "ids": list, "stats": dict}
_RECORD_TYPES = {"id": str, "meta": dict, "tensors": dict, "span": list}
_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an int >= 0"}


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


def sha256_stream(f: BinaryIO, block: int = 4 << 20) -> str:
    """Hex sha256 of what is left to read in binary file ``f``, read in ``block``-byte pieces into one buffer."""
    h, buf = hashlib.sha256(), bytearray(block)
    view = memoryview(buf)
    while n := f.readinto(buf):
        h.update(view[:n])
    return h.hexdigest()


def sha256_file(path: Path, block: int = 4 << 20) -> str:
    """Hex sha256 of the file at ``path``, read in ``block``-byte pieces."""
    with open(path, "rb") as f:
        return sha256_stream(f, block)


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


def load_index(root: Path, strict: bool = True) -> dict:
    """Read and check ``root/index.json``; StoreError naming the file on any problem.

    Args:
        root: store directory.
        strict: also refuse fields of the wrong type (:func:`index_problems`, :func:`shard_problems`);
            ``truthtrace validate`` reads with False and reports each of them instead.
    """
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
    if not isinstance(doc["shards"], list):
        raise StoreError(f"{path}: {type_problem(doc['shards'], list, 'shards')}")
    problems = index_problems(doc) + [p for i, shard in enumerate(doc["shards"]) for p in shard_problems(shard, i)]
    if strict and problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise StoreError(f"{path}: {problems[0]}{more}; `truthtrace validate {root}` lists every problem")
    return doc


def type_problem(value, expected: type, name: str) -> str | None:
    """``"field 'name' is 'abc', expected an int >= 0"`` when ``value`` is not of the JSON type ``expected``."""
    fits = isinstance(value, expected) and not isinstance(value, bool)
    if fits and expected is int:
        fits = value >= 0
    return None if fits else f"field {name!r} is {repr(value)[:40]}, expected {_TYPE_NAMES[expected]}"


def index_problems(doc: dict) -> list[str]:
    """The top-level fields of a parsed ``index.json`` that are of the wrong type ([] when all are sound)."""
    return [p for name, kind in _INDEX_TYPES.items() if (p := type_problem(doc.get(name), kind, name))]


def shard_problems(shard, i: int) -> list[str]:
    """Why entry ``shards[i]`` of ``index.json`` cannot be used ([] when it can).

    An entry must be an object with every shard field of the right type, string ids, and file names
    of the form ``shard.NNNNN.bin/json`` (so no name can lead outside the store directory).
    """
    if not isinstance(shard, dict):
        return [f"shards[{i}] is {repr(shard)[:40]}, expected an object"]
    absent = [k for k in _SHARD_TYPES if k not in shard]
    if absent:
        return [f"shards[{i}] is missing fields {absent}"]
    out = [p for name, kind in _SHARD_TYPES.items() if (p := type_problem(shard[name], kind, f"shards[{i}].{name}"))]
    if isinstance(shard["ids"], list) and not all(isinstance(t, str) for t in shard["ids"]):
        out.append(f"field 'shards[{i}].ids' holds ids that are not strings")
    for kind in ("bin", "json"):
        name = shard[kind]
        if isinstance(name, str) and not (SHARD_RE.match(name) and name.endswith(f".{kind}")):
            out.append(f"field 'shards[{i}].{kind}' is {name!r}, not a shard file name like shard.00000.{kind}")
    return out


def record_problems(record) -> list[str]:
    """Why one trace record of a shard document cannot be read: missing fields or fields of the wrong type."""
    if not isinstance(record, dict):
        return [f"the record is {repr(record)[:40]}, expected an object"]
    out = [f"missing field {name!r}" if name not in record else type_problem(record[name], kind, name)
           for name, kind in _RECORD_TYPES.items()]
    out = [p for p in out if p]
    if isinstance(record.get("tensors"), dict):
        bad = [key for key, entry in record["tensors"].items() if not isinstance(entry, dict)]
        if bad:
            out.append(f"field 'tensors' holds entries that are not objects: {bad[:3]}")
    span = record.get("span")
    if isinstance(span, list) and not (len(span) == 2 and all(type(v) is int and v >= 0 for v in span)
                                       and span[0] <= span[1]):
        out.append(f"field 'span' is {repr(span)[:40]}, expected [start, end] byte offsets")
    return out


def check_shard_doc(doc: dict, where: Path) -> None:
    """StoreError naming ``where`` unless shard document ``doc`` holds a list of sound trace records."""
    if not isinstance(doc.get("traces"), list):
        raise StoreError(f"{where}: {type_problem(doc.get('traces'), list, 'traces')}")
    for i, record in enumerate(doc["traces"]):
        problems = record_problems(record)
        if problems:
            raise StoreError(f"{where}: traces[{i}]: {problems[0]}")


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

