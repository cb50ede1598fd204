"""Calibration saved with each detector: Platt and isotonic maps fitted on validation."""

import json

import numpy as np
import pytest
from planted_store import make_planted_store
from sklearn.isotonic import IsotonicRegression

from truthtrace.detectors.calibration import calibrate, fit_calibration, read_calibration, write_calibration
from truthtrace.detectors.train import TrainConfig, train
from truthtrace.features import PreprocessConfig, preprocess


def planted_scores(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return rng.normal(2.0 * y - 1.0, 1.0), y


def test_isotonic_map_equals_sklearn_predict():
    s, y = planted_scores()
    doc = fit_calibration(s, y)
    probe = np.linspace(-5, 5, 101)
    want = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, y).predict(probe)
    np.testing.assert_allclose(calibrate(doc, probe, "isotonic"), want, atol=1e-12)


def test_platt_probabilities_are_monotone_and_calibrated():
    s, y = planted_scores(4000)
    p = calibrate(fit_calibration(s, y), s, "platt")
    assert np.all(np.diff(p[np.argsort(s)]) >= 0)
    for lo in (0.2, 0.5, 0.8):  # within a bin, the rate of label 1 is close to the predicted probability
        sel = (p > lo - 0.05) & (p < lo + 0.05)
        assert abs(y[sel].mean() - lo) < 0.08


def test_one_class_has_no_map():
    doc = fit_calibration(np.arange(5.0), np.ones(5))
    assert doc["platt"] is None and calibrate(doc, np.arange(3.0)) is None


def test_round_trip_and_malformed_file(tmp_path):
    s, y = planted_scores()
    write_calibration(tmp_path, fit_calibration(s, y))
    doc = read_calibration(tmp_path)
    np.testing.assert_allclose(calibrate(doc, s), calibrate(fit_calibration(s, y), s))
    raw = json.loads((tmp_path / "calibration.json").read_text())
    raw["isotonic"]["y"] = raw["isotonic"]["y"][:-1]
    (tmp_path / "calibration.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="calibration.json: field 'isotonic'"):
        read_calibration(tmp_path)
    with pytest.raises(ValueError, match="method"):
        calibrate(doc, s, "beta")


def test_train_saves_a_calibration_per_detector(tmp_path):
    store, labels = make_planted_store(tmp_path / "traces", n=64, layers=2, heads=2, d=8, seed=0)
    preprocess(store, tmp_path / "feats", PreprocessConfig(graphs=False), labels=labels, progress=False)
    train(tmp_path / "feats", labels, tmp_path / "det", TrainConfig(detectors=("probe", "perplexity"), seeds=(0,)),
          progress=False)
    for name in ("probe", "perplexity"):
        doc = read_calibration(tmp_path / "det" / name / "seed-0")
        assert doc["n_val"] > 0 and doc["platt"] is not None
    (tmp_path / "det" / "probe" / "seed-0" / "calibration.json").unlink()  # trained before calibration existed
    summary = train(tmp_path / "feats", labels, tmp_path / "det", TrainConfig(detectors=("probe",), seeds=(0,)),
                    progress=False)
    assert summary["detectors"]["probe"]["seed-0"] == {"skipped": "already trained"}
    assert read_calibration(tmp_path / "det" / "probe" / "seed-0") is not None
