"""Lookback Lens (Chuang et al., 2024): logistic regression on per-head lookback ratios.

Each trace's ``scalar.lookback`` ``(La, H)`` (for answer tokens, attention mass on the prompt
over mass on prompt + earlier answer tokens, averaged over the answer) is flattened to
``(La * H,)``, standardized with train statistics and fed to a class-balanced logistic
regression. ``C="sweep"`` picks the regularization from a small grid on validation AUROC.
The fit is saved as plain arrays in ``model.safetensors``, never pickled.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

from truthtrace import metrics
from truthtrace.detectors.base import Batch, Detector, concat_batches, load_arrays, register, save_arrays
from truthtrace.detectors.probe import PARAM_KEYS, PARAM_SHAPES, fit_logistic, logits
from truthtrace.naming import SCALAR_LOOKBACK

C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
FEATURE = SCALAR_LOOKBACK


def _flat(batches: Iterable[Batch]) -> tuple[np.ndarray, np.ndarray]:
    """Lookback ratios flattened to ``(n, La * H)`` float64, and labels ``(n,)`` (rows in trace-id order)."""
    cols = concat_batches(batches, (FEATURE, "label"), by_id=True)
    x = np.asarray(cols[FEATURE], dtype=np.float64)
    return x.reshape(len(x), -1), np.asarray(cols["label"], dtype=np.int64)


@register("lookback")
class LookbackDetector(Detector):
    """Lookback Lens: standardized logistic regression on ``scalar.lookback`` flattened.

    Args:
        C: inverse L2 strength, or ``"sweep"`` to choose it from ``C_GRID`` on validation AUROC.
        max_iter: solver iteration cap.
        random_state: solver seed.
    Raises:
        ValueError: for a bad ``C`` or ``max_iter``.
    """

    inputs = (FEATURE,)

    def __init__(self, C: float | str = "sweep", max_iter: int = 2000, random_state: int = 0):
        if C != "sweep" and not (isinstance(C, (int, float)) and C > 0):
            raise ValueError(f"C must be 'sweep' or > 0, got {C!r}")
        if max_iter <= 0:
            raise ValueError(f"max_iter must be > 0, got {max_iter}")
        self.C = C if C == "sweep" else float(C)
        self.max_iter, self.random_state = int(max_iter), int(random_state)
        self.params: dict[str, np.ndarray] | None = None
        self.state: dict = {}

    def args(self) -> dict:
        return {"C": self.C, "max_iter": self.max_iter, "random_state": self.random_state}

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Fit on ``train``; with ``C="sweep"`` keep the C with the best ``val`` AUROC (ties: smaller C).

        Returns ``{"C", "val_auroc", "val_auroc_per_C", "n_features"}``.
        Raises:
            ValueError: if train has one class.
        """
        x_tr, y_tr = _flat(train)
        x_va, y_va = _flat(val)
        if len(np.unique(y_tr[y_tr >= 0])) < 2:
            raise ValueError("lookback: the train split must contain both classes")
        known_tr, known_va = y_tr >= 0, y_va >= 0
        grid = C_GRID if self.C == "sweep" else (self.C,)
        fitted, scores = {}, {}
        for c in grid:
            fitted[c] = fit_logistic(x_tr[known_tr], y_tr[known_tr], c, self.max_iter, self.random_state)
            with warnings.catch_warnings(record=True):  # one-class val -> NaN
                scores[c] = metrics.auroc(logits(x_va[known_va], fitted[c]), y_va[known_va])
        best = max(grid, key=lambda c: (np.nan_to_num(scores[c], nan=-np.inf), -c))
        self.params = fitted[best]
        self.state = {"C": best, "val_auroc": scores[best], "val_auroc_per_C": {str(c): scores[c] for c in grid},
                      "n_features": int(x_tr.shape[1])}
        return dict(self.state)

    def score(self, batches: Iterable[Batch]) -> np.ndarray:
        """Logistic-regression logits ``(n,)`` float64."""
        if self.params is None:
            raise ValueError("lookback is not fitted; call fit() or load()")
        out = [logits(np.asarray(b[FEATURE], dtype=np.float64).reshape(len(b[FEATURE]), -1), self.params)
               for b in batches]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float64)

    def selection(self) -> dict:
        """``{"C": c}``: the regularisation chosen on validation."""
        return {"C": self.state["C"]} if "C" in self.state else {}

    def describe(self) -> str:
        """E.g. ``C=0.1 on 270 ratios``."""
        return f"C={self.state['C']:g} on {self.state['n_features']} ratios" if "C" in self.state else ""

    def save(self, out_dir: str | Path) -> None:
        """Write ``model.safetensors`` (regression arrays), then ``config.json``."""
        if self.params is None:
            raise ValueError("lookback is not fitted; nothing to save")
        save_arrays(out_dir, self, self.params, self.state)

    @classmethod
    def load(cls, out_dir: str | Path) -> "LookbackDetector":
        """Rebuild a fitted detector saved by :meth:`save`."""
        det, tensors = load_arrays(cls, out_dir, PARAM_SHAPES)
        det.params = {k: tensors[k] for k in PARAM_KEYS}
        return det
