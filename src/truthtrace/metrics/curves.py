"""Curves and controls beyond a single ranking number: risk-coverage, AURC and PRR (selective prediction),
reliability bins (calibration), the partial correlation given a control variable and AUROC within strata.

Same conventions as :mod:`truthtrace.metrics.scores`: ``scores`` ``(n,)``, higher = more likely hallucinated,
labels ``y`` ``(n,)`` in {0, 1}; undefined values are NaN with a warning.
"""

from __future__ import annotations

import numpy as np

from truthtrace.metrics.scores import check_scores, has_two_classes, sklearn_metrics


def risk_coverage(scores, y) -> dict[str, np.ndarray]:
    """Risk-coverage curve: keep the ``k`` least suspicious traces, the share of them hallucinated.

    Traces are kept in increasing ``scores`` (lowest = most trusted first). Tied scores are kept as
    a group in random order, so within a tie the expected risk is used: it grows linearly with the
    group's hallucination rate (the answer does not depend on how ties happen to be ordered).

    Args:
        scores: ``(n,)`` higher = more likely hallucinated.
        y: ``(n,)`` labels, 1 = hallucinated.
    Returns:
        ``{"coverage": (n,), "risk": (n,)}`` with ``coverage[k-1] = k / n`` and ``risk[k-1]`` the
        expected hallucination rate among the ``k`` kept traces; empty arrays for ``n = 0``.
    """
    s, t = check_scores(scores, y)
    n = len(t)
    if n == 0:
        return {"coverage": np.zeros(0), "risk": np.zeros(0)}
    order = np.argsort(s, kind="stable")
    s, t = s[order], t[order].astype(np.float64)
    starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    ends = np.concatenate([starts[1:], [n]])
    cum = np.empty(n)
    before = 0.0
    for a, b in zip(starts, ends):  # expected positives kept after k traces, linear inside a tie
        rate = t[a:b].mean()
        cum[a:b] = before + rate * np.arange(1, b - a + 1)
        before += t[a:b].sum()
    k = np.arange(1, n + 1)
    return {"coverage": k / n, "risk": cum / k}


def aurc(scores, y) -> float:
    """Area under the risk-coverage curve (mean risk over ``k = 1..n`` kept traces); lower is better."""
    curve = risk_coverage(scores, y)
    return float(curve["risk"].mean()) if len(curve["risk"]) else float("nan")


def prediction_rejection_ratio(scores, y) -> float:
    """PRR (lm-polygraph): how much of the oracle's risk-coverage gain over random the scores get.

    ``PRR = (AURC_random - AURC) / (AURC_random - AURC_oracle)``, with the random ranking's AURC equal
    to the hallucination rate and the oracle ranking all correct answers first. 1 = oracle, 0 = random,
    < 0 = worse than random. Equivalent to lm-polygraph's ratio of prediction-rejection areas with
    quality = 1 - label. NaN (with a warning) when ``y`` has one class.
    """
    s, t = check_scores(scores, y)
    if not has_two_classes(t, "PRR"):
        return float("nan")
    random_aurc, oracle_aurc = float(t.mean()), aurc(t, t)
    return float((random_aurc - aurc(s, t)) / (random_aurc - oracle_aurc))


def partial_correlation(x, y, z) -> float:
    """Pearson correlation of ``x`` and ``y`` after removing the linear effect of ``z`` from both.

    Args:
        x: ``(n,)`` e.g. a detector's scores.
        y: ``(n,)`` e.g. the labels.
        z: ``(n,)`` or ``(n, k)`` control variables, e.g. answer length in tokens.
    Returns:
        the partial correlation in [-1, 1]; NaN when a residual is constant (``z`` explains it fully).
    """
    xv, yv = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    zv = np.asarray(z, np.float64).reshape(len(xv), -1)
    if len(yv) != len(xv):
        raise ValueError(f"x and y must have the same length, got {len(xv)} and {len(yv)}")
    design = np.column_stack([np.ones(len(xv)), zv])  # (n, 1 + k)
    rx = xv - design @ np.linalg.lstsq(design, xv, rcond=None)[0]
    ry = yv - design @ np.linalg.lstsq(design, yv, rcond=None)[0]
    denom = np.sqrt((rx @ rx) * (ry @ ry))
    return float(rx @ ry / denom) if denom > 1e-12 * max(len(xv), 1) else float("nan")


def stratified_auroc(scores, y, strata) -> dict:
    """AUROC inside each stratum (e.g. an answer-length bin), and their size-weighted mean.

    Args:
        scores, y: ``(n,)``.
        strata: ``(n,)`` stratum of each trace (any hashable values).
    Returns:
        ``{"per_stratum": {stratum: {"n", "auroc"}}, "weighted_auroc"}``; a one-class stratum has AUROC NaN
        and is left out of the weighted mean (NaN when no stratum has both classes).
    """
    s, t = check_scores(scores, y)
    g = np.asarray(strata).ravel()
    if len(g) != len(t):
        raise ValueError(f"strata must have one entry per score, got {len(g)} for {len(t)}")
    out, num, den = {}, 0.0, 0
    for value in np.unique(g):
        m = g == value
        ok = len(np.unique(t[m])) == 2
        auc = float(sklearn_metrics().roc_auc_score(t[m], s[m])) if ok else float("nan")
        out[value.item() if hasattr(value, "item") else value] = {"n": int(m.sum()), "auroc": auc}
        if ok:
            num, den = num + auc * m.sum(), den + int(m.sum())
    return {"per_stratum": out, "weighted_auroc": float(num / den) if den else float("nan")}


def reliability_bins(probs, y, n_bins: int = 10) -> list[dict]:
    """The reliability diagram behind :func:`expected_calibration_error`: one entry per non-empty bin.

    Args:
        probs: ``(n,)`` predicted P(label 1) in [0, 1].
        y: ``(n,)`` labels.
        n_bins: equal-width bins of [0, 1] (the last one closed).
    Returns:
        ``[{"lo", "hi", "n", "mean_p", "rate"}]``: the bin's edges, size, mean prediction and observed rate;
        ``sum(n / N * |rate - mean_p|)`` is the ECE.
    """
    p, t = check_scores(probs, y)
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError("probs must lie in [0, 1]")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    return [{"lo": b / n_bins, "hi": (b + 1) / n_bins, "n": int((bins == b).sum()),
             "mean_p": float(p[bins == b].mean()), "rate": float(t[bins == b].mean())} for b in np.unique(bins)]
