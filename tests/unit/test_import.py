"""truthtrace import: ad-hoc pickle / .pt trace files into a store; unsafe pickles refused; resumable."""

import gzip
import json
import os
import pickle

import numpy as np
import pytest
import torch

from truthtrace.cli import main
from truthtrace.traces.importing.run import import_traces
from truthtrace.traces.importing.readers import ImportConfig
from truthtrace.labels.io import read_labels
from truthtrace.traces.importing.safe_pickle import PickleRefused, load_pickle
from truthtrace.store import TraceStore
from truthtrace.traces.validate.stage import ValidateConfig, validate_store

L, H, D = 2, 2, 8
QUIET = ImportConfig(progress=False)


def record(seed: int, n_tokens: int = 6, batch_dim: bool = False, **fields) -> dict:
    """An ad-hoc record: float16 numpy hidden (L+1) x (T, d) and causal attention L x (H, T, T)."""
    rng = np.random.default_rng(seed)
    hidden = [rng.standard_normal((n_tokens, D)).astype(np.float16) for _ in range(L + 1)]
    scores = np.where(np.tri(n_tokens, dtype=bool), rng.standard_normal((L, H, n_tokens, n_tokens)), -np.inf)
    attn = np.exp(scores - scores.max(-1, keepdims=True))
    attn = [(a / a.sum(-1, keepdims=True)).astype(np.float16) for a in attn]
    if batch_dim:  # the (1, T, d) / (1, H, T, T) layout of output_hidden_states with batch size 1
        hidden, attn = [h[None] for h in hidden], [a[None] for a in attn]
    rec = {"hidden_states": hidden, "attentions": attn, "question": f"Q{seed}?", "answer": f"A{seed}",
           "answers": [f"A{seed}"], "input_ids": np.arange(n_tokens, dtype=np.int64) + seed,
           "logprobs": -rng.random(2).astype(np.float32), "label": seed % 2}
    rec.update(fields)
    return rec


def dump(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)


@pytest.fixture
def sources(tmp_path):
    src = tmp_path / "src"
    first = [record(0, id="r0"), record(1, id="r1"), record(2, id="r2")]
    second = [record(3, batch_dim=True), record(4, batch_dim=True), {"question": "no tensors"},
              record(5, id="r1"), dict(record(6), hidden_states=[np.zeros((6, D), np.float16),
                                                                  np.zeros((5, D), np.float16)])]
    dump(src / "batch_000.pkl.gz", first)
    dump(src / "nested" / "batch_001.pkl.gz", second)
    return src, first, second


def test_folder_of_batches_imports_with_equal_tensors(sources, tmp_path):
    src, first, second = sources
    summary = import_traces([src], tmp_path / "out" / "traces", QUIET)
    assert (summary["files_read"], summary["records"], summary["imported"]) == (2, 8, 5)
    store = TraceStore(tmp_path / "out" / "traces")
    assert store.ids() == ["r0", "r1", "r2", "batch_001-0", "batch_001-1"]
    for tid, rec in [("r0", first[0]), ("r2", first[2]), ("batch_001-1", second[1])]:
        for i in range(L + 1):
            want = torch.from_numpy(np.asarray(rec["hidden_states"][i]).reshape(6, D))
            assert torch.equal(store.read(tid, f"layers.{i}.hidden"), want)
        for i in range(L):
            want = torch.from_numpy(np.asarray(rec["attentions"][i]).reshape(H, 6, 6))
            assert torch.equal(store.read(tid, f"layers.{i}.attn"), want)
        assert store.dtype_of(tid, "token_ids") == "int32"
        assert torch.equal(store.read(tid, "token_ids").long(), torch.from_numpy(rec["input_ids"]))
    meta = store.meta("r2")
    assert (meta["question"], meta["generation"]) == ("Q2?", "A2")
    assert (meta["n_prompt_tokens"], meta["n_answer_tokens"], meta["kept_start"]) == (4, 2, 0)
    schema = store.schema
    assert (schema["n_layers"], schema["n_heads"], schema["d_model"], schema["model"]) == (L, H, D, "unknown")
    assert schema["imported_from"] == [str(src)]
    assert validate_store(store.root, config=ValidateConfig(progress=False)).ok


def test_skipped_records_are_reported_with_reasons(sources, tmp_path):
    summary = import_traces([sources[0]], tmp_path / "traces", QUIET)
    reasons = {s["index"]: (s["id"], s["reason"]) for s in summary["skipped"]}
    assert set(reasons) == {2, 3, 4}
    assert reasons[2] == ("batch_001-2", "no hidden_states")
    assert reasons[3][0] == "r1" and "duplicate id" in reasons[3][1]
    assert "differ in shape" in reasons[4][1]


def test_labels_csv_is_written_in_the_labels_format(sources, tmp_path):
    import_traces([sources[0]], tmp_path / "run" / "traces", QUIET)
    labels = read_labels(tmp_path / "run" / "labels.csv")  # the reader of the label stage accepts it
    assert {k: v["hallucinated"] for k, v in labels.items()} == {"r0": 0, "r1": 1, "r2": 0, "batch_001-0": 1,
                                                                 "batch_001-1": 0}
    assert labels["r2"]["generation"] == "A2" and labels["r2"]["exact_match"] == 1


def test_rerun_imports_nothing_new(sources, tmp_path):
    import_traces([sources[0]], tmp_path / "traces", QUIET)
    again = import_traces([sources[0]], tmp_path / "traces", QUIET)
    assert again["imported"] == 0 and again["already_stored"] == 5
    assert len(TraceStore(tmp_path / "traces")) == 5


def test_pt_file_imports(tmp_path):
    rec = record(7)
    stacked = {"id": "pt0", "hidden_states": torch.from_numpy(np.stack(rec["hidden_states"])),  # (L+1, T, d)
               "attentions": torch.from_numpy(np.stack(rec["attentions"])),  # (L, H, T, T)
               "input_ids": torch.from_numpy(rec["input_ids"]), "logprobs": torch.from_numpy(rec["logprobs"])}
    torch.save([stacked], tmp_path / "pre.pt")
    summary = import_traces([tmp_path / "pre.pt"], tmp_path / "traces", QUIET)
    assert summary["imported"] == 1 and summary["skipped"] == []
    store = TraceStore(tmp_path / "traces")
    assert torch.equal(store.read("pt0", "layers.2.hidden"), stacked["hidden_states"][2])
    assert torch.equal(store.read("pt0", "layers.1.attn"), stacked["attentions"][1])


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class WritesFile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("payload", [Evil, WritesFile])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, payload):
    marker = tmp_path / "MARKER"
    dump(tmp_path / "src" / "batch_003.pkl.gz", [{"hidden_states": [], "x": payload(str(marker))}])
    refusal = r"refusing to load .*(system|open) from batch_003\.pkl\.gz.*--trust-pickle"
    with pytest.raises(PickleRefused, match=refusal):
        load_pickle(tmp_path / "src" / "batch_003.pkl.gz")
    summary = import_traces([tmp_path / "src"], tmp_path / "traces", QUIET)
    (failed,) = summary["failed_files"]
    assert failed["file"].endswith("batch_003.pkl.gz") and "refusing to load" in failed["reason"]
    assert summary["imported"] == 0 and not marker.exists()


def test_numpy_pickles_of_every_protocol_load_safely(tmp_path):
    obj = {"a": np.zeros((2, 3), np.float16), "b": np.float32(1.5), "c": np.arange(4), "d": {1, 2},
           "e": np.dtype("float16"), "f": type(np.dtype("float16")), "g": b"bytes", "h": (1.0, "s")}
    for protocol in range(6):
        with open(tmp_path / "x.pkl", "wb") as f:
            pickle.dump(obj, f, protocol=protocol)
        back = load_pickle(tmp_path / "x.pkl")
        assert back["a"].dtype == np.float16 and back["b"] == 1.5 and back["d"] == {1, 2} and back["g"] == b"bytes"


def test_trusted_mode_loads_a_plain_file(tmp_path, capsys):
    dump(tmp_path / "src" / "plain.pkl", [record(0, id="p0")])
    assert load_pickle(tmp_path / "src" / "plain.pkl", trusted=True)[0]["id"] == "p0"
    assert main(["import", str(tmp_path / "src"), "--out", str(tmp_path / "traces"), "--trust-pickle",
                 "--model", "my-model"]) == 0
    assert "1 imported" in capsys.readouterr().out
    assert TraceStore(tmp_path / "traces").schema["model"] == "my-model"


def test_cli_reports_and_json(sources, tmp_path, capsys):
    out = str(tmp_path / "traces")
    assert main(["import", str(sources[0]), "--out", out]) == 0
    text = capsys.readouterr().out
    assert "5 imported" in text and "3 skipped" in text and "no hidden_states" in text
    assert main(["import", str(sources[0]), "--out", out, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["already_stored"] == 5
    assert main(["import", str(tmp_path / "missing"), "--out", out]) == 2
    with pytest.raises(ValueError, match="storage_dtype"):
        ImportConfig(storage_dtype="int8")


def test_hidden_only_records_keyed_by_id(tmp_path):
    recs = {name: {k: v for k, v in record(i).items() if k != "attentions"} for i, name in enumerate(["a", "b"])}
    dump(tmp_path / "by_id.pkl", recs)
    summary = import_traces([tmp_path / "by_id.pkl"], tmp_path / "traces", QUIET)
    assert summary["imported"] == 2
    store = TraceStore(tmp_path / "traces")
    assert store.ids() == ["a", "b"] and "n_heads" not in store.schema and store.schema["attn_layers"] == []
    assert validate_store(store.root, config=ValidateConfig(progress=False)).ok


def test_cli_exits_1_when_a_file_is_refused_and_keeps_the_good_ones(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    dump(tmp_path / "src" / "a_good.pkl", [record(0, id="g0")])
    dump(tmp_path / "src" / "b_evil.pkl", [{"hidden_states": [], "x": Evil(str(marker))}])
    assert main(["import", str(tmp_path / "src"), "--out", str(tmp_path / "traces")]) == 1
    err = capsys.readouterr().err
    assert "1 of 2 files refused or unreadable" in err and not marker.exists()
    assert TraceStore(tmp_path / "traces").ids() == ["g0"]
    assert main(["import", str(tmp_path / "src"), "--out", str(tmp_path / "traces"), "--json"]) == 1


@pytest.mark.parametrize("field, value", [("question", ["What", "?"]), ("answers", [["A0"], "A1"]),
                                          ("trace_id", {"n": 1}), ("generation", np.array(["a", "b"])),
                                          ("category", {"geo"})])
def test_lists_and_dicts_are_refused_not_stored_as_reprs(tmp_path, field, value):
    """Issue 10 item 11: such values were stored as "['What', '?']"; now the record is skipped naming the field."""
    bad = record(1, **({field: value} if field == "trace_id" else {"id": "bad", field: value}))
    dump(tmp_path / "src" / "b.pkl", [record(0, id="good"), bad])
    summary = import_traces([tmp_path / "src"], tmp_path / "store", QUIET)
    assert summary["imported"] == 1 and len(summary["skipped"]) == 1
    assert f"field '{field}" in summary["skipped"][0]["reason"] and "expected text" in summary["skipped"][0]["reason"]
    meta = TraceStore(tmp_path / "store").meta("good")
    assert meta["question"] == "Q0?" and meta["answers"] == ["A0"]


def test_numbers_and_bytes_are_text_fields(tmp_path):
    dump(tmp_path / "src" / "b.pkl", [record(0, id=7, question=b"Q?", answers=np.array(["x", "y"]), category=3)])
    import_traces([tmp_path / "src"], tmp_path / "store", QUIET)
    meta = TraceStore(tmp_path / "store").meta("7")
    assert (meta["question"], meta["answers"], meta["category"]) == ("Q?", ["x", "y"], "3")
