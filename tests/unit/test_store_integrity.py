"""Corruption is always reported: shard checksums, per-chunk checks, missing and truncated files."""

import json

import pytest
import torch

from synthetic_traces import make_trace
from truthtrace.store import StoreError, TraceStore, TraceWriter


@pytest.fixture
def store_path(tmp_path):
    with TraceWriter(tmp_path, {"model": "tiny"}, shard_max_traces=2) as w:
        for i in range(4):
            w.add(f"q{i}", make_trace(i), {"i": i})
    return tmp_path


def entries(path, shard: int = 0) -> dict:
    doc = json.loads((path / f"shard.{shard:05d}.json").read_text())
    return {r["id"]: r["tensors"] for r in doc["traces"]}


def flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))


def test_intact_store_verifies_clean(store_path):
    assert TraceStore(store_path).verify() == []


def test_flipped_byte_is_named_by_verify_and_raised_by_read(store_path):
    entry = entries(store_path)["q1"]["layers.2.hidden"]
    flip(store_path / "shard.00000.bin", entry["offset"] + entry["nbytes"] // 2)
    store = TraceStore(store_path)
    (problem,) = store.verify()
    assert "shard.00000.bin" in problem and "sha256" in problem
    with pytest.raises(StoreError, match=r"shard\.00000\.bin.*'q1'.*'layers\.2\.hidden'"):
        store.read("q1", "layers.2.hidden")
    with pytest.raises(StoreError, match="shard.00000.bin"):
        next(store.iter_shards(verify=True))
    with pytest.raises(StoreError):
        store.get("q1").tensors()
    assert torch.equal(store.read("q3", "layers.2.hidden"), make_trace(3)["layers.2.hidden"].half())


def test_reading_one_key_touches_only_its_chunk(store_path):
    table = entries(store_path)
    keep = table["q0"]["layers.1.attn"]
    for tensors in table.values():
        for entry in tensors.values():
            if entry is not keep:
                flip(store_path / "shard.00000.bin", entry["offset"] + 2)
    store = TraceStore(store_path)
    assert torch.equal(store.read("q0", "layers.1.attn"), make_trace(0)["layers.1.attn"].half())
    with pytest.raises(StoreError):
        store.read("q0", "layers.0.attn")


def test_corrupt_shard_document_is_named(store_path):
    path = store_path / "shard.00001.json"
    path.write_bytes(path.read_bytes().replace(b'"i":2', b'"i":7'))
    store = TraceStore(store_path)
    assert store.meta("q0") == {"i": 0}  # shard 0 is fine
    with pytest.raises(StoreError, match="shard.00001.json"):
        store.meta("q2")
    assert any("shard.00001.json" in p for p in store.verify())


def test_missing_and_truncated_shards_are_reported(store_path):
    (store_path / "shard.00001.bin").unlink()
    bin0 = store_path / "shard.00000.bin"
    bin0.write_bytes(bin0.read_bytes()[:-10])
    store = TraceStore(store_path)
    problems = store.verify()
    assert len(problems) == 2
    assert any("shard.00001.bin" in p and "missing" in p for p in problems)
    assert any("shard.00000.bin" in p for p in problems)
    with pytest.raises(StoreError, match="shard.00001.bin"):
        store.read("q2", "token_ids")
    last = list(entries(store_path)["q1"])[-1]
    with pytest.raises(StoreError, match="truncated"):
        store.read("q1", last)


def test_resuming_a_store_with_a_missing_shard_refuses(store_path):
    (store_path / "shard.00000.bin").unlink()
    with pytest.raises(StoreError, match="shard.00000.bin"):
        TraceWriter(store_path, {"model": "tiny"})


def test_readers_ignore_temp_files(store_path):
    (store_path / "shard.00002.bin.tmp").write_bytes(b"half a shard")
    store = TraceStore(store_path)
    assert len(store) == 4 and store.verify() == []
