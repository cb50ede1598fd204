"""Detector ``length``: the answer's length in tokens, the control every detector table should show.

Longer answers of a small model are more often wrong, and label rules such as exact match punish
length directly, so a score can look good by tracking length alone (arXiv 2508.08285). Nothing is
fitted: the sign (whether long or short means hallucinated) is chosen on validation, as for the
other training-free scores. It reads column ``n_answer_tokens`` of ``scalar.logprob_stats`` ``(B, 8)``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

from truthtrace import metrics
from truthtrace.detectors.baselines import ScalarDetector
from truthtrace.detectors.base import CONFIG_FILE, Batch, concat_batches, detector_from_config, register, write_config
from truthtrace.features.config import LOGPROB_STATS
from truthtrace.naming import SCALAR_LOGPROB_STATS

LENGTH_COLUMN = LOGPROB_STATS.index("n_answer_tokens")


@register("length")
class LengthDetector(ScalarDetector):
    """Score = ``sign * n_answer_tokens``, sign chosen on validation (+1 when it is a tie)."""

    column = LENGTH_COLUMN

    def __init__(self):
        self.sign = 1.0

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Choose the sign with the higher validation AUROC; ``train`` is not read."""
        cols = concat_batches(val, (SCALAR_LOGPROB_STATS, "label"))
        x, y = cols[SCALAR_LOGPROB_STATS][:, self.column].astype(np.float64), cols["label"]
        known = y >= 0
        with warnings.catch_warnings(record=True):  # one-class val: NaN, keep +1
            auc = metrics.auroc(x[known], y[known])
        self.sign = -1.0 if auc < 0.5 else 1.0
        return {"val_auroc": max(auc, 1 - auc) if auc == auc else auc, "sign": self.sign}

    def save(self, out_dir: str | Path) -> None:
        """``config.json`` with the chosen sign in its ``state``."""
        write_config(out_dir, self, state={"sign": self.sign})

    @classmethod
    def load(cls, out_dir: str | Path) -> "LengthDetector":
        """Rebuild it with the sign chosen on validation; ValueError naming the file for a bad sign."""
        det, cfg = detector_from_config(cls, out_dir)
        sign = cfg.get("state", {}).get("sign", 1.0)
        if sign not in (1.0, -1.0):
            raise ValueError(f"{Path(out_dir) / CONFIG_FILE}: field 'state.sign' must be 1 or -1, got {sign!r}")
        det.sign = float(sign)
        return det

    def selection(self) -> dict:
        """``{"sign": +1 or -1}``."""
        return {"sign": int(self.sign)}

    def describe(self) -> str:
        """``longer = more suspect`` or the reverse (chosen on val)."""
        return f"{'longer' if self.sign > 0 else 'shorter'} = more suspect (sign chosen on val)"
