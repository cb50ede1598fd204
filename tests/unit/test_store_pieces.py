"""The write path without joined copies: a chunk's pieces equal its joined bytes (same hash), the store file
is written with one writev per trace (short writes finished), and decoded tensors of every dtype are exact."""

import os

import numpy as np
import pytest
import torch
import xxhash

from truthtrace.dtypes import TENSOR_DTYPES, dtype_name
from truthtrace.fileio import write_buffers
from truthtrace.store import TraceStore, TraceWriter
from truthtrace.store.codec import decode, encode, encode_pieces, storage_cast
from truthtrace.store.planes import V1, V2, V3, V4

SCHEMA = {"kind": "truthtrace.traces", "model": "t"}


def causal(heads=3, n=9, seed=0) -> torch.Tensor:
    """A softmax attention map ``(heads, n, n)`` with exact zeros above the diagonal."""
    scores = torch.randn(heads, n, n, generator=torch.Generator().manual_seed(seed))
    return scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)


def sample(dtype: torch.dtype, seed=0) -> torch.Tensor:
    """A (5, 7) tensor of ``dtype`` with varied values (both signs for signed types)."""
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return (torch.randn(5, 7, generator=g) * 10).to(dtype)
    if dtype == torch.bool:
        return torch.rand(5, 7, generator=g) > 0.5
    low = 0 if dtype == torch.uint8 else -100
    return torch.randint(low, 100, (5, 7), generator=g).to(dtype)


@pytest.mark.parametrize("codec", [V1, V2, V3, V4])
@pytest.mark.parametrize("key,make", [("layers.0.hidden", lambda: torch.randn(300, 16)),
                                      ("layers.0.attn", causal), ("token_ids", lambda: torch.arange(40))])
def test_pieces_are_the_chunk(codec, key, make):
    t = make()
    pieces, entry, _ = encode_pieces(key, t, storage_dtype="float16", overflow_dtype="float32", codec=codec)
    chunk, same = encode(key, t, storage_dtype="float16", overflow_dtype="float32", codec=codec)
    assert b"".join(bytes(p) for p in pieces) == chunk and entry == same
    assert entry["nbytes"] == len(chunk) == sum(entry["planes"])
    if codec == V3:
        assert entry["xxh3_64"] == xxhash.xxh3_64_hexdigest(chunk)


@pytest.mark.parametrize("name", sorted(TENSOR_DTYPES))
def test_every_dtype_decodes_bit_exact_and_writable(name):
    t = sample(TENSOR_DTYPES[name])
    chunk, entry = encode("extra.values", t, storage_dtype="float16", overflow_dtype="float32")
    back = decode(chunk, entry)
    assert back.dtype == t.dtype and back.shape == t.shape
    width = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    assert torch.equal(back.view(width), t.view(width))
    back.view(width)[0, 0] += 1  # a fresh tensor the caller may write to, not a view of the chunk


@pytest.mark.parametrize("storage_dtype", ["float16", "bfloat16", "float32"])
def test_causal_maps_round_trip_through_a_store(tmp_path, storage_dtype):
    maps = {f"layers.{i}.attn": causal(seed=i) for i in range(3)}
    maps["layers.0.hidden"] = torch.randn(9, 16, generator=torch.Generator().manual_seed(7))
    with TraceWriter(tmp_path / "s", SCHEMA, storage_dtype=storage_dtype, shard_max_traces=2) as w:
        for i in range(5):
            w.add(f"t{i}", maps)
    store = TraceStore(tmp_path / "s")
    assert store.verify() == []
    target = TENSOR_DTYPES[storage_dtype]
    for trace in store:
        got = trace.tensors()
        assert all(torch.equal(got[k], v.to(target)) for k, v in maps.items())


def test_write_buffers_many_empty_and_array_buffers(tmp_path):
    buffers = [bytes([i % 251]) * (i % 5) for i in range(3000)]  # > IOV_MAX (1024), many empty
    buffers[10] = np.arange(200, dtype=np.uint8)
    path = tmp_path / "f.bin"
    with open(path, "wb", buffering=0) as f:
        f.write(b"head")
        write_buffers(f.fileno(), buffers)
    assert path.read_bytes() == b"head" + b"".join(bytes(b) for b in buffers)


def test_write_buffers_finishes_a_short_write(tmp_path, monkeypatch):
    real = os.writev
    monkeypatch.setattr(os, "writev", lambda fd, views: real(fd, [bytes(b"".join(views))[:7]]))
    buffers = [b"abcde", b"", b"fghij", b"klmnopq"]
    path = tmp_path / "f.bin"
    with open(path, "wb", buffering=0) as f:
        write_buffers(f.fileno(), buffers)
    assert path.read_bytes() == b"abcdefghijklmnopq"


def test_a_tensor_already_in_the_storage_dtype_is_kept_without_an_overflow_check():
    t = torch.tensor([65504.0, -65504.0, float("inf"), float("nan"), 1.0], dtype=torch.float16)
    stored, fallback = storage_cast("layers.0.hidden", t, "float16", "float32")
    assert stored is t and fallback is None
    chunk, entry = encode("layers.0.hidden", t, storage_dtype="float16", overflow_dtype="float32")
    assert entry["dtype"] == "float16" and "fallback" not in entry
    assert torch.equal(decode(chunk, entry).view(torch.int16), t.view(torch.int16))


@pytest.mark.parametrize("storage_dtype,values", [
    ("float16", [1.0, 57344.0]), ("float16", [-60000.0, 2.0]), ("float16", [65504.0]), ("float16", [65519.0]),
    ("float16", [65520.0]), ("float16", [-70000.0]), ("float16", [float("inf"), 1.0]), ("float16", [float("nan")]),
    ("bfloat16", [3.0e38]), ("bfloat16", [-3.4e38]), ("bfloat16", [1.0, -2.5])])
def test_the_fast_range_test_agrees_with_the_exact_one(storage_dtype, values):
    t = torch.tensor(values + [0.5] * 40, dtype=torch.float32).reshape(-1, 1)
    stored, fallback = storage_cast("layers.0.hidden", t, storage_dtype, "float32")
    _, entry, _ = encode_pieces("layers.0.hidden", t, storage_dtype=storage_dtype, overflow_dtype="float32")
    assert entry["dtype"] == dtype_name(stored.dtype) and entry.get("fallback") == fallback
