"""Chunks that share their leading rows with the shard's first trace (chunk codec zstd-planes-4).

Synthetic traces with a known common prefix of ``PREFIX`` rows: the hidden states' first rows and the
attention maps' first rows are copied from one base trace, the rest differs. Every read must equal the
input bit for bit, the entries must record exactly the shared rows, and the store must be smaller
than the same traces under zstd-planes-3.
"""

import json

import pytest
import torch

from truthtrace.store import StoreError, TraceStore, TraceWriter
from truthtrace.store.codec import decode, encode
from truthtrace.store.merge import merge_stores
from truthtrace.store.planes import V3, V4
from truthtrace.store.rows import entry_rows, shared_rows
from truthtrace.traces.capture import CaptureOptions, forward_traces
from truthtrace.traces.validate.stage import validate_store

SCHEMA = {"model": "tiny", "n_layers": 2, "n_heads": 2, "d_model": 16}
PREFIX, D, H = 6, 16, 2


def causal(g: torch.Generator, n: int) -> torch.Tensor:
    s = torch.randn(H, n, n, generator=g).masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return s.softmax(-1)  # (H, n, n)


def prefixed(n_traces: int, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """Traces of lengths 8..13 whose first PREFIX rows (hidden and attention) equal trace q0's."""
    g = torch.Generator().manual_seed(seed)
    base = {"layers.0.hidden": torch.randn(20, D, generator=g), "layers.0.attn": causal(g, 20)}
    out = {}
    for i in range(n_traces):
        n = 8 + i % 6
        hidden, attn = torch.randn(n, D, generator=g), causal(g, n)
        if i:
            hidden[:PREFIX] = base["layers.0.hidden"][:PREFIX]
            attn[:, :PREFIX, :PREFIX] = base["layers.0.attn"][:, :PREFIX, :PREFIX]  # rows < PREFIX: all columns
        else:
            base = {"layers.0.hidden": hidden, "layers.0.attn": attn}
        out[f"q{i}"] = {"layers.0.hidden": hidden, "layers.0.attn": attn, "token_ids": torch.arange(n)}
    return out


def write(path, traces, **kwargs):
    with TraceWriter(path, SCHEMA, **kwargs) as w:
        for tid, t in traces.items():
            w.add(tid, t, {})
    return TraceStore(path)


def assert_reads(store: TraceStore, traces: dict) -> None:
    for tid, t in traces.items():
        got = store.get(tid).tensors()
        for key, want in t.items():
            want = want.half() if key.startswith("layers.") else want
            assert torch.equal(got[key].view(torch.uint8), want.contiguous().view(torch.uint8)), (tid, key)
            assert torch.equal(TraceStore(store.root).read(tid, key), want)  # a fresh reader: base not cached


def shard_docs(root):
    index = json.loads((root / "index.json").read_text())
    return [json.loads((root / s["json"]).read_text()) for s in index["shards"]]


def bin_bytes(root) -> int:
    return sum(s["bin_bytes"] for s in json.loads((root / "index.json").read_text())["shards"])


def test_shared_rows_round_trip_and_are_recorded_exactly(tmp_path):
    traces = prefixed(10)
    store = write(tmp_path / "v4", traces, threads=3)
    assert_reads(store, traces)
    (doc,) = shard_docs(store.root)
    first, *rest = doc["traces"]
    assert all("shared_rows" not in e for e in first["tensors"].values())  # the base is stored whole
    for record in rest:
        t = record["tensors"]
        assert t["layers.0.hidden"]["shared_rows"] >= PREFIX and t["layers.0.attn"]["shared_rows"] >= PREFIX
        assert "shared_rows" not in t["token_ids"]  # not a layer tensor
        assert {e["codec"] for e in t.values()} == {V4}
    v3 = write(tmp_path / "v3", traces, chunk_codec=V3)
    assert bin_bytes(store.root) < 0.85 * bin_bytes(v3.root)


def test_rows_are_compared_bit_for_bit(tmp_path):
    traces = prefixed(3)
    traces["q1"]["layers.0.hidden"][2, 5] = -0.0 if traces["q0"]["layers.0.hidden"][2, 5] == 0 else 0.0
    traces["q0"]["layers.0.hidden"][2, 5] = 0.0
    traces["q2"]["layers.0.hidden"][2, 5] = 0.0
    traces["q1"]["layers.0.hidden"][2, 5] = -0.0
    store = write(tmp_path, traces)
    assert_reads(store, traces)
    rows = {r["id"]: r["tensors"]["layers.0.hidden"].get("shared_rows", 0) for r in shard_docs(tmp_path)[0]["traces"]}
    assert rows == {"q0": 0, "q1": 2, "q2": PREFIX}  # -0.0 is not 0.0: q1 shares rows 0 and 1 only


def test_every_shard_starts_with_a_whole_trace(tmp_path):
    traces = prefixed(12)
    store = write(tmp_path, traces, shard_max_bytes=2500)  # cut by bytes: a trace encoded against the old shard
    docs = shard_docs(tmp_path)
    assert len(docs) >= 3
    for doc in docs:
        assert all("shared_rows" not in e for e in doc["traces"][0]["tensors"].values())
        assert any("shared_rows" in e for r in doc["traces"][1:] for e in r["tensors"].values()) or \
            len(doc["traces"]) == 1
    assert_reads(store, traces)
    assert validate_store(tmp_path).ok


def test_an_overflow_is_not_hidden_by_rows_equal_to_the_base(tmp_path):
    traces = prefixed(2)
    traces["q0"]["layers.0.hidden"][1, 3] = float("inf")  # fp16 inf in the base, from an inf
    traces["q1"]["layers.0.hidden"][1, 3] = 1e5  # the same fp16 bits, but an overflow: stored as float32
    store = write(tmp_path, traces)
    assert store.dtype_of("q1", "layers.0.hidden") == "float32"
    assert store.read("q1", "layers.0.hidden")[1, 3].item() == 1e5
    assert "shared_rows" not in shard_docs(tmp_path)[0]["traces"][1]["tensors"]["layers.0.hidden"]


def test_decode_needs_the_right_base_and_a_sane_entry():
    t = prefixed(2)
    base = t["q0"]["layers.0.hidden"].half()
    chunk, entry = encode("layers.0.hidden", t["q1"]["layers.0.hidden"], storage_dtype="float16",
                          overflow_dtype="float32", base=base)
    assert entry["shared_rows"] == shared_rows("dense", t["q1"]["layers.0.hidden"].half(), base) >= PREFIX
    assert torch.equal(decode(chunk, entry, base=base), t["q1"]["layers.0.hidden"].half())
    with pytest.raises(ValueError, match="was not given"):
        decode(chunk, entry)
    with pytest.raises(Exception, match="do not fit"):
        decode(chunk, entry, base=base[:2])
    for bad in ("6", -1, True, 99, 1.5):
        with pytest.raises(ValueError, match="shared_rows"):
            entry_rows({**entry, "shared_rows": bad})


def test_a_damaged_base_is_reported_for_the_base_and_its_sharers(tmp_path):
    traces = prefixed(3)
    write(tmp_path, traces)
    doc = shard_docs(tmp_path)[0]
    e = doc["traces"][0]["tensors"]["layers.0.hidden"]
    path = tmp_path / "shard.00000.bin"
    data = bytearray(path.read_bytes())
    data[e["offset"] + e["nbytes"] // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="q1.*layers.0.hidden.*corrupt chunk"):
        TraceStore(tmp_path).read("q1", "layers.0.hidden")
    report = validate_store(tmp_path)
    where = {(p.trace_id, p.key) for p in report.problems if p.key == "layers.0.hidden"}
    assert where == {("q0", "layers.0.hidden"), ("q1", "layers.0.hidden"), ("q2", "layers.0.hidden")}
    assert TraceStore(tmp_path).read("q1", "layers.0.attn").shape == (H, 9, 9)  # other keys still read


def test_merged_stores_keep_their_bases(tmp_path):
    a, b = prefixed(5, seed=1), {f"r{i}": t for i, t in enumerate(prefixed(5, seed=2).values())}
    write(tmp_path / "a", a, shard_max_traces=3)
    write(tmp_path / "b", b, shard_max_traces=3)
    merge_stores(tmp_path / "m", [tmp_path / "a", tmp_path / "b"])
    assert_reads(TraceStore(tmp_path / "m"), {**a, **b})


def test_a_batched_forward_pass_gives_the_prefix_rows_of_an_unbatched_one(tiny_model):
    """The premise, on a tiny random llama: sequences with a common 10-token prefix, right-padded in one batch of
    different lengths, hold the prefix's hidden and attention rows bit for bit as each one alone does."""
    g = torch.Generator().manual_seed(3)
    prefix = torch.randint(3, 200, (10,), generator=g).tolist()
    seqs = [prefix + torch.randint(3, 200, (n,), generator=g).tolist() for n in (4, 9, 15)]
    opts = CaptureOptions()
    batched = forward_traces(tiny_model, seqs, [12] * 3, opts, pad_id=0)
    alone = forward_traces(tiny_model, seqs[:1], [12], opts, pad_id=0)[0]
    for t in batched:
        for key in ("layers.0.hidden", "layers.2.hidden"):
            assert torch.equal(t[key][:10].half(), alone[key][:10].half()), key
        assert torch.equal(t["layers.1.attn"][:, :10, :10].half(), alone["layers.1.attn"][:, :10, :10].half())
