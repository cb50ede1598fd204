"""Out-of-distribution grading on planted stores: leave-one-category-out, the transfer matrix and its heatmap."""

import json

import numpy as np
import pytest
from planted_store import make_planted_store

from truthtrace.detectors.train import TrainConfig, train
from truthtrace.evaluation.evaluate import EvalConfig, evaluate
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.features.splits import group_split, read_split
from truthtrace.labels.io import read_labels, write_labels

NAMES = ("probe", "max_entropy")


def _run(root, scramble: str | None = None):
    store, labels = make_planted_store(root / "t", n=240, layers=3, heads=2, d=16, seed=0)
    feats = root / "feats"
    preprocess(store, feats, PreprocessConfig(graphs=False), labels=labels, progress=False)
    if scramble:  # labels of one category shuffled: its answers carry no planted signal any more
        rows = read_labels(labels)
        ids = [t for t, r in rows.items() if r["category"] == scramble]
        perm = np.random.default_rng(0).permutation([rows[t]["hallucinated"] for t in ids])
        for t, h in zip(ids, perm):
            rows[t].update(hallucinated=int(h), correct=1 - int(h))
        write_labels(rows.values(), labels)
    train(feats, labels, root / "det", TrainConfig(detectors=NAMES), progress=False)
    return feats, labels


def test_group_split_keeps_the_held_out_category_out_of_training():
    ids = [f"t{i}" for i in range(40)]
    qids = [f"q{i // 2}" for i in range(40)]
    cats = ["a" if i < 20 else "b" for i in range(40)]
    doc = group_split(ids, qids, cats, ["a"], ["b"])
    assert set(doc["test"]) == set(ids[20:]) and set(doc["train"]) | set(doc["val"]) == set(ids[:20])
    assert doc["val"] and not set(doc["train"]) & set(doc["val"])
    diag = group_split(ids, qids, cats, ["a"], ["a", "b"], test_fraction_in_train=0.2)
    held_in = set(diag["test"]) & set(ids[:20])
    assert held_in and not held_in & (set(diag["train"]) | set(diag["val"])) and set(ids[20:]) <= set(diag["test"])
    for q in {q for t, q in zip(ids, qids) if t in held_in}:  # both traces of a question on one side
        assert {t for t, qq in zip(ids, qids) if qq == q} <= held_in
    with pytest.raises(ValueError, match="have no traces"):
        group_split(ids, qids, cats, ["a"], ["c"])


def test_leave_category_out_and_transfer_on_a_shared_signal(tmp_path):
    feats, labels = _run(tmp_path)
    report = evaluate(feats, labels, tmp_path / "det", tmp_path / "rep",
                      EvalConfig(n_bootstrap=100, split="category", label_rules=()))
    ood = report["ood"]
    assert set(ood["categories"]) == {"science", "history"} and set(ood["detectors"]) == set(NAMES)
    probe = ood["detectors"]["probe"]
    assert probe["leave_category_out"] > 0.9 and set(probe["per_category"]) == {"science", "history"}
    assert ood["comparison"]["best_learned"] == "probe" and ood["comparison"]["difference_ci"][0] > 0
    # the refit never saw the held-out category
    view_split = read_split(tmp_path / "rep" / "ood" / "category" / "science" / "features")
    cats = {r["trace_id"]: r["category"] for r in read_labels(labels).values()}
    assert {cats[t] for t in view_split["test"]} == {"science"}
    assert {cats[t] for t in view_split["train"] + view_split["val"]} == {"history"}
    t = ood["transfer"]
    assert t["detector"] == "probe" and len(t["auroc"]) == 2 and all(len(row) == 2 for row in t["auroc"])
    assert min(min(row) for row in t["auroc"]) > 0.85  # the planted direction is the same in both
    assert (tmp_path / "rep" / "transfer.png").stat().st_size > 5_000
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "leave one category out" in md and "transfer.png" in md
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["ood"]["transfer"]["categories"]


def test_a_signal_missing_from_one_category_shows_as_an_ood_gap(tmp_path):
    feats, labels = _run(tmp_path, scramble="history")
    report = evaluate(feats, labels, tmp_path / "det", tmp_path / "rep",
                      EvalConfig(n_bootstrap=50, split="category", label_rules=(), figures=False,
                                 transfer_detector=""))
    probe = report["ood"]["detectors"]["probe"]
    # trained on history alone (scrambled), the probe knows nothing about science; science held in, it does
    assert probe["per_category"]["science"] < 0.7 < probe["in_distribution"]
    assert probe["gap"] > 0.1 and report["ood"]["transfer"] is None


def test_ood_config_is_checked():
    with pytest.raises(ValueError, match="split"):
        EvalConfig(split="topic")
    with pytest.raises(ValueError, match="test_features"):
        EvalConfig(split="category", test_features="a", test_labels="b")
    with pytest.raises(ValueError, match="ood_detectors"):
        EvalConfig(split="category", ood_detectors=("stack",))


def test_cli_split_category(tmp_path, capsys):
    from truthtrace.cli import main

    feats, labels = _run(tmp_path)
    assert main(["evaluate", "--features", str(feats), "--labels", str(labels), "--detectors-dir",
                 str(tmp_path / "det"), "--out", str(tmp_path / "rep"), "--split", "category", "--ood-detectors",
                 "probe", "--transfer-detector", "", "--label-rules", "none", "--n-bootstrap", "50"]) == 0
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert list(saved["ood"]["detectors"]) == ["probe"] and saved["ood"]["transfer"] is None
    assert saved["label_rules"] is None
    assert "risk_coverage.png" in capsys.readouterr().out


def test_a_rerun_after_the_labels_changed_refits_every_category(tmp_path):
    feats, labels = _run(tmp_path)
    cfg = EvalConfig(n_bootstrap=20, split="category", label_rules=(), figures=False, transfer_detector="",
                     ood_detectors=("probe",))
    first = evaluate(feats, labels, tmp_path / "det", tmp_path / "rep", cfg)["ood"]["detectors"]["probe"]
    rows = read_labels(labels)  # history's labels shuffled: a probe trained on history alone knows nothing
    ids = [t for t, r in rows.items() if r["category"] == "history"]
    for t, h in zip(ids, np.random.default_rng(0).permutation([rows[t]["hallucinated"] for t in ids])):
        rows[t].update(hallucinated=int(h), correct=1 - int(h))
    write_labels(rows.values(), labels)
    again = evaluate(feats, labels, tmp_path / "det", tmp_path / "rep", cfg)["ood"]["detectors"]["probe"]
    assert first["per_category"]["science"] > 0.9 > 0.7 > again["per_category"]["science"]
