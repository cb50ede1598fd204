"""truthtrace validate: clean stores pass; each corruption is caught, named, and the checks keep going."""

import csv
import hashlib
import json
import os

import pytest
import torch

from synthetic_traces import make_trace
from truthtrace.cli import main
from truthtrace.data import Question
from truthtrace.traces.extract import ExtractConfig, extract
from truthtrace.store import TraceWriter
from truthtrace.traces.validate.stage import ValidateConfig, validate_store

SCHEMA = {"kind": "truthtrace.traces", "model": "synthetic", "model_dtype": "float32", "n_layers": 2, "n_heads": 2,
          "d_model": 16, "hidden_layers": [0, 1, 2], "attn_layers": [0, 1]}
META = {"n_prompt_tokens": 8, "n_answer_tokens": 4, "kept_start": 0}
QUIET = ValidateConfig(progress=False)


def write_store(path, edit=None, n=6):
    """Six synthetic traces q0..q5 in three shards; ``edit(i, tensors)`` may alter trace i first."""
    with TraceWriter(path, SCHEMA, shard_max_traces=2) as w:
        for i in range(n):
            tensors = make_trace(i)
            if edit is not None:
                edit(i, tensors)
            w.add(f"q{i}", tensors, dict(META, question_id=f"q{i}"))
    return path


@pytest.fixture
def store(tmp_path):
    return write_store(tmp_path / "s")


def entry(path, shard, trace_id, key):
    doc = json.loads((path / f"shard.{shard:05d}.json").read_text())
    return next(r for r in doc["traces"] if r["id"] == trace_id)["tensors"][key]


def flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))


def found(report, check, **where):
    """Problems of ``check`` whose fields equal ``where`` (shard, trace_id, key, severity)."""
    return [p for p in report.problems if p.check == check and all(getattr(p, k) == v for k, v in where.items())]


def snapshot(path):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(path.iterdir())}


def test_clean_synthetic_store_passes(store):
    report = validate_store(store, config=QUIET)
    assert report.ok and report.problems == []
    assert report.counts["shards"] == 3 and report.counts["traces"] == 6 and report.counts["tensors"] == 6 * 8


@pytest.mark.parametrize("keep", ["all", "last:3"])
def test_store_written_by_extract_passes(tmp_path, tiny_model, tiny_tokenizer, keep):
    questions = [Question(id=f"x{i}", question=f"What is {i} plus {i}?", answers=(str(2 * i),), category="n")
                 for i in range(5)]
    config = ExtractConfig(model="tiny", batch_size=5, max_new_tokens=4, shard_max_traces=2, keep=keep)
    extract(questions, tmp_path / "s", config, tiny_model, tiny_tokenizer, progress=False)
    report = validate_store(tmp_path / "s", config=QUIET)
    assert report.ok and report.problems == [], report.problems
    assert report.counts["traces"] == 5


def test_flipped_byte_names_shard_and_trace(store):
    e = entry(store, 1, "q3", "layers.1.hidden")
    flip(store / "shard.00001.bin", e["offset"] + e["nbytes"] // 2)
    report = validate_store(store, config=QUIET)
    assert not report.ok
    assert found(report, "checksum", shard="shard.00001.bin")
    assert found(report, "decode", shard="shard.00001.bin", trace_id="q3", key="layers.1.hidden")
    assert {p.shard for p in report.problems} == {"shard.00001.bin"}  # the other shards are clean
    assert report.counts["traces"] == 6  # every trace was still checked


def test_truncated_shard_is_named_and_readable_chunks_still_checked(store):
    path = store / "shard.00001.bin"
    doc = json.loads((store / "shard.00001.json").read_text())
    start, end = next(r for r in doc["traces"] if r["id"] == "q3")["span"]
    path.write_bytes(path.read_bytes()[: (start + end) // 2])  # in the middle of q3, the shard's second trace
    report = validate_store(store, config=QUIET)
    assert found(report, "files", shard="shard.00001.bin")
    assert found(report, "decode", shard="shard.00001.bin", trace_id="q3")
    assert not found(report, "decode", trace_id="q2")  # q2's chunks lie before the cut


def test_missing_shard_is_named_with_its_traces(store):
    (store / "shard.00002.bin").unlink()
    report = validate_store(store, config=QUIET)
    (problem,) = found(report, "files")
    assert problem.shard == "shard.00002.bin" and "'q4'" in problem.message and "'q5'" in problem.message
    assert report.counts["traces"] == 6  # the other shards and the shard document were still checked


def test_stray_files_are_reported(store):
    (store / "shard.00009.bin").write_bytes(b"left over")
    (store / "notes.txt").write_text("mine")
    (store / "shard.00003.bin.tmp").write_bytes(b"in progress")
    report = validate_store(store, config=QUIET)
    messages = {p.severity: [] for p in report.problems}
    for p in report.problems:
        messages[p.severity].append(p.message)
    assert any("shard.00009.bin" in m for m in messages["error"])
    assert any("notes.txt" in m for m in messages["warning"])
    assert any("shard.00003.bin.tmp" in m for m in messages["warning"])


def test_nan_is_named_and_overflow_is_a_warning_with_layer_and_channel(tmp_path):
    def edit(i, tensors):
        if i == 1:
            tensors["layers.1.hidden"][3, 5] = float("nan")
        if i == 2:
            tensors["layers.2.hidden"][4, 7] = 1e6  # beyond float16: stored float32 by the fallback
    report = validate_store(write_store(tmp_path / "s", edit), config=QUIET)
    (nan,) = found(report, "finite")
    assert (nan.severity, nan.shard, nan.trace_id, nan.key) == ("error", "shard.00000.bin", "q1", "layers.1.hidden")
    assert "1 NaN" in nan.message and "token 3, channel 5" in nan.message
    (big,) = found(report, "fp16_range")
    assert (big.severity, big.trace_id, big.key) == ("warning", "q2", "layers.2.hidden")
    assert "layer 2" in big.message and "[7]" in big.message and "float32" in big.message


def test_wrong_shape_in_the_index_is_named(store):
    doc = json.loads((store / "shard.00000.json").read_text())
    doc["traces"][0]["tensors"]["layers.0.hidden"]["shape"] = [12, 8]
    data = json.dumps(doc, separators=(",", ":")).encode()
    (store / "shard.00000.json").write_bytes(data)
    index = json.loads((store / "index.json").read_text())  # keep the checksum right: test the shape check itself
    index["shards"][0].update(json_bytes=len(data), json_sha256=hashlib.sha256(data).hexdigest())
    (store / "index.json").write_text(json.dumps(index))
    report = validate_store(store, config=QUIET)
    assert not found(report, "checksum")
    shape = found(report, "shape", shard="shard.00000.bin", trace_id="q0", key="layers.0.hidden")
    assert shape and any("[12, 8]" in p.message for p in shape)


def test_bad_attention_rows_and_upper_triangle(tmp_path):
    def edit(i, tensors):
        if i == 1:
            tensors["layers.0.attn"][1, 5] *= 0.5
        if i == 2:
            a = tensors["layers.1.attn"]
            a[0, 2, 7] = 0.1
            a[0, 2] /= a[0, 2].sum()  # still sums to 1: only the causal check may fire
    report = validate_store(write_store(tmp_path / "s", edit), config=QUIET)
    (rows,) = found(report, "attn_rows")
    assert (rows.trace_id, rows.key) == ("q1", "layers.0.attn") and "head 1, row 5" in rows.message
    (upper,) = found(report, "attn_causal")
    assert (upper.trace_id, upper.key) == ("q2", "layers.1.attn") and "head 0, row 2, col 7" in upper.message
    lenient = validate_store(tmp_path / "s", config=ValidateConfig(causal=False, progress=False))
    assert [p.check for p in lenient.errors] == ["attn_rows"]


def write_labels(path, ids):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trace_id", "question_id", "hallucinated"])
        for i, tid in enumerate(ids):
            w.writerow([tid, tid, i % 2])


def test_labels_duplicates_orphans_and_missing(store, tmp_path):
    write_labels(tmp_path / "labels.csv", ["q0", "q1", "q2", "q3", "q4", "q5"])
    assert validate_store(store, labels=tmp_path / "labels.csv", config=QUIET).ok
    write_labels(tmp_path / "bad.csv", ["q0", "q1", "q1", "q2", "q3", "q4", "zz"])
    report = validate_store(store, labels=tmp_path / "bad.csv", config=QUIET)
    problems = {p.trace_id: p.message for p in found(report, "labels")}
    assert set(problems) == {"q1", "zz", "q5"}
    assert "2 times" in problems["q1"] and "orphan" in problems["zz"] and "no label" in problems["q5"]


def test_two_corruptions_in_different_shards_are_both_reported(store):
    e = entry(store, 0, "q1", "layers.1.attn")
    flip(store / "shard.00000.bin", e["offset"] + 3)
    (store / "shard.00002.json").write_text("{not json")
    report = validate_store(store, config=QUIET)
    assert found(report, "decode", shard="shard.00000.bin", trace_id="q1", key="layers.1.attn")
    assert found(report, "shard_doc", shard="shard.00002.bin")
    assert report.counts["traces"] == 4  # shards 0 and 1 fully checked


def test_validate_never_modifies_the_store(store, tmp_path):
    e = entry(store, 1, "q2", "layers.0.hidden")
    flip(store / "shard.00001.bin", e["offset"] + 5)
    write_labels(tmp_path / "labels.csv", ["q0"])
    before = snapshot(store)
    validate_store(store, labels=tmp_path / "labels.csv", config=QUIET)
    assert main(["validate", str(store), "--json"]) == 1
    assert snapshot(store) == before


def test_cli_exit_codes_and_json(store, tmp_path, capsys):
    assert main(["validate", str(store)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["validate", str(store), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["counts"]["traces"] == 6 and doc["problems"] == []
    os.remove(store / "shard.00001.json")
    assert main(["validate", str(store), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["counts"]["errors"] >= 1
    assert set(doc["problems"][0]) == {"check", "severity", "shard", "trace_id", "key", "message"}
    assert main(["validate", str(tmp_path / "nowhere")]) == 1
    assert "index" in capsys.readouterr().out


def test_config_is_validated():
    with pytest.raises(ValueError, match="attn_tolerance"):
        ValidateConfig(attn_tolerance=2.0)
    assert torch.finfo(torch.float16).eps * 4 < 0.004  # the default tolerance on fp16 stores


def test_random_bit_flips_are_always_named_with_a_trace(tmp_path):
    import random
    import shutil

    base = write_store(tmp_path / "base")
    rng = random.Random(0)
    for k in range(12):
        copy = tmp_path / f"c{k}"
        shutil.copytree(base, copy)
        shard = rng.randrange(3)
        path = copy / f"shard.{shard:05d}.bin"
        data = bytearray(path.read_bytes())
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        report = validate_store(copy, config=QUIET)
        named = [p for p in report.problems if p.trace_id and p.shard == f"shard.{shard:05d}.bin"]
        assert named and not found(report, "internal"), report.problems


def test_feature_store_passes_and_a_missing_graph_part_is_named(tmp_path):
    """A feature store (kind truthtrace.features, split.json and pca.safetensors beside the shards) is checked as
    one: no false 'missing hidden layers' per record, no 'unexpected file'; a record without a graph layer's part
    is a keys error naming the trace."""
    from planted_store import make_planted_store

    from truthtrace.features import PreprocessConfig, preprocess
    from truthtrace.store import TraceStore

    store, labels = make_planted_store(tmp_path / "p", n=24, layers=2, heads=2, d=8)
    preprocess(store, tmp_path / "f", PreprocessConfig(node_dim=4), labels=labels, progress=False)
    report = validate_store(tmp_path / "f", labels=labels, config=QUIET)
    assert report.ok and report.problems == [], [p.message for p in report.problems]
    feats = TraceStore(tmp_path / "f")
    with TraceWriter(tmp_path / "g", feats.schema, storage_dtype="float16") as w:
        for i, tid in enumerate(feats.ids()):
            tensors = feats.get(tid).tensors()
            if i == 1:
                del tensors["graph.1.edge_attr"]
            w.add(tid, tensors, feats.meta(tid))
    bad = validate_store(tmp_path / "g", config=QUIET)
    assert [p.trace_id for p in found(bad, "keys")] == [feats.ids()[1]]
    assert "missing graph layers [1]" in found(bad, "keys")[0].message
