"""train + evaluate end to end: planted trace store -> preprocess -> detectors (several seeds) -> report."""

import json

import numpy as np
import pytest
from planted_store import make_planted_store

from truthtrace.cli import main
from truthtrace.evaluation.evaluate import EvalConfig, evaluate
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.evaluation.report import format_table, read_report, rich_table
from truthtrace.detectors.train import TrainConfig, train

FAST = {"mlp": {"max_epochs": 6, "sweep_epochs": 2, "patience": 3, "log_dir": None}}
DETECTORS = ("probe", "perplexity", "max_entropy", "lookback", "attn_logdet", "mlp")


def _feature_store(root, seed=0, n=160):
    store, labels = make_planted_store(root / f"traces{seed}", n=n, layers=3, heads=2, d=16, seed=seed,
                                       direction_seed=0)
    feats = root / f"feats{seed}"
    preprocess(store, feats, PreprocessConfig(graphs=False), labels=labels, progress=False)
    return feats, labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    feats, labels = _feature_store(root)
    cfg = TrainConfig(detectors=DETECTORS, seeds=(0, 1), detector_args=FAST)
    summary = train(feats, labels, root / "det", cfg, progress=False)
    return root, feats, labels, summary


def test_train_saves_one_dir_per_seed_of_random_detectors(trained):
    root, feats, _, summary = trained
    assert sorted(p.name for p in (root / "det" / "mlp").iterdir()) == ["seed-0", "seed-1"]
    assert [p.name for p in (root / "det" / "probe").iterdir()] == ["seed-0"]  # deterministic: fit once
    split = json.loads((root / "det" / "split.json").read_text())
    assert split == {**json.loads((feats / "split.json").read_text()), "features_dir": str(feats)}
    assert summary["split_sizes"]["train"] > summary["split_sizes"]["test"] > 0
    assert summary["detectors"]["probe"]["seed-0"]["layer"] == 2  # the planted layer


def test_train_resumes_and_skips_finished_detectors(trained):
    root, feats, labels, _ = trained
    again = train(feats, labels, root / "det", TrainConfig(detectors=DETECTORS, seeds=(0, 1), detector_args=FAST),
                  progress=False)
    assert all(info == {"skipped": "already trained"} for runs in again["detectors"].values() for info in runs.values())


def test_evaluate_reports_every_metric_and_the_family_comparison(trained):
    root, feats, labels, _ = trained
    report = evaluate(feats, labels, root / "det", root / "report", EvalConfig(n_bootstrap=200))
    rows = {r["detector"]: r for r in report["results"]}
    assert set(rows) == set(DETECTORS) | {"stack"}  # the stack is fitted by evaluate
    aucs = [r["test_auroc"] for r in report["results"]]
    assert aucs == sorted(aucs, reverse=True)
    for key in ("test_auroc_ci", "test_auprc", "test_accuracy", "test_f1", "test_tpr_at_fpr", "test_ece", "roc"):
        assert all(key in r for r in report["results"]), key
    assert rows["probe"]["test_auroc"] > 0.95 and rows["mlp"]["test_auroc"] > 0.95  # planted signal found
    assert rows["mlp"]["n_seeds"] == 2 and len(rows["mlp"]["per_seed"]) == 2 and rows["probe"]["n_seeds"] == 1
    assert rows["perplexity"]["family"] == "training-free" and rows["probe"]["family"] == "learned"
    lo, hi = rows["probe"]["test_auroc_ci"]
    assert lo <= rows["probe"]["test_auroc"] <= hi
    cmp = report["comparison"]
    assert cmp["best_learned"] in ("probe", "mlp", "lookback") and cmp["learned_wins"] and cmp["significant"]
    md = (root / "report" / "report.md").read_text()
    assert "beats the best training-free" in md and "roc.png" in md
    assert (root / "report" / "roc.png").stat().st_size > 10_000 and (root / "report" / "roc.svg").is_file()
    assert json.loads((root / "report" / "report.json").read_text())["version"] == 3
    assert "mlp" in format_table(report) and rich_table(report).row_count == len(DETECTORS) + 1


def test_cross_dataset_mode_tests_on_every_trace_of_another_store(trained, tmp_path):
    root, feats, labels, _ = trained
    other, other_labels = _feature_store(tmp_path, seed=1, n=80)
    cfg = EvalConfig(detectors=("probe", "perplexity"), n_bootstrap=100, test_features=str(other),
                     test_labels=str(other_labels), figures=False)
    report = evaluate(feats, labels, root / "det", tmp_path / "report", cfg)
    assert report["cross_dataset"] and all(r["n_test"] == 80 for r in report["results"])
    probe = next(r for r in report["results"] if r["detector"] == "probe")
    assert probe["test_auroc"] > 0.9  # the planted direction is the same in both stores


def test_cli_train_and_evaluate(trained, tmp_path, capsys):
    root, feats, labels, _ = trained
    det = tmp_path / "det"
    assert main(["train", "--features", str(feats), "--labels", str(labels), "--out", str(det),
                 "--detectors", "probe,max_entropy"]) == 0
    assert main(["evaluate", "--features", str(feats), "--labels", str(labels), "--detectors-dir", str(det),
                 "--out", str(tmp_path / "rep"), "--n-bootstrap", "100", "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "probe" in out and "max_entropy" in out and (tmp_path / "rep" / "report.md").is_file()
    assert main(["evaluate", "--features", str(feats), "--labels", str(labels), "--detectors-dir", str(tmp_path),
                 "--out", str(tmp_path / "x")]) == 2  # not a train output


def test_config_validation():
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig(detectors=("nope",))
    with pytest.raises(ValueError, match="seeds"):
        TrainConfig(seeds=())
    with pytest.raises(ValueError, match="detector_args"):
        TrainConfig(detectors=("probe",), detector_args={"mlp": {}})
    with pytest.raises(ValueError, match="n_bootstrap"):
        EvalConfig(n_bootstrap=0)
    with pytest.raises(ValueError, match="test_labels"):
        EvalConfig(test_features="x")
    assert TrainConfig(detectors=("all",)).detectors == tuple(sorted(TrainConfig(detectors=("all",)).detectors))
    assert np.isfinite(EvalConfig().max_fpr)


def test_report_records_provenance_and_the_selection_of_every_seed(trained):
    root, feats, labels, _ = trained
    report = evaluate(feats, labels, root / "det", root / "report-sel", EvalConfig(n_bootstrap=50, figures=False))
    saved = read_report(root / "report-sel" / "report.json")
    assert saved["versions"]["transformers"] and saved["versions"]["torch"] and saved["versions"]["truthtrace"]
    assert saved["machine"]["cores"] >= 1 and "cpu" in saved["machine"]
    rows = {r["detector"]: r for r in report["results"]}
    mlp = rows["mlp"]["selection"]
    assert len(mlp["layer"]["values"]) == 2 and len(mlp["epochs"]["values"]) == 2  # one choice per seed
    assert [s["selection"]["layer"] for s in rows["mlp"]["per_seed"]] == mlp["layer"]["values"]
    assert mlp["layer"]["min"] <= mlp["layer"]["mean"] <= mlp["layer"]["max"]
    assert rows["probe"]["selection"]["layer"]["values"] == [2]  # deterministic: one fit
    assert "seeds: " in format_table(report).split("| mlp |")[1].split("\n")[0]
    assert "Machine: " in (root / "report-sel" / "report.md").read_text()


def test_read_report_refuses_a_file_that_is_not_a_report(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"results": []}))
    with pytest.raises(ValueError, match="field 'format'"):
        read_report(tmp_path / "r.json")
