"""Metrics for hallucination scores: higher score = more likely hallucinated (label 1).

Every function takes ``scores`` ``(n,)`` and labels ``y`` ``(n,)`` in {0, 1}. When ``y``
holds only one class a ranking metric is undefined: the function warns and returns
NaN instead of raising, so one degenerate split does not abort a whole report.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def _prepare(scores, y) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scores, y)`` as float64 / int64 arrays after checking shapes and values."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    t = np.asarray(y).ravel()
    if s.shape != t.shape:
        raise ValueError(f"scores and y must have the same length, got {s.shape[0]} and {t.shape[0]}")
    if not np.isin(t, (0, 1)).all():
        raise ValueError("y must hold only 0 and 1")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return s, t.astype(np.int64)


def _two_classes(y: np.ndarray, what: str) -> bool:
    """True if ``y`` has both classes; otherwise warn that ``what`` is undefined."""
    if len(np.unique(y)) == 2:
        return True
    warnings.warn(f"{what} is undefined with one class in y (n={len(y)}); returning NaN", stacklevel=3)
    return False


def auroc(scores, y) -> float:
    """Area under the ROC curve; NaN (with a warning) if ``y`` has one class."""
    s, t = _prepare(scores, y)
    return float(roc_auc_score(t, s)) if _two_classes(t, "AUROC") else float("nan")


def auprc(scores, y) -> float:
    """Area under the precision-recall curve (average precision, positives = 1)."""
    s, t = _prepare(scores, y)
    return float(average_precision_score(t, s)) if _two_classes(t, "AUPRC") else float("nan")


def threshold_from_val(scores, y) -> float:
    """Threshold maximizing Youden's J (= balanced accuracy - 0.5) on validation data.

    Predict hallucinated when ``score >= threshold``. Ties go to the highest threshold.
    Returns NaN (with a warning) if ``y`` has one class.
    """
    s, t = _prepare(scores, y)
    if not _two_classes(t, "threshold"):
        return float("nan")
    fpr, tpr, thresholds = roc_curve(t, s, drop_intermediate=False)
    best = int(np.argmax(tpr - fpr))
    if not np.isfinite(thresholds[best]):
        # "flag nothing" wins; any threshold above the top score does that and stays JSON-safe
        return float(np.nextafter(s.max(), np.inf))
    return float(thresholds[best])


def accuracy_at(scores, y, threshold: float) -> float:
    """Fraction of traces where ``score >= threshold`` matches the label; NaN threshold -> NaN."""
    s, t = _prepare(scores, y)
    if np.isnan(threshold) or len(t) == 0:
        return float("nan")
    return float(np.mean((s >= threshold).astype(np.int64) == t))


def balanced_accuracy_at(scores, y, threshold: float) -> float:
    """Mean of the true-positive and true-negative rates at ``threshold``."""
    s, t = _prepare(scores, y)
    if np.isnan(threshold) or not _two_classes(t, "balanced accuracy"):
        return float("nan")
    pred = s >= threshold
    return float((pred[t == 1].mean() + (~pred[t == 0]).mean()) / 2)


def bootstrap_auroc_ci(scores, y, n: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval for the AUROC.

    Resamples traces with replacement ``n`` times (seeded); resamples with a single
    class are skipped. Returns ``(lo, hi)``, or ``(nan, nan)`` with a warning if ``y``
    has one class.
    """
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    s, t = _prepare(scores, y)
    if not _two_classes(t, "AUROC CI"):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(t), size=len(t))
        if t[idx].min() != t[idx].max():
            values.append(roc_auc_score(t[idx], s[idx]))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return float(lo), float(hi)
