"""Crash and resume: kill -9 mid-shard, an abandoned writer, a crash between shard and index."""

import gc
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from synthetic_traces import make_trace
from truthtrace.store import StoreError, TraceStore, TraceWriter
from truthtrace.store import writer as writer_module

SCHEMA = {"model": "tiny", "n_layers": 2}
IDS = [f"q{i}" for i in range(7)]


def finish(path) -> TraceStore:
    """Resume like an extractor does: skip what ``has()`` knows, add the rest; check the result."""
    with TraceWriter(path, SCHEMA, shard_max_traces=2) as w:
        for i, tid in enumerate(IDS):
            if not w.has(tid):
                w.add(tid, make_trace(i), {"i": i})
    store = TraceStore(path)
    assert store.ids() == IDS  # every id exactly once, in order
    assert store.verify() == []
    for i, tid in enumerate(IDS):
        assert torch.equal(store.read(tid, "layers.2.hidden"), make_trace(i)["layers.2.hidden"].half())
        assert store.meta(tid) == {"i": i}
    assert not list(path.glob("*.tmp"))
    return store


CHILD = textwrap.dedent("""
    import sys, torch
    sys.path[:0] = {paths!r}
    from test_store_resume import IDS, SCHEMA, make_trace
    from truthtrace.store import TraceWriter
    w = TraceWriter(sys.argv[1], SCHEMA, shard_max_traces=2)
    for i, tid in enumerate(IDS):
        w.add(tid, make_trace(i), {{"i": i}})
        print("added", i, flush=True)
        if i == 4:
            sys.stdin.readline()  # wait here, mid-shard, to be killed
""")


def test_resume_after_kill_9_mid_shard(tmp_path):
    here = os.path.dirname(__file__)
    code = CHILD.format(paths=[here, *sys.path])
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        for line in proc.stdout:
            if line.strip() == "added 4":
                break
        else:
            pytest.fail(f"writer subprocess died: {proc.stderr.read()}")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert (tmp_path / "shard.00002.bin.tmp").exists()  # q4 was half a shard when killed
    assert TraceStore(tmp_path).ids() == IDS[:4]
    with TraceWriter(tmp_path, SCHEMA, shard_max_traces=2) as w:
        assert [w.has(t) for t in IDS] == [True] * 4 + [False] * 3
        assert not (tmp_path / "shard.00002.bin.tmp").exists()
    finish(tmp_path)


def test_resume_after_abandoned_writer(tmp_path):
    w = TraceWriter(tmp_path, SCHEMA, shard_max_traces=2)
    for i, tid in enumerate(IDS[:5]):
        w.add(tid, make_trace(i), {"i": i})
    w._bin.flush()  # a crash after some bytes of q4 reached the temp file
    del w  # no close(), no __exit__: as if the process died
    gc.collect()
    assert list(tmp_path.glob("*.tmp"))
    assert TraceStore(tmp_path).ids() == IDS[:4]
    finish(tmp_path)


def test_crash_between_shard_rename_and_index_write(tmp_path, monkeypatch):
    real = writer_module.write_bytes_atomic
    calls = {"n": 0}

    def failing(path, data):
        if path.name == "index.json" and calls["n"] >= 1:
            raise OSError("disk full")
        calls["n"] += path.name == "index.json"
        real(path, data)

    monkeypatch.setattr(writer_module, "write_bytes_atomic", failing)
    w = TraceWriter(tmp_path, SCHEMA, shard_max_traces=2)
    w.add("q0", make_trace(0), {"i": 0})
    with pytest.raises(OSError, match="disk full"):
        w.add("q1", make_trace(1), {"i": 1})  # fills shard 0: its files land, the index does not
    assert (tmp_path / "shard.00000.bin").exists() and TraceStore(tmp_path).ids() == []
    with pytest.raises(StoreError, match="closed"):
        w.add("q2", make_trace(2), {})
    monkeypatch.setattr(writer_module, "write_bytes_atomic", real)
    with TraceWriter(tmp_path, SCHEMA, shard_max_traces=2) as w2:
        assert not w2.has("q0") and not (tmp_path / "shard.00000.bin").exists()  # orphan removed
    finish(tmp_path)


def test_a_lost_index_never_deletes_committed_shards(tmp_path):
    """index.json is written before any shard, so shards without it are data: refuse, delete nothing."""
    path = tmp_path / "s"
    finish(path)
    (path / "index.json").unlink()
    before = sorted(p.name for p in path.iterdir())
    with pytest.raises(StoreError, match=r"index.json is missing but 8 shard files are here.*truthtrace validate"):
        TraceWriter(path, SCHEMA, shard_max_traces=2)
    assert sorted(p.name for p in path.iterdir()) == before  # nothing deleted
    with TraceWriter(path, SCHEMA, shard_max_traces=2, overwrite=True) as w:  # starting over is explicit
        w.add("q0", make_trace(0), {"i": 0})
    assert TraceStore(path).ids() == ["q0"]


def test_only_temp_files_of_an_unfinished_start_are_cleaned(tmp_path):
    path = tmp_path / "s"
    path.mkdir()
    (path / "shard.00000.bin.tmp").write_bytes(b"partial")
    with TraceWriter(path, SCHEMA) as w:
        w.add("q0", make_trace(0), {"i": 0})
    assert TraceStore(path).ids() == ["q0"] and not list(path.glob("*.tmp"))
