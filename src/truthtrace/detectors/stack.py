"""Detector ``stack``: a logistic regression over the other detectors' scores, fitted on validation only.

Probes, entropies and perplexity read different signals; whether combining them helps is a question
the report answers (``evaluate`` grades ``stack`` beside its members and gives the paired interval
against the best one). The members are the other detectors saved in the same ``train`` output (their
first seed). Scores are standardized with the validation mean and sd, then combined by an
L2-regularized logistic regression fitted on the validation split; nothing of the test split is read.

``train`` cannot fit it (it needs the members' validation scores, which exist only once they are
trained): ``train --detectors stack`` saves it unfitted and ``evaluate`` fits and saves it
(``<detectors>/stack/seed-0/config.json``), after which it loads and scores like any detector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from truthtrace.detectors.base import CONFIG_FILE, Batch, Detector, detector_from_config, load_detector, register
from truthtrace.detectors.base import write_config
from truthtrace.naming import SCALAR_LOGPROB_STATS


@register("stack")
class StackDetector(Detector):
    """Score = logistic regression (logit) over standardized member scores; see the module docstring."""

    inputs = (SCALAR_LOGPROB_STATS,)  # replaced by the members' inputs once they are loaded
    family = "learned"

    def __init__(self, members: Sequence[str] = (), C: float = 1.0):
        if C <= 0:
            raise ValueError(f"C must be > 0, got {C}")
        self.members, self.C = list(members), float(C)
        self.state: dict = {}
        self.member_detectors: list[Detector] = []

    def args(self) -> dict:
        """``{"members": [...], "C": ...}``."""
        return {"members": list(self.members), "C": self.C}

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Nothing to fit here (see the module docstring): ``evaluate`` fits it from the members' scores."""
        return {"note": "fitted by `truthtrace evaluate` on the other detectors' validation scores"}

    def fit_scores(self, names: Sequence[str], val_scores: np.ndarray, y: np.ndarray) -> dict:
        """Fit on member validation scores ``(n, m)`` (columns in the order of ``names``) and labels ``(n,)``.

        Returns ``{"coef": {name: weight}, "val_auroc"}`` (weights on standardized scores).
        Raises:
            ValueError: shapes that do not fit, or one class only.
        """
        from sklearn.linear_model import LogisticRegression

        x, t = np.asarray(val_scores, np.float64), np.asarray(y, np.int64)
        if x.ndim != 2 or x.shape != (len(t), len(names)) or len(np.unique(t)) < 2:
            raise ValueError(f"stack: need (n, {len(names)}) finite scores and both classes, got {x.shape}")
        mu, sd = x.mean(0), x.std(0)
        sd[sd == 0] = 1.0
        clf = LogisticRegression(C=self.C, max_iter=2000).fit((x - mu) / sd, t)
        self.members = list(names)
        self.state = {"mu": mu.tolist(), "sd": sd.tolist(), "coef": clf.coef_[0].tolist(),
                      "intercept": float(clf.intercept_[0])}
        return {"coef": dict(zip(names, self.state["coef"]))}

    def combine(self, member_scores: np.ndarray) -> np.ndarray:
        """Stack logits ``(n,)`` from member scores ``(n, m)`` in the order of ``members``."""
        if not self.state:
            raise ValueError("stack is not fitted: run `truthtrace evaluate` on its train output first")
        x = np.asarray(member_scores, np.float64)
        st = self.state
        return ((x - np.asarray(st["mu"])) / np.asarray(st["sd"])) @ np.asarray(st["coef"]) + st["intercept"]

    def score(self, batches: Iterable[Batch]) -> np.ndarray:
        """Score every member on the same batches and combine them: ``(n,)`` float64."""
        if not self.member_detectors:
            raise ValueError("stack: members are not loaded (load it with load_detector)")
        batches = list(batches)
        cols = [d.score(iter(batches)) for d in self.member_detectors]
        return self.combine(np.stack(cols, axis=1)) if batches else np.zeros(0)

    def describe(self) -> str:
        """E.g. ``LR over probe +1.21, max_entropy +0.40`` (standardized weights, largest first)."""
        if not self.state:
            return "not fitted"
        pairs = sorted(zip(self.members, self.state["coef"]), key=lambda p: -abs(p[1]))
        return "LR over " + ", ".join(f"{n} {w:+.2f}" for n, w in pairs)

    def save(self, out_dir: str | Path) -> None:
        """``config.json`` only: the weights are a few numbers kept in its ``state``."""
        write_config(out_dir, self, state=self.state)

    @classmethod
    def load(cls, out_dir: str | Path) -> "StackDetector":
        """Rebuild it and load its members from the same ``train`` output (``<run>/<member>/seed-<lowest>``).

        Raises:
            ValueError: a member is missing there (named).
        """
        det, cfg = detector_from_config(cls, out_dir)
        det.state = cfg.get("state", {})
        run = Path(out_dir).resolve().parent.parent
        for name in det.members:
            seeds = sorted((run / name).glob(f"seed-*/{CONFIG_FILE}"), key=lambda p: int(p.parent.name[5:]))
            if not seeds:
                raise ValueError(f"{Path(out_dir) / CONFIG_FILE}: member detector {name!r} is not saved in {run}")
            det.member_detectors.append(load_detector(seeds[0].parent))
        if det.member_detectors:
            det.inputs = tuple(dict.fromkeys(k for d in det.member_detectors for k in d.inputs))
        return det
