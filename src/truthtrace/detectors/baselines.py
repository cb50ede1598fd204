"""Training-free baselines scored from token probabilities alone.

- ``perplexity``: score = minus the mean answer log-prob (unsure answers have low log-probs).
- ``max_entropy``: score = the maximum answer-token entropy (one very uncertain token is a warning sign).

Both read one column of ``scalar.logprob_stats`` ``(B, 8)`` (see ``truthtrace.features``).

``fit`` chooses nothing; it only reports the validation AUROC.
"""

from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np

from truthtrace import metrics
from truthtrace.detectors.base import Batch, Detector, concat_batches, register
from truthtrace.naming import SCALAR_LOGPROB_STATS

STATS = SCALAR_LOGPROB_STATS


class ScalarDetector(Detector):
    """Scores each trace as ``sign * batch[STATS][:, column]``; subclasses set both."""

    inputs = (STATS,)
    family = "training-free"
    column: int = 0
    sign: float = 1.0

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Report the validation AUROC; ``train`` is not read."""
        cols = concat_batches(val, (STATS, "label"))
        with warnings.catch_warnings(record=True):  # one-class val: NaN is the answer
            val_auroc = metrics.auroc(self.sign * cols[STATS][:, self.column].astype(np.float64), cols["label"])
        return {"val_auroc": val_auroc}

    def score(self, batches: Iterable[Batch]) -> np.ndarray:
        """Return ``(n,)`` float64 scores."""
        values = [np.asarray(b[STATS], dtype=np.float64)[:, self.column] for b in batches]
        if not values:
            return np.zeros(0, dtype=np.float64)
        return self.sign * np.concatenate(values)


@register("perplexity")
class PerplexityDetector(ScalarDetector):
    """Hallucination score = negative mean log-prob of the answer tokens."""

    column = 0  # mean log-prob
    sign = -1.0


@register("max_entropy")
class MaxEntropyDetector(ScalarDetector):
    """Hallucination score = maximum token entropy over the answer."""

    column = 5  # max entropy
    sign = 1.0
