"""The report's extra sections on synthetic stores with known answers: label rules, the length control,
calibration before/after, the stack, and a weak planted signal whose intervals are not degenerate."""

import numpy as np
import pytest
from planted_store import make_planted_store

from truthtrace import metrics
from truthtrace.cli import main
from truthtrace.detectors import load_detector
from truthtrace.detectors.length import LengthDetector
from truthtrace.detectors.stack import StackDetector
from truthtrace.detectors.train import TrainConfig, train
from truthtrace.evaluation.evaluate import EvalConfig, evaluate
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.features.dataset import FeatureDataset, make_loader
from truthtrace.labels.io import read_labels, write_labels

CHEAP = ("probe", "perplexity", "max_entropy", "length")


def _store(root, n=160, d=16, shift=3.0, seed=0):
    store, labels = make_planted_store(root / "t", n=n, layers=3, heads=2, d=d, seed=seed, shift=shift)
    feats = root / "feats"
    preprocess(store, feats, PreprocessConfig(graphs=False), labels=labels, progress=False)
    return feats, labels


def _lengths(feats) -> dict:
    ds = FeatureDataset(feats, split=None, keys=("scalar.logprob_stats",))
    return {t: float(s[7]) for b in make_loader(ds, batch_size=256, num_workers=0)
            for t, s in zip(b["trace_id"], np.asarray(b["scalar.logprob_stats"]))}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A planted store whose labels.csv answers differ so the rules disagree, trained on the cheap detectors."""
    root = tmp_path_factory.mktemp("sections")
    feats, labels = _store(root)
    rows = read_labels(labels)
    for i, row in enumerate(rows.values()):  # correct answers "yes": every 3rd says "yes indeed" (contains, not exact)
        if row["hallucinated"] == 0 and i % 3 == 0:
            row["generation"] = "yes indeed"
    write_labels(rows.values(), labels)
    train(feats, labels, root / "det", TrainConfig(detectors=CHEAP), progress=False)
    return root, feats, labels


def test_label_rules_grade_every_detector_under_each_rule(planted):
    root, feats, labels = planted
    rules = ("contains_or_exact", "exact", "f1:0.5", "rougeL:0.9")
    report = evaluate(feats, labels, root / "det", root / "rep", EvalConfig(n_bootstrap=100, label_rules=rules))
    sec = report["label_rules"]
    assert sec["rules"] == list(rules) and set(sec["auroc"]) == set(CHEAP) | {"stack"}
    rows = {r["detector"]: r for r in report["results"]}
    # the labels file's own rule gives the main table's AUROC
    assert sec["auroc"]["probe"]["contains_or_exact"]["auroc"] == pytest.approx(rows["probe"]["test_auroc"])
    # exact match counts "yes indeed" wrong: more hallucinations, and the probe (trained on contains) loses AUROC
    test_ids = set(__import__("json").loads((feats / "split.json").read_text())["test"])
    stored = read_labels(labels)
    n_exact_wrong = sum(1 for t in test_ids if stored[t]["generation"] != "yes")
    assert sec["hallucination_rate"]["exact"] == pytest.approx(n_exact_wrong / len(test_ids))
    assert sec["hallucination_rate"]["exact"] > sec["hallucination_rate"]["contains_or_exact"]
    assert sec["auroc"]["probe"]["exact"]["auroc"] < sec["auroc"]["probe"]["contains_or_exact"]["auroc"]
    assert sec["hallucination_rate"]["f1:0.5"] == sec["hallucination_rate"]["contains_or_exact"]  # F1 2/3
    assert sec["hallucination_rate"]["rougeL:0.9"] == sec["hallucination_rate"]["exact"]
    md = (root / "rep" / "report.md").read_text()
    assert "## AUROC under each label rule" in md and "rougeL:0.9" in md


def test_judge_rule_is_refused_without_a_model(planted, capsys):
    root, feats, labels = planted
    with pytest.raises(ValueError, match="judge_model"):
        EvalConfig(label_rules=("exact", "judge"))
    code = main(["evaluate", "--features", str(feats), "--labels", str(labels), "--detectors-dir", str(root / "det"),
                 "--out", str(root / "x"), "--label-rules", "exact,judge"])
    assert code == 2 and "--judge-model" in capsys.readouterr().err


def test_length_detector_chooses_its_sign_on_val_and_round_trips(planted, tmp_path):
    root, feats, labels = planted
    det = load_detector(root / "det" / "length" / "seed-0")
    assert isinstance(det, LengthDetector) and det.sign in (1.0, -1.0)
    lengths = _lengths(feats)
    ds = FeatureDataset(feats, split="test", labels=labels, keys=det.inputs)
    batches = list(make_loader(ds, batch_size=16, num_workers=0))
    ids = [t for b in batches for t in b["trace_id"]]
    assert det.score(iter(batches)).tolist() == [det.sign * lengths[t] for t in ids]
    flipped = LengthDetector()
    flipped.sign = -det.sign
    flipped.save(tmp_path)
    assert load_detector(tmp_path).sign == -det.sign


def test_length_control_sees_through_a_length_driven_label(tmp_path):
    """Labels = long answer (4 tokens), 20% flipped: length wins overall, but inside a length stratum it is 0.5."""
    feats, labels = _store(tmp_path, n=200)
    lengths = _lengths(feats)
    rows = read_labels(labels)
    rng = np.random.default_rng(0)
    for t, row in rows.items():
        h = int(lengths[t] >= 4) ^ int(rng.random() < 0.2)
        row.update(hallucinated=h, correct=1 - h)
    write_labels(rows.values(), labels)
    train(feats, labels, tmp_path / "det", TrainConfig(detectors=("length", "perplexity")), progress=False)
    report = evaluate(feats, labels, tmp_path / "det", tmp_path / "rep", EvalConfig(n_bootstrap=50, figures=False))
    rows = {r["detector"]: r for r in report["results"]}
    assert rows["length"]["test_auroc"] > 0.7
    lc = report["length_control"]
    assert lc["length_auroc"] == pytest.approx(rows["length"]["test_auroc"])
    within = lc["detectors"]["length"]["within_auroc"]
    assert within and all(v in (0.5, None) for v in within.values())  # constant inside a stratum (None: one class)
    assert 0.5 in within.values()
    assert lc["detectors"]["length"]["partial_corr"] is None  # NaN in the report: nothing left once length is out
    assert abs(lc["detectors"]["perplexity"]["partial_corr"]) < 0.35  # noise


def test_calibration_section_matches_its_reliability_bins(planted):
    root, feats, labels = planted
    report = evaluate(feats, labels, root / "det", root / "rep-cal", EvalConfig(n_bootstrap=50))
    cal = report["calibration"]
    assert set(cal) == set(CHEAP) | {"stack"}
    for entry in cal.values():
        assert entry["source"] == "calibration.json" and set(entry["ece"]) == {"raw", "platt", "isotonic"}
        for method, bins in entry["bins"].items():
            n = sum(b["n"] for b in bins)
            ece = sum(b["n"] / n * abs(b["rate"] - b["mean_p"]) for b in bins)
            assert entry["ece"][method] == pytest.approx(ece)
    rows = {r["detector"]: r for r in report["results"]}
    assert cal["probe"]["ece"]["platt"] == pytest.approx(rows["probe"]["test_ece"])  # one seed: the row's ECE
    assert (root / "rep-cal" / "reliability.png").is_file() and (root / "rep-cal" / "risk_coverage.png").is_file()
    assert all(r["test_prr"] is not None and -1 <= r["test_prr"] <= 1 for r in report["results"])


def test_stack_combines_two_weak_views_and_saves_a_loadable_detector(planted):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    views = np.stack([y + rng.normal(0, 1.5, 2000), y + rng.normal(0, 1.5, 2000)], axis=1)  # independent noise
    det = StackDetector()
    det.fit_scores(["a", "b"], views[:1000], y[:1000])
    s = det.combine(views[1000:])
    single = max(metrics.auroc(views[1000:, j], y[1000:]) for j in range(2))
    assert metrics.auroc(s, y[1000:]) > single + 0.03
    # evaluate's stack: saved beside the members, loads and scores the test split like its report row
    root, feats, labels = planted
    report = evaluate(feats, labels, root / "det", root / "rep-stack", EvalConfig(n_bootstrap=50, figures=False))
    st = report["stack"]
    assert set(st["members"]) == set(CHEAP) and st["best_member"] in CHEAP and "difference_ci" in st
    loaded = load_detector(root / "det" / "stack" / "seed-0")
    ds = FeatureDataset(feats, split="test", labels=labels, keys=loaded.inputs)
    ys = np.concatenate([b["label"] for b in make_loader(ds, batch_size=32, num_workers=0)])
    scores = loaded.score(iter(make_loader(ds, batch_size=32, num_workers=0)))
    row = next(r for r in report["results"] if r["detector"] == "stack")
    assert metrics.auroc(scores, ys) == pytest.approx(row["test_auroc"])


def test_weak_signal_over_many_features_needs_the_detector_and_gives_real_intervals(tmp_path):
    """The planted shift is spread over 128 coordinates: one raw coordinate is near chance, the probe is not,
    and on 90 test traces the bootstrap interval has width."""
    feats, labels = _store(tmp_path, n=600, d=128, shift=1.8)
    train(feats, labels, tmp_path / "det", TrainConfig(detectors=("probe", "max_entropy")), progress=False)
    report = evaluate(feats, labels, tmp_path / "det", tmp_path / "rep", EvalConfig(n_bootstrap=300, figures=False))
    probe = next(r for r in report["results"] if r["detector"] == "probe")
    # best single coordinate of the planted layer, chosen on train, graded on test
    split = __import__("json").loads((feats / "split.json").read_text())

    def arrays(which):
        ds = FeatureDataset(feats, split=which, labels=labels, keys=("seq.last_answer",))
        b = list(make_loader(ds, batch_size=1000, num_workers=0))
        x = np.concatenate([np.asarray(part["seq.last_answer"])[:, 2] for part in b])  # (n, d) planted layer
        return x, np.concatenate([part["label"] for part in b])

    x_tr, y_tr = arrays("train")
    x_te, y_te = arrays("test")
    train_auc = [metrics.auroc(x_tr[:, j], y_tr) for j in range(64)]
    j = int(np.argmax(np.abs(np.array(train_auc) - 0.5)))
    one = metrics.auroc(np.sign(train_auc[j] - 0.5) * x_te[:, j], y_te)
    assert np.mean(np.abs(np.array(train_auc) - 0.5)) < 0.06  # a typical coordinate is at chance
    assert len(split["test"]) >= 80 and one < 0.7, one
    assert probe["test_auroc"] > 0.8 and probe["test_auroc"] > one + 0.15
    lo, hi = probe["test_auroc_ci"]
    assert lo < probe["test_auroc"] < hi and 0.04 < hi - lo < 0.3 and hi < 1.0
    cmp = report["comparison"]
    assert cmp["best_learned"] == "probe" and cmp["difference_ci"][0] > 0


def test_judge_rule_through_evaluate_with_a_tiny_local_model(planted, tiny_model, tiny_tokenizer, tmp_path):
    """Plumbing only (a random model's verdicts mean nothing): the judge column is there, from --judge-model DIR."""
    root, feats, labels = planted
    tiny_model.save_pretrained(tmp_path / "judge")
    tiny_tokenizer.save_pretrained(tmp_path / "judge")
    cfg = EvalConfig(n_bootstrap=20, figures=False, stack=False, label_rules=("exact", "judge"),
                     judge_model=str(tmp_path / "judge"))
    report = evaluate(feats, labels, root / "det", tmp_path / "rep", cfg)
    sec = report["label_rules"]
    assert sec["rules"] == ["exact", "judge"] and sec["n"]["judge"] == sec["n"]["exact"] == 24
    assert set(sec["auroc"]["probe"]) == {"exact", "judge"}
    assert "judge (n 24" in (tmp_path / "rep" / "report.md").read_text()


def test_run_checks_its_evaluation_options_before_extracting():
    from truthtrace.pipeline import RunConfig

    assert RunConfig().label_rules == ("contains_or_exact", "exact", "f1:0.5", "rougeL:0.5")
    assert "length" in RunConfig().detectors
    with pytest.raises(ValueError, match="judge_model"):
        RunConfig(label_rules=("exact", "judge"))
    with pytest.raises(ValueError, match="split"):
        RunConfig(split="topic")
    assert RunConfig(label_rules=("judge",), judge_model="some/dir").label_rules == ("judge",)
