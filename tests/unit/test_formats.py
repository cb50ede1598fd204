"""One owner per file format: split.json (label-free split), labels.csv lookup and reading,
and the CLI paths the regrouping added (preprocess --pca-from, run without graphs)."""

from __future__ import annotations

import csv
import json
import shutil
import warnings

import pytest
from planted_store import make_planted_store

from truthtrace.cli import main
from truthtrace.compress import CompressConfig, compress
from truthtrace.detectors.train import TrainConfig, train
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.fileio import check_output_apart
from truthtrace.features.splits import SPLIT_VERSION, make_split, read_split, split_by_question, write_split
from truthtrace.labels.io import label_lines, labels_beside, read_label_csv
from truthtrace.pipeline import RunConfig
from truthtrace.store import TraceStore
from truthtrace.traces.importing.readers import ImportConfig
from truthtrace.traces.importing.run import import_traces
from truthtrace.traces.validate.stage import validate_store

CFG = dict(node_dim=4, shard_max_traces=16)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return make_planted_store(tmp_path_factory.mktemp("planted"), n=60, layers=2, heads=2, d=8)


def _flip_labels(src, dst, every: int = 3):
    rows = list(csv.DictReader(open(src, newline="")))
    for i, row in enumerate(rows):
        if i % every == 0:
            row["hallucinated"] = str(1 - int(row["hallucinated"]))
            row["correct"] = str(1 - int(row["correct"]))
    with open(dst, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_the_split_does_not_depend_on_labels(planted, tmp_path):
    store, labels = planted
    _flip_labels(labels, tmp_path / "flipped.csv")
    a = preprocess(store, tmp_path / "a", PreprocessConfig(**CFG, graphs=False), labels=labels, progress=False)
    preprocess(store, tmp_path / "b", PreprocessConfig(**CFG, graphs=False), labels=tmp_path / "flipped.csv",
               progress=False)
    preprocess(store, tmp_path / "c", PreprocessConfig(**CFG, graphs=False), progress=False)
    docs = [read_split(tmp_path / o) for o in "abc"]
    assert docs[0] == docs[1] == docs[2] and docs[0]["version"] == SPLIT_VERSION == 2
    assert docs[0]["method"] == "question-hash"
    assert set(a["balance"]["hallucination_rate"]) == {"train", "val", "test"}  # balance is reported instead
    assert sum(a["balance"]["n"].values()) == 60


def test_a_question_keeps_its_split_when_others_come_and_go():
    qids = [f"q{i:03d}" for i in range(400)]
    full = split_by_question(qids, seed=0)
    where = {qids[i]: name for name, idx in full.items() for i in idx}
    fewer = [q for q in qids if q != "q017"]
    part = split_by_question(fewer, seed=0)
    moved = [fewer[i] for name, idx in part.items() for i in idx if where[fewer[i]] != name]
    assert len(moved) <= 2  # only questions at a cut point move
    assert split_by_question(list(reversed(qids)), seed=0)["test"].size == full["test"].size


def test_split_json_round_trip_and_errors(tmp_path):
    doc = make_split(["t1", "t2", "t3", "t4"], ["a", "a", "b", "c"], (0.5, 0.25, 0.25), seed=0)
    assert {tid for s in ("train", "val", "test") for tid in doc[s]} == {"t1", "t2", "t3", "t4"}
    write_split(tmp_path, doc, features_dir="x")
    assert read_split(tmp_path) == {**doc, "features_dir": "x"}
    bad = dict(doc, val=doc["val"] + doc["train"][:1])
    write_split(tmp_path, bad)
    with pytest.raises(ValueError, match="is in both"):
        read_split(tmp_path)
    write_split(tmp_path, dict(doc, version=7))
    with pytest.raises(ValueError, match="field 'version' is 7"):
        read_split(tmp_path)
    with pytest.raises(FileNotFoundError, match="truthtrace preprocess"):
        read_split(tmp_path / "nowhere")


def test_labels_beside_a_store_is_looked_up_one_way(tmp_path):
    store = tmp_path / "run" / "traces"
    store.mkdir(parents=True)
    assert labels_beside(store) is None
    (store / "labels.csv").write_text("trace_id,hallucinated\na,1\n")
    assert labels_beside(store) == store / "labels.csv"
    (store.parent / "labels.csv").write_text("trace_id,hallucinated\na,0\n")
    assert labels_beside(store) == store.parent / "labels.csv"  # beside the store wins


def test_every_labels_reader_refuses_the_same_header(planted, tmp_path):
    store, _ = planted
    path = tmp_path / "l.csv"
    path.write_text("question_id,label\nq0,1\n")  # columns no reader accepts
    with pytest.raises(ValueError, match="field 'trace_id' missing"):
        read_label_csv(path)
    with pytest.raises(ValueError, match="field 'trace_id' missing"):
        list(label_lines(path))
    report = validate_store(store, labels=path)
    assert any(p.check == "labels" and "field 'trace_id' missing" in p.message for p in report.errors)


def test_preprocess_pca_from_on_the_command_line(planted, tmp_path):
    store, labels = planted
    assert main(["preprocess", str(store), "--out", str(tmp_path / "a"), "--labels", str(labels), "--node-dim", "4",
                 "--quiet"]) == 0
    assert main(["preprocess", str(store), "--out", str(tmp_path / "b"), "--node-dim", "4", "--quiet",
                 "--pca-from", str(tmp_path / "a")]) == 0
    assert (tmp_path / "b" / "pca.safetensors").read_bytes() == (tmp_path / "a" / "pca.safetensors").read_bytes()
    assert main(["preprocess", str(store), "--out", str(tmp_path / "c"), "--no-pca", "--quiet",
                 "--pca-from", str(tmp_path / "a")]) == 2  # refused with a message, not a traceback


def test_run_without_graphs_says_what_it_leaves_out():
    with pytest.warns(UserWarning, match=r"\['gnn'\] need attention graphs"):
        cfg = RunConfig(graphs=False)
    assert "gnn" not in cfg.detectors and "probe" in cfg.detectors
    with pytest.raises(ValueError, match=r"detectors \['gnn_layer'\] read attention graphs"):
        RunConfig(graphs=False, detectors=["probe", "gnn_layer"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert RunConfig(graphs=False, detectors=["probe"]).detectors == ["probe"]
        assert "gnn" in RunConfig().detectors


def test_split_document_is_plain_json(tmp_path):
    doc = make_split(["t1", "t2"], ["a", "b"], (0.5, 0.5, 0.0), seed=3)
    write_split(tmp_path, doc)
    assert json.loads((tmp_path / "split.json").read_text())["seed"] == 3


@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_preprocess_never_writes_over_its_input(planted, tmp_path, where):
    store, labels = planted
    copy = tmp_path / "run" / "traces"
    shutil.copytree(store, copy)
    out = {"same": copy, "inside": copy / "features", "contains": tmp_path / "run"}[where]
    before = sorted(p.name for p in copy.iterdir())
    for overwrite in (False, True):
        with pytest.raises(ValueError, match=r"--out .* the input trace store"):
            preprocess(copy, out, PreprocessConfig(**CFG, graphs=False, overwrite=overwrite), progress=False)
    assert sorted(p.name for p in copy.iterdir()) == before and TraceStore(copy).verify() == []
    code = main(["preprocess", str(copy), "--out", str(out), "--overwrite", "--quiet"])
    assert code == 2 and TraceStore(copy).verify() == []


def test_train_import_and_compress_refuse_an_output_over_their_input(planted, tmp_path):
    store, labels = planted
    feats = tmp_path / "feats"
    preprocess(store, feats, PreprocessConfig(**CFG, graphs=False), labels=labels, progress=False)
    with pytest.raises(ValueError, match="lies inside the input feature store"):
        train(feats, labels, feats / "detectors", TrainConfig(detectors=("perplexity",)), progress=False)
    with pytest.raises(ValueError, match="is the input source 1"):
        import_traces([tmp_path], tmp_path, ImportConfig(progress=False))
    model = tmp_path / "model"
    model.mkdir()
    (model / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="lies inside the input model"):
        compress(CompressConfig(model=str(model), out=str(model / "small"), force=True))
    assert (model / "thesis.tex").read_text() == "years of work"


def test_check_output_apart_allows_siblings(tmp_path):
    check_output_apart(tmp_path / "a" / "features", {"store": tmp_path / "a" / "traces", "none": None})
    with pytest.raises(ValueError, match="contains the input store"):
        check_output_apart(tmp_path / "a", {"store": tmp_path / "a" / "traces"})


def test_an_empty_question_file_is_an_error_not_an_empty_store(tmp_path):
    from truthtrace.data import load_questions

    (tmp_path / "q.jsonl").write_text("\n\n")
    with pytest.raises(ValueError, match=r"q\.jsonl: no questions in the file"):
        load_questions(tmp_path / "q.jsonl")
    assert main(["extract", "--questions", str(tmp_path / "q.jsonl"), "--out", str(tmp_path / "t")]) == 2
    assert not (tmp_path / "t").exists()


def test_preprocess_warns_about_traces_without_labels(planted, tmp_path):
    store, labels = planted
    rows = (tmp_path / "l.csv")
    lines = open(labels).read().splitlines()
    rows.write_text("\n".join(lines[:-5]) + "\n")  # the last five traces lose their labels
    with pytest.warns(UserWarning, match=r"5 of 60 traces have no label in .*l\.csv .*train and evaluate skip them"):
        preprocess(store, tmp_path / "f", PreprocessConfig(**CFG, graphs=False), labels=rows, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preprocess(store, tmp_path / "g", PreprocessConfig(**CFG, graphs=False), labels=labels, progress=False)
