"""The result cache of the inference engine: a memory LRU in front of one SQLite file.

Values are JSON (the answer, its scores) and tensors stored as safetensors bytes, never pickles
(``diskcache`` pickles its values). Every row carries a sha256 of its content and the cache
format; a row that fails either check (corrupted, or written by something else) is deleted,
counted as ``corrupt`` and reported as a miss, so the caller recomputes it. The file is opened
in WAL mode with a busy timeout, so several processes can share it. A size limit evicts the
least recently used rows; hit, miss, eviction and corrupt counts persist in the file.

The key (:func:`cache_key`) is a sha256 of a canonical JSON of everything that decides a result:
the model's fingerprint, the tokenizer and chat template, the prompt token ids, the decoding
parameters and seed, the detectors' ids and versions, and the truthtrace version.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from truthtrace.fileio import parse_json_object

CACHE_FORMAT = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, format INTEGER NOT NULL, value TEXT NOT NULL,
    tensors BLOB NOT NULL, checksum TEXT NOT NULL, bytes INTEGER NOT NULL, created REAL NOT NULL, used REAL NOT NULL);
CREATE INDEX IF NOT EXISTS results_used ON results(used);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
COUNTERS = ("hits", "misses", "evictions", "corrupt")


def cache_key(parts: dict) -> str:
    """sha256 hex of the canonical JSON of ``parts`` (sorted keys; lists of token ids as they are)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _checksum(key: str, value: str, blob: bytes) -> str:
    h = hashlib.sha256(f"{CACHE_FORMAT}\0{key}\0{value}\0".encode())
    h.update(blob)
    return h.hexdigest()


class ResultCache:
    """Memory LRU of ``memory_items`` results in front of the SQLite file at ``path``.

    Args:
        path: the SQLite file (created with its folder), or None for memory only.
        max_bytes: size limit of the stored rows; least recently used rows are evicted beyond it.
        memory_items: results kept in memory (0: none).

    Raises:
        ValueError: a bad limit, or ``path`` is not a truthtrace cache (names the file).
    """

    def __init__(self, path: str | Path | None, max_bytes: int = 2 * 1024**3, memory_items: int = 256):
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
        if not isinstance(memory_items, int) or memory_items < 0:
            raise ValueError(f"memory_items must be an int >= 0, got {memory_items!r}")
        self.path, self.max_bytes, self.memory_items = (Path(path) if path else None), max_bytes, memory_items
        self.memory: OrderedDict[str, tuple[dict, dict]] = OrderedDict()
        self.memory_hits, self.lock, self.db = 0, threading.Lock(), None
        if self.path is not None:
            self.db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise ValueError(f"{self.path}: not a truthtrace cache ({err}); pick another cache path "
                             "or delete the file") from None
        return db

    def get(self, key: str) -> tuple[dict, dict[str, torch.Tensor]] | None:
        """``(value, tensors)`` stored under ``key``, or None (a miss, also for a corrupt row, which is deleted)."""
        with self.lock:
            if key in self.memory:
                self.memory.move_to_end(key)
                self.memory_hits += 1
                self._count("hits")
                return self.memory[key]
            found = self._read(key) if self.db is not None else None
            self._count("hits" if found else "misses")
            if found:
                self._remember(key, found)
            return found

    def _read(self, key: str) -> tuple[dict, dict] | None:
        row = self.db.execute("SELECT format, value, tensors, checksum FROM results WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        fmt, value, blob, checksum = row
        try:
            if fmt != CACHE_FORMAT or checksum != _checksum(key, value, blob):
                raise ValueError("checksum or format mismatch")
            found = parse_json_object(value, f"{self.path} row {key[:12]}"), load_safetensors(blob) if blob else {}
        except Exception:  # a corrupted or foreign row is never returned: drop it, the caller recomputes
            self.db.execute("DELETE FROM results WHERE key = ?", (key,))
            self._count("corrupt")
            return None
        self.db.execute("UPDATE results SET used = ? WHERE key = ?", (time.time(), key))
        return found

    def put(self, key: str, value: dict, tensors: dict[str, torch.Tensor] | None = None) -> None:
        """Store ``value`` (JSON-able dict) and ``tensors`` (name -> tensor of any shape) under ``key``."""
        tensors = {k: t.detach().cpu().contiguous() for k, t in (tensors or {}).items()}
        text = json.dumps(value, sort_keys=True)
        blob = save_safetensors(tensors) if tensors else b""
        with self.lock:
            self._remember(key, (parse_json_object(text, "cache value"), tensors))
            if self.db is None:
                return
            now, checksum = time.time(), _checksum(key, text, blob)
            self.db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (key, CACHE_FORMAT, text, blob, checksum, len(text) + len(blob), now, now))
            self._evict()

    def _remember(self, key: str, found: tuple[dict, dict]) -> None:
        if self.memory_items:
            self.memory[key] = found
            self.memory.move_to_end(key)
            while len(self.memory) > self.memory_items:
                self.memory.popitem(last=False)

    def _evict(self) -> None:
        """Delete least recently used rows until the stored bytes fit ``max_bytes``."""
        total = self.db.execute("SELECT COALESCE(SUM(bytes), 0) FROM results").fetchone()[0]
        while total > self.max_bytes:
            key, size = self.db.execute("SELECT key, bytes FROM results ORDER BY used LIMIT 1").fetchone()
            self.db.execute("DELETE FROM results WHERE key = ?", (key,))
            self.memory.pop(key, None)
            self._count("evictions")
            total -= size

    def _count(self, name: str) -> None:
        if self.db is not None:
            self.db.execute("INSERT INTO counters VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
                            (name,))

    def stats(self) -> dict:
        """rows, bytes, max_bytes, hits, misses, evictions, corrupt (persisted), memory_items and memory_hits."""
        with self.lock:
            out = {"path": str(self.path) if self.path else None, "rows": 0, "bytes": 0, "max_bytes": self.max_bytes,
                   **dict.fromkeys(COUNTERS, 0), "memory_items": len(self.memory), "memory_hits": self.memory_hits}
            if self.db is not None:
                out["rows"], out["bytes"] = self.db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM results").fetchone()
                out.update(dict(self.db.execute("SELECT name, value FROM counters").fetchall()))
            return out

    def clear(self) -> int:
        """Delete every row and reset the counters; returns the number of rows deleted."""
        with self.lock:
            self.memory.clear()
            if self.db is None:
                return 0
            n = self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            self.db.execute("DELETE FROM results")
            self.db.execute("DELETE FROM counters")
            self.db.execute("VACUUM")
            return n

    def close(self) -> None:
        """Close the SQLite connection (the cache can no longer read the file)."""
        if self.db is not None:
            self.db.close()
            self.db = None
