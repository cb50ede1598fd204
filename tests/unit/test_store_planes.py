"""The zstd-planes-2/-3 chunk codecs: each byte plane zstd or raw as pays, a CRC-32 over raw planes (v2) or an
xxh3-64 over the chunk (v3), writer hints, threaded encode/decode, and old (v1, v2) stores still read bit for bit."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import zstandard
from safetensors.torch import load_file

from truthtrace.store import StoreError, TraceStore, TraceWriter
from truthtrace.store.codec import decode, encode
from truthtrace.store.planes import REMEASURE, V1, V2, V3, V4, ChecksumError, code_plane, join_planes, split_planes
from truthtrace.store.threads import check_threads, map_chunks

DATA = Path(__file__).parent / "data"
SCHEMA = {"kind": "truthtrace.traces", "model": "t", "n_layers": 2, "n_heads": 2, "d_model": 8}


def hidden(n=4096, seed=0):
    return torch.randn(n, 64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("codec", [V2, V3, V4])
def test_fp16_mantissa_plane_is_raw_and_exponent_plane_is_zstd(codec):
    chunk, entry = encode("layers.0.hidden", hidden(), storage_dtype="float16", overflow_dtype="float32",
                          codec=codec)
    assert entry["codec"] == codec and entry["plane_codecs"] == ["raw", "zstd"]
    assert ("crc32" in entry, "xxh3_64" in entry) == ((True, False) if codec == V2 else (False, True))
    n = hidden().numel()
    assert entry["planes"][0] == n and entry["planes"][1] < 0.8 * n  # exponent byte: ~0.7 of its size
    assert torch.equal(decode(chunk, entry), hidden().half())


def test_constant_planes_compress_and_random_bytes_stay_raw():
    zeros = np.zeros(20_000, dtype=np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8)
    assert code_plane(zeros, 1)[1] == "zstd" and len(code_plane(zeros, 1)[0]) < 100
    stored, how = code_plane(noise, 1)
    assert how == "raw" and stored is noise
    assert code_plane(zeros, 1, hint="raw")[1] == "raw"  # a hint skips the try
    assert code_plane(noise, 1, hint="zstd")[1] == "raw"  # a wrong hint still never stores a frame that costs


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64,
                                   torch.uint8])
def test_split_and_join_planes_are_inverse(dtype):
    t = (torch.randn(333, generator=torch.Generator().manual_seed(1)) * 1000).to(dtype)
    planes = split_planes(t)
    assert len(planes) == t.element_size() and all(p.size == t.numel() for p in planes)
    back = torch.from_numpy(join_planes(planes).reshape(-1)).view(dtype)
    assert torch.equal(back.view(torch.uint8), t.view(torch.uint8))


@pytest.mark.parametrize("codec", [V1, V2, V3, V4])
@pytest.mark.parametrize("where", ["raw", "zstd frame header", "zstd frame body", "zstd frame end"])
def test_a_flipped_bit_in_every_plane_kind_is_caught(codec, where):
    t = hidden(1024)
    chunk, entry = encode("layers.0.hidden", t, storage_dtype="float16", overflow_dtype="float32", codec=codec)
    raw_size = entry["planes"][0]
    if where == "raw" and codec == V1:
        pytest.skip("v1 has no raw planes")
    start = 0 if codec == V1 else raw_size  # v2/v3: plane 0 (mantissa) is raw, plane 1 the zstd frame
    frame = entry["planes"][1 if codec != V1 else 0]
    pos = {"raw": 10, "zstd frame header": start + 5, "zstd frame body": start + frame // 2,
           "zstd frame end": start + frame - 1}[where]
    bad = bytearray(chunk)
    bad[pos] ^= 0x01
    errors = (ChecksumError,) if codec in (V3, V4) else (ChecksumError, zstandard.ZstdError, ValueError)
    with pytest.raises(errors):
        decode(bytes(bad), entry)


def test_v3_v4_hash_is_checked_before_decoding_and_frames_carry_no_checksum():
    chunk, entry = encode("layers.0.hidden", hidden(1024), storage_dtype="float16", overflow_dtype="float32")
    assert entry["codec"] == V4 and len(entry["xxh3_64"]) == 16
    frame = memoryview(chunk)[entry["planes"][0]:]
    assert not zstandard.get_frame_parameters(frame).has_checksum  # the chunk hash covers it
    with pytest.raises(ChecksumError):
        decode(chunk, {**entry, "xxh3_64": "0" * 16})
    with pytest.raises(ValueError, match="do not fit"):
        decode(chunk + b"\0", {**entry, "xxh3_64": __import__("xxhash").xxh3_64_hexdigest(chunk + b"\0")})


def test_v1_chunks_are_still_written_on_request_and_read():
    chunk, entry = encode("layers.0.hidden", hidden(), storage_dtype="float16", overflow_dtype="float32", codec=V1)
    assert entry["codec"] == V1 and "plane_codecs" not in entry
    assert torch.equal(decode(chunk, entry), hidden().half())
    with pytest.raises(ValueError, match="unknown chunk codec"):
        encode("layers.0.hidden", hidden(), storage_dtype="float16", overflow_dtype="float32", codec="lz4")


@pytest.mark.parametrize("version, codec", [("v1", V1), ("v2", V2), ("v3", V3)])
def test_old_stores_read_bit_for_bit(tmp_path, version, codec):
    store_dir = tmp_path / f"store_{version}"
    shutil.copytree(DATA / f"store_{version}", store_dir)
    expected = load_file(str(DATA / f"store_{version}_expected.safetensors"))
    store = TraceStore(store_dir)
    assert {e["codec"] for _, _, e in store.entries()} == {codec}
    if codec in (V2, V3):  # the fixture holds raw planes (under a CRC in v2) and zstd ones
        assert {c for _, _, e in store.entries() for c in e["plane_codecs"]} == {"raw", "zstd"}
    assert store.verify() == []
    for name, want in expected.items():
        tid, key = name.split("/", 1)
        got = store.read(tid, key)
        assert got.dtype == want.dtype and torch.equal(got.contiguous().view(torch.uint8), want.view(torch.uint8))
    assert {f"{t.id}/{k}" for t in store for k in t.tensors()} == set(expected)


def traces(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {f"q{i}": {"layers.0.hidden": torch.randn(300, 8, generator=g),
                      "layers.0.attn": torch.rand(2, 9, 9, generator=g).tril(),
                      "token_ids": torch.randint(0, 9000, (9,), generator=g)} for i in range(n)}


@pytest.mark.parametrize("threads", [1, 3])
def test_writer_hints_and_threads_round_trip(tmp_path, threads):
    data = traces(REMEASURE + 3)
    with TraceWriter(tmp_path, SCHEMA, threads=threads) as w:
        for tid, t in data.items():
            w.add(tid, t, {})
    store = TraceStore(tmp_path, threads=threads)
    assert store.verify() == []
    for trace in store:
        got = trace.tensors()
        for key, want in data[trace.id].items():
            want = want.half() if key.startswith("layers.") else want
            assert torch.equal(got[key], want), (trace.id, key)
    codecs = {e["codec"] for _, _, e in store.entries()}
    assert codecs == {V4}


@pytest.mark.parametrize("codec", [V1, V2])
def test_old_writer_options_write_a_store_old_readers_know(tmp_path, codec):
    with TraceWriter(tmp_path, SCHEMA, chunk_codec=codec) as w:
        w.add("a", traces(1)["q0"], {})
    assert {e["codec"] for _, _, e in TraceStore(tmp_path).entries()} == {codec}
    with pytest.raises(ValueError, match="chunk_codec"):
        TraceWriter(tmp_path / "x", SCHEMA, chunk_codec="gzip")


def test_corrupt_raw_plane_in_a_store_names_file_trace_and_key(tmp_path):
    with TraceWriter(tmp_path, SCHEMA) as w:
        w.add("a", {"layers.0.hidden": hidden(2048)}, {})
    store = TraceStore(tmp_path)
    (_, _, entry), = list(store.entries())
    assert entry["plane_codecs"][0] == "raw"
    shard = next(tmp_path.glob("shard.*.bin"))
    data = bytearray(shard.read_bytes())
    data[entry["offset"] + 5] ^= 0x10
    shard.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"shard\.00000\.bin: trace 'a' key 'layers.0.hidden': corrupt chunk"):
        TraceStore(tmp_path).read("a", "layers.0.hidden")


def test_map_chunks_keeps_order_and_raises_a_workers_error():
    items = list(range(50))
    assert map_chunks(lambda x: x * x, items, [1] * 50, 4) == [x * x for x in items]

    def boom(x):
        if x == 37:
            raise ValueError("bad 37")
        return x

    with pytest.raises(ValueError, match="bad 37"):
        map_chunks(boom, items, list(range(50)), 3)
    with pytest.raises(ValueError, match="threads"):
        check_threads(0)
    assert 1 <= check_threads(None) <= 4


def test_zero_size_tensors_read_back(tmp_path):
    empty = {"scalar.lookback": torch.zeros(0, 9), "graph.0.edge_index": torch.zeros(2, 0, dtype=torch.int64),
             "layers.0.attn": torch.zeros(3, 0, 0), "layers.0.hidden": torch.zeros(0, 4),
             "flags": torch.zeros(0, dtype=torch.bool)}
    with TraceWriter(tmp_path, SCHEMA) as w:
        w.add("a", empty, {})
    store = TraceStore(tmp_path)
    got = store.get("a").tensors()
    for key, want in empty.items():
        want = want.half() if key.startswith("layers.") else want
        assert got[key].shape == want.shape and got[key].dtype == want.dtype, key
    assert store.verify() == []
