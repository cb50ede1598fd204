"""Training-free baselines scored from token probabilities alone.

- ``perplexity``: score = ``-mean_logprob`` (unsure answers have low log-probs).
- ``max_entropy``: score = ``max_entropy`` (one very uncertain token is a warning sign).

``fit`` chooses nothing; it only reports the validation AUROC.
"""

from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np

from truthtrace import metrics
from truthtrace.detectors import Detector, concat_batches, register
from truthtrace.features_io import Batch


class ScalarDetector(Detector):
    """Scores each trace as ``sign * batch[feature]``; subclasses set both."""

    feature: str = ""
    sign: float = 1.0

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Report the validation AUROC; ``train`` is not read."""
        cols = concat_batches(val, (self.feature, "label"))
        with warnings.catch_warnings(record=True):  # one-class val: NaN is the answer
            val_auroc = metrics.auroc(self.sign * cols[self.feature].astype(np.float64), cols["label"])
        return {"val_auroc": val_auroc, "feature": self.feature}

    def score(self, batches: Iterable[Batch]) -> np.ndarray:
        """Return ``(n,)`` float64 scores."""
        values = [np.asarray(b[self.feature], dtype=np.float64) for b in batches]
        if not values:
            return np.zeros(0, dtype=np.float64)
        return self.sign * np.concatenate(values)


@register("perplexity")
class PerplexityDetector(ScalarDetector):
    """Hallucination score = negative mean log-prob of the answer tokens."""

    feature = "mean_logprob"
    sign = -1.0


@register("max_entropy")
class MaxEntropyDetector(ScalarDetector):
    """Hallucination score = maximum token entropy over the answer."""

    feature = "max_entropy"
    sign = 1.0
