"""Metrics checked against values computed another way: by hand, by brute force, by sklearn, by a plain
bootstrap loop, and interval coverage on synthetic scores whose true AUROC is known."""

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn import metrics as sk

from truthtrace import metrics


def _brute_auroc(s, y):
    """P(score of a positive > score of a negative) + 0.5 P(tie), over every pair."""
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def test_risk_coverage_and_prr_hand_worked():
    # kept in score order: labels 0, 1, 0, 1 -> risks 0, 1/2, 1/3, 1/2; AURC = (0 + 1/2 + 1/3 + 1/2) / 4 = 1/3
    s, y = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1])
    curve = metrics.risk_coverage(s, y)
    assert curve["coverage"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert curve["risk"] == pytest.approx([0, 1 / 2, 1 / 3, 1 / 2])
    assert metrics.aurc(s, y) == pytest.approx(1 / 3)
    # random: 1/2; oracle 0, 0, 1/3, 1/2 -> 5/24; PRR = (1/2 - 1/3) / (1/2 - 5/24) = 4/7
    assert metrics.prediction_rejection_ratio(s, y) == pytest.approx(4 / 7)
    assert metrics.prediction_rejection_ratio(y, y) == pytest.approx(1.0)
    assert metrics.prediction_rejection_ratio(-y, y) < -0.9  # worst ranking
    assert metrics.prediction_rejection_ratio(np.zeros(4), y) == pytest.approx(0.0)  # all tied = random


def test_risk_coverage_ties_use_the_expected_risk():
    # one tie of 4 with 2 hallucinated: expected positives after k kept = k/2 -> risk 1/2 at every k
    assert metrics.risk_coverage(np.ones(4), [1, 0, 1, 0])["risk"] == pytest.approx([0.5] * 4)
    # the answer does not depend on the order of tied traces
    a = metrics.risk_coverage([0, 0, 1, 1], [1, 0, 0, 0])["risk"]
    b = metrics.risk_coverage([0, 0, 1, 1], [0, 1, 0, 0])["risk"]
    assert a == pytest.approx(b) and a == pytest.approx([0.5, 0.5, 1 / 3, 0.25])


def test_auroc_auprc_tpr_against_independent_computations():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(y * 0.8 + rng.normal(size=300), 1)  # rounded: many ties
    assert metrics.auroc(s, y) == pytest.approx(_brute_auroc(s, y), abs=1e-12)
    assert metrics.auprc(s, y) == pytest.approx(sk.average_precision_score(y, s))
    # TPR at FPR <= 10%, brute force over every threshold
    best = max(((s >= t)[y == 1].mean() for t in np.unique(s) if (s >= t)[y == 0].mean() <= 0.1), default=0.0)
    assert metrics.tpr_at_fpr(s, y, 0.1) == pytest.approx(best)


def test_accuracy_and_f1_against_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = y + rng.normal(size=200)
    for thr in (-0.5, 0.3, 0.9):
        pred = (s >= thr).astype(int)
        assert metrics.accuracy_at(s, y, thr) == pytest.approx(sk.accuracy_score(y, pred))
        assert metrics.f1_at(s, y, thr) == pytest.approx(sk.f1_score(y, pred))


def test_ece_hand_worked_with_two_bins():
    # bin [0.2, 0.3): p 0.2 x4, 1 positive -> |0.25 - 0.2| = 0.05, weight 0.4
    # bin [0.8, 0.9): p 0.8 x6, 3 positive -> |0.5 - 0.8| = 0.3, weight 0.6 -> ECE = 0.02 + 0.18 = 0.2
    p = np.array([0.2] * 4 + [0.8] * 6)
    y = np.array([1, 0, 0, 0] + [1, 1, 1, 0, 0, 0])
    assert metrics.expected_calibration_error(p, y) == pytest.approx(0.2)
    # one bin of everything (n_bins=1): |0.4 - 0.56| = 0.16
    assert metrics.expected_calibration_error(p, y, n_bins=1) == pytest.approx(0.16)


def test_bootstrap_equals_a_plain_bootstrap_loop():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 150)
    s = y + rng.normal(size=150)
    lo, hi = metrics.bootstrap_auroc_ci(s, y, n=300, seed=7)
    plain, r = [], np.random.default_rng(7)
    for _ in range(300):
        idx = r.integers(0, 150, 150)
        if len(set(y[idx])) == 2:
            plain.append(_brute_auroc(s[idx], y[idx]))
    assert (lo, hi) == pytest.approx(tuple(np.quantile(plain, [0.025, 0.975])), abs=1e-12)
    out = metrics.bootstrap_mean_auroc([s], y, n=300, seed=7)
    assert out["ci"] == pytest.approx([lo, hi], abs=1e-12)
    assert hi - lo > 0.05  # not degenerate on 150 traces


def _binormal(rng, n, mu):
    """Scores of ``n`` traces, half hallucinated, positives ~ N(mu, 1): true AUROC = Phi(mu / sqrt 2)."""
    y = np.arange(n) % 2
    return rng.normal(size=n) + mu * y, y


@pytest.mark.parametrize("level, lo_cov, hi_cov", [(0.95, 0.89, 0.99), (0.5, 0.4, 0.6)])
def test_bootstrap_interval_covers_the_true_auroc_at_its_level(level, lo_cov, hi_cov):
    rng = np.random.default_rng(3)
    mu = 1.0
    true_auc = norm.cdf(mu / math.sqrt(2))  # 0.760
    hits, widths = 0, []
    trials = 200
    for _ in range(trials):
        s, y = _binormal(rng, 200, mu)
        ci = metrics.bootstrap_mean_auroc([s], y, n=200, seed=int(rng.integers(1 << 30)), level=level)["ci"]
        hits += ci[0] <= true_auc <= ci[1]
        widths.append(ci[1] - ci[0])
    assert lo_cov <= hits / trials <= hi_cov, (hits, trials)
    assert 0.02 < np.mean(widths) < 0.3


def test_partial_correlation_removes_the_control():
    rng = np.random.default_rng(4)
    z = rng.normal(size=5000)
    y = z + rng.normal(size=5000)
    x_only_z = 2 * z + rng.normal(size=5000)  # related to y only through z
    assert np.corrcoef(x_only_z, y)[0, 1] > 0.5
    assert abs(metrics.partial_correlation(x_only_z, y, z)) < 0.05
    e = rng.normal(size=5000)
    x_own = z + e
    y_own = z + e + rng.normal(size=5000)  # residuals e and e + noise: correlation 1/sqrt(2)
    assert metrics.partial_correlation(x_own, y_own, z) == pytest.approx(1 / math.sqrt(2), abs=0.03)
    assert math.isnan(metrics.partial_correlation(z, y, z))  # x is the control itself


def test_stratified_auroc_hand_worked():
    s = np.array([0.9, 0.1, 0.2, 0.8, 0.5, 0.6])
    y = np.array([1, 0, 1, 0, 1, 1])
    strata = np.array([1, 1, 2, 2, 3, 3])
    out = metrics.stratified_auroc(s, y, strata)
    assert out["per_stratum"][1] == {"n": 2, "auroc": 1.0} and out["per_stratum"][2]["auroc"] == 0.0
    assert math.isnan(out["per_stratum"][3]["auroc"])  # one class
    assert out["weighted_auroc"] == pytest.approx(0.5)


def test_rank_auroc_equals_sklearn_with_ties():
    rng = np.random.default_rng(5)
    for _ in range(20):
        y = rng.integers(0, 2, 97)
        y[:2] = [0, 1]
        s = rng.integers(0, 6, 97).astype(float)  # heavy ties
        assert metrics.rank_auroc(s, y) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)


def test_average_ranks_share_ties():
    assert metrics.average_ranks([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert metrics.average_ranks([]).shape == (0,)
