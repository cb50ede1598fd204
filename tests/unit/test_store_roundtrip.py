"""TraceWriter -> TraceStore: round trips, metadata, shard cutting, info, API errors."""

import json

import pytest
import torch

from synthetic_traces import make_trace
from truthtrace.store import FORMAT_VERSION, StoreError, TraceStore, TraceWriter

SCHEMA = {"model": "tiny", "n_layers": 2, "n_heads": 2, "d_model": 16}


def expected(key: str, t: torch.Tensor, dtype=torch.float16) -> torch.Tensor:
    return t.to(dtype) if key.startswith("layers.") else t


def write(path, n: int, **kwargs) -> dict:
    traces = {f"q{i}": make_trace(i) for i in range(n)}
    with TraceWriter(path, SCHEMA, **kwargs) as w:
        for tid, tensors in traces.items():
            w.add(tid, tensors, {"question_id": tid, "answers": ["a", "b"], "n": len(tid)})
    return traces


@pytest.mark.parametrize("storage_dtype", ["float16", "bfloat16", "float32"])
def test_store_roundtrip_is_bit_exact(tmp_path, storage_dtype):
    traces = write(tmp_path, 3, storage_dtype=storage_dtype)
    store = TraceStore(tmp_path)
    dtype = getattr(torch, storage_dtype)
    for tid, tensors in traces.items():
        trace = store.get(tid)
        assert trace.keys() == list(tensors) == store.keys(tid)
        for key, t in tensors.items():
            want = expected(key, t, dtype)
            assert torch.equal(store.read(tid, key).view(torch.uint8), want.contiguous().view(torch.uint8))
            assert torch.equal(trace[key], want) and store.dtype_of(tid, key) == str(want.dtype)[6:]
            assert store.shape_of(tid, key) == tuple(t.shape)


def test_ids_meta_and_iteration_keep_insertion_order(tmp_path):
    write(tmp_path, 7, shard_max_traces=3)
    store = TraceStore(tmp_path)
    ids = [f"q{i}" for i in range(7)]
    assert store.ids() == ids and len(store) == 7 and "q3" in store and "nope" not in store
    assert [t.id for t in store] == ids
    assert [[t.id for t in shard] for shard in store.iter_shards(verify=True)] == [ids[:3], ids[3:6], ids[6:]]
    assert store.meta("q5") == {"question_id": "q5", "answers": ["a", "b"], "n": 2}
    assert [tid for tid, _ in store.metas()] == ids
    assert store.schema == SCHEMA and store.format_version == FORMAT_VERSION


def test_shards_are_cut_at_the_size_limit(tmp_path):
    traces = write(tmp_path, 6, shard_max_bytes=4000)
    store = TraceStore(tmp_path)
    info = store.info()
    assert info["n_shards"] >= 3 and store.ids() == list(traces)
    index = json.loads((tmp_path / "index.json").read_text())
    assert all(s["bin_bytes"] <= 4000 or len(s["ids"]) == 1 for s in index["shards"])
    for trace in store:
        assert torch.equal(trace["layers.1.attn"], traces[trace.id]["layers.1.attn"].half())


def test_info_counts_dtypes_layouts_and_bytes(tmp_path):
    traces = write(tmp_path, 2)
    info = TraceStore(tmp_path).info()
    assert info["n_traces"] == 2 and info["n_shards"] == 1 and info["n_tensors"] == 2 * 8
    assert info["dtypes"] == {"float16": 10, "int64": 2, "float32": 4}
    assert info["layouts"] == {"dense": 12, "tril": 4}
    raw = sum(expected(k, t).numel() * expected(k, t).element_size() for tr in traces.values() for k, t in tr.items())
    assert info["raw_bytes"] == raw and info["packed_bytes"] < raw
    assert info["bytes_on_disk"] == sum(p.stat().st_size for p in tmp_path.iterdir() if p.name != ".writer.lock")
    assert info["overflow_fallbacks"] == []


def test_overflow_is_stored_in_float32_and_recorded(tmp_path):
    trace = make_trace(0)
    trace["layers.1.hidden"][2, 3] = 1e5
    with TraceWriter(tmp_path, SCHEMA) as w:
        w.add("big", trace, {})
    store = TraceStore(tmp_path)
    assert store.dtype_of("big", "layers.1.hidden") == "float32"
    assert store.dtype_of("big", "layers.0.hidden") == "float16"
    assert torch.equal(store.read("big", "layers.1.hidden"), trace["layers.1.hidden"])
    (fallback,) = store.info()["overflow_fallbacks"]
    assert fallback["id"] == "big" and fallback["key"] == "layers.1.hidden" and fallback["dtype"] == "float32"
    assert "overflow" in fallback["reason"]


def test_duplicate_id_raises(tmp_path):
    with TraceWriter(tmp_path, SCHEMA, shard_max_traces=1) as w:
        w.add("a", make_trace(0), {})
        with pytest.raises(StoreError, match="'a'"):
            w.add("a", make_trace(1), {})
    with TraceWriter(tmp_path, SCHEMA) as w:
        assert w.has("a")
        with pytest.raises(StoreError, match="already stored"):
            w.add("a", make_trace(1), {})


def test_resume_with_other_schema_raises_and_volatile_keys_are_ignored(tmp_path):
    write(tmp_path, 1)
    with pytest.raises(StoreError, match="(?s)n_layers: stored 2, given 3.*overwrite=True"):
        TraceWriter(tmp_path, {**SCHEMA, "n_layers": 3})
    with pytest.raises(StoreError, match="storage dtype"):
        TraceWriter(tmp_path, SCHEMA, storage_dtype="bfloat16")
    volatile = {**SCHEMA, "started": "today", "volatile": ["started"]}
    with TraceWriter(tmp_path, volatile) as w:  # "started" is not in the stored schema: ignored
        assert w.has("q0")


def test_resume_false_refuses_and_overwrite_replaces(tmp_path):
    write(tmp_path, 2)
    with pytest.raises(StoreError, match="resume=True.*overwrite=True"):
        TraceWriter(tmp_path, SCHEMA, resume=False)
    (tmp_path / "notes.txt").write_text("keep me")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(StoreError, match=r"did not write \(notes.txt\); nothing was deleted"):
        TraceWriter(tmp_path, {**SCHEMA, "n_layers": 5}, overwrite=True)  # a folder with other files: refused
    assert sorted(p.name for p in tmp_path.iterdir()) == before and TraceStore(tmp_path).ids() == ["q0", "q1"]
    (tmp_path / "notes.txt").unlink()
    with TraceWriter(tmp_path, {**SCHEMA, "n_layers": 5}, overwrite=True) as w:
        assert not w.has("q0")
        w.add("new", make_trace(9), {})
    store = TraceStore(tmp_path)
    assert store.ids() == ["new"] and store.schema["n_layers"] == 5


@pytest.mark.parametrize("kwargs, field", [
    ({"storage_dtype": "int8"}, "storage_dtype"), ({"shard_max_bytes": 0}, "shard_max_bytes"),
    ({"shard_max_traces": 0}, "shard_max_traces"), ({"compression_level": 99}, "compression_level"),
    ({"overflow_dtype": "float16"}, "overflow_dtype"), ({"schema": ["x"]}, "schema"),
])
def test_bad_writer_arguments_name_the_field(tmp_path, kwargs, field):
    with pytest.raises(ValueError, match=field):
        TraceWriter(tmp_path, **{"schema": SCHEMA, **kwargs})


def test_bad_add_arguments_raise_value_error(tmp_path):
    with TraceWriter(tmp_path, SCHEMA) as w:
        with pytest.raises(ValueError, match="trace_id"):
            w.add("", make_trace(0), {})
        with pytest.raises(ValueError, match="meta"):
            w.add("a", make_trace(0), {"bad": object()})
        with pytest.raises(ValueError, match="torch.Tensor"):
            w.add("a", {"x": [1, 2]}, {})
        w.add("a", make_trace(0), {})  # nothing half-added before
    assert TraceStore(tmp_path).ids() == ["a"]


def test_exception_in_with_block_keeps_completed_traces(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with TraceWriter(tmp_path, SCHEMA) as w:
            w.add("a", make_trace(0), {})
            w.add("b", make_trace(1), {})
            raise RuntimeError("boom")
    assert TraceStore(tmp_path).ids() == ["a", "b"]
    assert not list(tmp_path.glob("*.tmp"))


def test_second_writer_is_locked_out(tmp_path):
    with TraceWriter(tmp_path, SCHEMA):
        with pytest.raises(StoreError, match="another TraceWriter"):
            TraceWriter(tmp_path, SCHEMA)


def test_empty_store_opens(tmp_path):
    with TraceWriter(tmp_path, SCHEMA):
        pass
    store = TraceStore(tmp_path)
    assert len(store) == 0 and store.info()["n_traces"] == 0 and list(store) == [] and store.verify() == []


def test_trace_tensors_are_lazy_and_cached(tmp_path):
    traces = write(tmp_path, 1)
    trace = TraceStore(tmp_path).get("q0")
    first = trace["layers.0.hidden"]
    assert trace["layers.0.hidden"] is first
    assert set(trace.tensors()) == set(traces["q0"]) and "token_ids" in trace
    with pytest.raises(KeyError, match="layers.9.hidden"):
        trace["layers.9.hidden"]


def test_unknown_version_and_missing_index_raise_naming_the_file(tmp_path):
    with pytest.raises(StoreError, match="index.json"):
        TraceStore(tmp_path)
    write(tmp_path, 1)
    index = json.loads((tmp_path / "index.json").read_text())
    index["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(StoreError, match="index.json.*format_version"):
        TraceStore(tmp_path)
