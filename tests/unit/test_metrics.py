"""Metrics on hand-computed cases, and graceful NaN for one-class labels."""

import math

import numpy as np
import pytest

from truthtrace import metrics

# positives (1) score 0.9, 0.4; negatives 0.8, 0.1 -> pairs won: (0.9>0.8, 0.9>0.1, 0.4>0.1) = 3 of 4
SCORES = np.array([0.9, 0.8, 0.4, 0.1])
Y = np.array([1, 0, 1, 0])


def test_auroc_hand_computed():
    assert metrics.auroc(SCORES, Y) == pytest.approx(0.75)
    assert metrics.auroc([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]) == 1.0
    assert metrics.auroc([0.5, 0.5], [0, 1]) == 0.5  # ties count half


def test_auprc_hand_computed():
    # ranked: 1 (P=1/1), 0, 1 (P=2/3) -> AP = (1 + 2/3) / 2
    assert metrics.auprc(SCORES, Y) == pytest.approx((1 + 2 / 3) / 2)


def test_threshold_maximizes_youden_and_accuracy():
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    y = np.array([0, 0, 0, 1, 1, 1])
    thr = metrics.threshold_from_val(scores, y)
    assert 0.3 < thr <= 0.6
    assert metrics.accuracy_at(scores, y, thr) == 1.0
    assert metrics.accuracy_at(SCORES, Y, 0.5) == 0.5  # preds 1,1,0,0 vs 1,0,1,0
    assert metrics.balanced_accuracy_at(SCORES, Y, 0.5) == 0.5


def test_threshold_is_finite_when_flagging_nothing_is_best():
    scores, y = np.array([0.9, 0.8, 0.1, 0.2]), np.array([0, 0, 1, 1])  # anti-correlated
    thr = metrics.threshold_from_val(scores, y)
    assert math.isfinite(thr) and thr > 0.9


def test_single_class_gives_nan_with_warning():
    with pytest.warns(UserWarning, match="one class"):
        assert math.isnan(metrics.auroc([0.1, 0.2], [1, 1]))
    with pytest.warns(UserWarning):
        assert math.isnan(metrics.auprc([0.1, 0.2], [0, 0]))
    with pytest.warns(UserWarning):
        assert math.isnan(metrics.threshold_from_val([0.1, 0.2], [0, 0]))
    with pytest.warns(UserWarning):
        lo, hi = metrics.bootstrap_auroc_ci([0.1, 0.2], [0, 0], n=10)
    assert math.isnan(lo) and math.isnan(hi)
    assert math.isnan(metrics.accuracy_at([0.1], [0], float("nan")))


def test_bootstrap_ci_contains_point_estimate_and_is_deterministic():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = y + rng.normal(size=200)
    lo, hi = metrics.bootstrap_auroc_ci(s, y, n=300, seed=1)
    assert lo < metrics.auroc(s, y) < hi and 0.5 < lo and hi < 1.0
    assert (lo, hi) == metrics.bootstrap_auroc_ci(s, y, n=300, seed=1)
    assert metrics.bootstrap_auroc_ci([0, 1, 2, 3], [0, 0, 1, 1], n=50) == (1.0, 1.0)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="same length"):
        metrics.auroc([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="0 and 1"):
        metrics.auroc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="finite"):
        metrics.auroc([np.nan, 0.2], [0, 1])


def test_f1_and_tpr_at_fpr_hand_computed():
    # threshold 0.4 flags 0.9, 0.8, 0.4: tp 2, fp 1, fn 0 -> F1 = 4 / (3 + 2)
    assert metrics.f1_at(SCORES, Y, 0.4) == pytest.approx(0.8)
    # FPR 0 is reachable only above 0.8: TPR 1/2
    assert metrics.tpr_at_fpr(SCORES, Y, 0.0) == pytest.approx(0.5)
    assert metrics.tpr_at_fpr(SCORES, Y, 0.5) == pytest.approx(1.0)


def test_ece_is_zero_for_perfect_calibration_and_known_otherwise():
    y = np.array([0, 1] * 50)
    assert metrics.expected_calibration_error(np.full(100, 0.5), y) == pytest.approx(0.0)
    # all predicted 0.9 but half are positive -> |0.5 - 0.9| = 0.4
    assert metrics.expected_calibration_error(np.full(100, 0.9), y) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="probs"):
        metrics.expected_calibration_error(np.full(100, 2.0), y)


def test_platt_calibration_recovers_a_logistic_model():
    rng = np.random.default_rng(0)
    s = rng.normal(0, 2, 20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-(1.5 * s - 0.5)))).astype(int)
    a, b = metrics.platt_calibrator(s, y)
    assert a == pytest.approx(1.5, abs=0.1) and b == pytest.approx(-0.5, abs=0.1)


def test_roc_points_are_thinned_and_monotone():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 5000)
    roc = metrics.roc_points(y + rng.normal(0, 1, 5000), y, max_points=50)
    assert len(roc["fpr"]) <= 50 and roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0
    assert all(np.diff(roc["fpr"]) >= 0) and all(np.diff(roc["tpr"]) >= 0)


def test_bootstrap_mean_auroc_and_paired_difference():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 400)
    good = [y + rng.normal(0, 0.7, 400) for _ in range(3)]
    noise = [rng.normal(0, 1, 400)]
    out = metrics.bootstrap_mean_auroc(good, y, n=200, seed=0, baseline_sets=noise)
    assert out["mean"] == pytest.approx(np.mean([metrics.auroc(s, y) for s in good]))
    assert out["ci"][0] < out["mean"] < out["ci"][1]
    assert out["diff_ci"][0] > 0.2  # clearly better than chance
    again = metrics.bootstrap_mean_auroc(good, y, n=200, seed=0, baseline_sets=noise)
    assert again == out
