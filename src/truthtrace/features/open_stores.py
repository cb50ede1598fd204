"""Feature stores opened once per process and shared by every reader of the same store.

A :class:`~truthtrace.store.TraceStore` parses each shard's JSON document the first time a record
of that shard is read (~0.25 s per shard of 165 records with 30 graph layers; the embedded model's
store has 14). ``train`` builds a train and a val loader per detector and again a val loader to
calibrate it, so each of ~10 detectors used to parse every shard two or three times. Readers in one
process now share one opened store (and so its parsed documents), as long as the store's
``index.json`` is the same file: a store rewritten in place (new index, new inode or mtime) is
opened afresh. Each forked DataLoader worker opens its own.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from truthtrace.store import TraceStore

KEEP = 2  # stores kept open (e.g. a feature store and a samples store); the least recently used is dropped
_OPEN: OrderedDict[tuple, TraceStore] = OrderedDict()


def _identity(root: Path) -> tuple:
    """What makes two opens of ``root`` the same store: process, path and the index file's identity."""
    try:
        st = (root / "index.json").stat()
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:  # no index: let TraceStore raise its error naming the file
        stamp = None
    return os.getpid(), str(root.resolve()), stamp


def shared_store(root: str | Path) -> TraceStore:
    """The process's open :class:`TraceStore` at ``root`` (opened on first use, reopened when its index changed).

    Raises:
        StoreError: naming the file when ``root`` holds no readable store (as ``TraceStore(root)`` does).
    """
    root = Path(root)
    key = _identity(root)
    store = _OPEN.get(key) if key[2] is not None else None
    if store is None:
        store = TraceStore(root)
        _OPEN[key] = store
        while len(_OPEN) > KEEP:
            _OPEN.popitem(last=False)
    _OPEN.move_to_end(key)
    return store


def forget_stores() -> None:
    """Close the process's shared stores (their parsed shard documents are freed)."""
    _OPEN.clear()
