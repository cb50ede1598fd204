"""Feature IO, and train + evaluate end to end on a tiny synthetic feature dir."""

import csv
import json

import numpy as np
import pytest

from truthtrace.evaluate import EvalConfig, evaluate, format_table, rich_table
from truthtrace.features_io import Features, read_features, read_label_csv, write_features
from truthtrace.train import TrainConfig, train

N, LAYERS, D, PLANTED = 300, 7, 16, 3


def make_dir(root, n=N, unlabeled=("t0",)):
    """Write features + labels.csv; the label is planted in layer PLANTED."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    hidden = rng.normal(size=(n, LAYERS, D))
    w = rng.normal(size=D)
    hidden[:, PLANTED] += 2.0 * (2 * y - 1)[:, None] * (w / np.linalg.norm(w))
    feats = Features(
        hidden_last=hidden,
        mean_logprob=-rng.gamma(2.0, 0.5, n) - 0.3 * y,
        max_entropy=rng.gamma(2.0, 1.0, n) + 0.3 * y,
        trace_ids=[f"t{i}" for i in range(n)],
        question_ids=[f"q{i // 3}" for i in range(n)],
        layers=list(range(LAYERS)),
        model="synthetic",
    )
    fdir = write_features(root / "features", feats, extra={"unknown_extra": np.zeros(n, np.float32)})
    labels = root / "labels.csv"
    with open(labels, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["trace_id", "question_id", "hallucinated", "judge"])
        writer.writeheader()
        for i in range(n):
            if f"t{i}" not in unlabeled:
                writer.writerow({"trace_id": f"t{i}", "question_id": f"q{i // 3}", "hallucinated": y[i], "judge": "x"})
        writer.writerow({"trace_id": "no_features", "question_id": "q?", "hallucinated": 1, "judge": "x"})
    return fdir, labels


def test_features_round_trip(tmp_path):
    fdir, _ = make_dir(tmp_path)
    feats = read_features(fdir)
    assert feats.hidden_last.shape == (N, LAYERS, D) and feats.hidden_last.dtype == np.float16
    assert feats.n == N and feats.layers == list(range(LAYERS)) and feats.model == "synthetic"
    assert sorted(p.name for p in fdir.iterdir()) == ["features.json", "features.safetensors"]


@pytest.mark.parametrize(
    "field, value",
    [("version", 2), ("format", "other"), ("trace_ids", ["t0"]), ("question_ids", None), ("layers", [0, 1])],
)
def test_bad_features_json_names_the_field(tmp_path, field, value):
    fdir, _ = make_dir(tmp_path)
    index = json.loads((fdir / "features.json").read_text())
    index[field] = value
    (fdir / "features.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=f"features.json.*{field}"):
        read_features(fdir)


def test_bad_labels_csv(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("trace_id,hallucinated\nt0,1\nt1,\nt2,yes\n")
    with pytest.raises(ValueError, match="hallucinated"):
        read_label_csv(path)
    path.write_text("trace_id,hallucinated\nt0,1\nt1,\n")
    assert read_label_csv(path) == {"t0": 1}  # blank label = unlabelled
    path.write_text("trace,hallucinated\n")
    with pytest.raises(ValueError, match="trace_id"):
        read_label_csv(path)


def test_config_validation():
    with pytest.raises(ValueError, match="detectors"):
        TrainConfig(detectors=("probe", "nope"))
    with pytest.raises(ValueError, match="fractions"):
        TrainConfig(fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="detector_args"):
        TrainConfig(detectors=("perplexity",), detector_args={"probe": {}})
    with pytest.raises(ValueError, match="n_bootstrap"):
        EvalConfig(n_bootstrap=0)


def test_train_then_evaluate_end_to_end(tmp_path):
    fdir, labels = make_dir(tmp_path)
    out = tmp_path / "detectors"
    with pytest.warns(UserWarning, match="1 of 300 traces have no label"):
        summary = train(fdir, labels, out, TrainConfig(seed=0))
    assert summary["detectors"]["probe"]["layer"] == PLANTED
    assert sum(summary["n"].values()) == N - 1
    for name in ("probe", "perplexity", "max_entropy"):
        assert (out / name / "config.json").is_file()
    split = json.loads((out / "split.json").read_text())
    qid = {f"t{i}": f"q{i // 3}" for i in range(N)}
    qsets = [{qid[t] for t in split[s]} for s in ("train", "val", "test")]
    assert not (qsets[0] & qsets[1] or qsets[0] & qsets[2] or qsets[1] & qsets[2])
    assert json.loads((out / "train_summary.json").read_text())["format"] == "truthtrace.train_summary"

    report_dir = tmp_path / "report"
    with pytest.warns(UserWarning):  # the unlabelled trace again
        report = evaluate(fdir, labels, out, report_dir, EvalConfig(n_bootstrap=100))
    assert json.loads((report_dir / "report.json").read_text()) == report
    assert report["format"] == "truthtrace.report" and report["version"] == 1
    assert report["split"]["n"] == summary["n"]  # same split as training
    rows = report["results"]
    assert [r["detector"] for r in rows][0] == "probe" and len(rows) == 3
    assert [r["test_auroc"] for r in rows] == sorted((r["test_auroc"] for r in rows), reverse=True)
    probe = rows[0]
    assert probe["test_auroc"] > 0.95 and probe["test_auroc_ci"][0] <= probe["test_auroc"] <= probe["test_auroc_ci"][1]
    assert probe["n_test"] == summary["n"]["test"] and 0 < probe["base_rate"] < 1
    md = (report_dir / "report.md").read_text()
    assert all(name in md for name in ("probe", "perplexity", "max_entropy")) and "Hallucination rate" in md
    table = format_table(report)
    assert table.count("\n") == 4 and table.startswith("| detector")
    assert rich_table(report).row_count == 3


def test_evaluate_subset_of_detectors(tmp_path):
    fdir, labels = make_dir(tmp_path, unlabeled=())
    out = tmp_path / "detectors"
    train(fdir, labels, out, TrainConfig(detectors=("perplexity", "max_entropy")))
    report = evaluate(fdir, labels, out, tmp_path / "r", EvalConfig(detectors=("perplexity",), n_bootstrap=20))
    assert [r["detector"] for r in report["results"]] == ["perplexity"]
    with pytest.raises(ValueError, match="probe"):
        evaluate(fdir, labels, out, tmp_path / "r", EvalConfig(detectors=("probe",), n_bootstrap=20))


def test_train_config_needs_val_and_test():
    with pytest.raises(ValueError, match="fractions"):
        TrainConfig(fractions=(0.8, 0.2, 0.0))
