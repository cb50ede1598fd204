"""Semantic Entropy Probes (Kossen et al., 2024): a linear probe on one layer's hidden state that predicts
whether semantic entropy is high, so at inference it costs one forward pass and no samples.

Training reads the samples only for the target: each train trace's semantic entropy
(:func:`truthtrace.detectors.sampled.semantic_entropy`, discrete) is binarised at the threshold that best
splits the train values in two (the least within-group squared error, as the paper does). One
logistic regression is fit per position (``seq.last_prompt``, the token before the answer, and
``seq.last_answer``) and layer; the one that predicts the binarised entropy of validation best (AUROC) is
kept: no correctness label is used to fit or choose it. The score is the probe's logit.

After fitting (and on load) the detector reads its one ``seq.*`` key only, so it scores traces of a feature
store without samples, and live.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

from truthtrace import metrics
from truthtrace.detectors.base import Batch, Detector, id_order, load_arrays, register, save_arrays
from truthtrace.detectors.probe import PARAM_KEYS, PARAM_SHAPES, fit_logistic, logits
from truthtrace.detectors.sampled import semantic_entropy
from truthtrace.naming import SAMPLE_CLUSTER_IDS, SEQ_LAST_ANSWER, SEQ_LAST_PROMPT

POSITIONS = (SEQ_LAST_PROMPT, SEQ_LAST_ANSWER)


def best_split(values: np.ndarray) -> float:
    """The threshold ``t`` minimizing the squared error of ``values <= t`` and ``> t`` about their means.

    Raises:
        ValueError: fewer than two distinct values (nothing to split).
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    cands = np.unique(v)[:-1]
    if len(cands) == 0:
        raise ValueError("sep: semantic entropy is the same on every train trace; nothing to learn")

    def sse(t: float) -> float:
        lo, hi = v[v <= t], v[v > t]
        return float(((lo - lo.mean()) ** 2).sum() + ((hi - hi.mean()) ** 2).sum())

    return float(min(cands, key=sse))


def _collect(batches: Iterable[Batch]) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """``({position: (n, L+1, d)}, semantic entropy (n,), labels (n,))`` of the batches, rows in trace-id order
    when the batches carry ids (:func:`~truthtrace.detectors.base.id_order`)."""
    seqs: dict[str, list] = {p: [] for p in POSITIONS}
    se, labels, ids = [], [], []
    for b in batches:
        ids.append(b.get("trace_id"))
        for p in POSITIONS:
            seqs[p].append(np.asarray(b[p], dtype=np.float32))
        se.extend(semantic_entropy(ids) for ids in np.asarray(b[SAMPLE_CLUSTER_IDS]))
        labels.append(np.asarray(b["label"]))
    if not labels:
        raise ValueError("sep got no batches (empty split?)")
    x, se, y = {p: np.concatenate(v) for p, v in seqs.items()}, np.asarray(se), np.concatenate(labels)
    order = id_order(ids)
    if order is None:
        return x, se, y
    return {p: v[order] for p, v in x.items()}, se[order], y[order]


@register("sep")
class SepDetector(Detector):
    """Semantic Entropy Probe (see module docstring).

    Args:
        C: inverse L2 strength of the logistic regression (as ``probe``'s).
        max_iter: solver iteration cap.
        random_state: solver seed.
    """

    inputs = (SEQ_LAST_PROMPT, SEQ_LAST_ANSWER, SAMPLE_CLUSTER_IDS)

    def __init__(self, C: float = 0.01, max_iter: int = 1000, random_state: int = 0):
        if not C > 0:
            raise ValueError(f"C must be > 0, got {C}")
        if max_iter <= 0:
            raise ValueError(f"max_iter must be > 0, got {max_iter}")
        self.C, self.max_iter, self.random_state = float(C), int(max_iter), int(random_state)
        self.params: dict[str, np.ndarray] | None = None
        self.layer_index: int | None = None
        self.state: dict = {}

    def args(self) -> dict:
        return {"C": self.C, "max_iter": self.max_iter, "random_state": self.random_state}

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Fit a probe per (position, layer) on train's binarised semantic entropy; keep the best on val's.

        Returns ``{"position", "layer", "se_threshold", "val_se_auroc", "val_auroc"}`` (``val_auroc``: against
        the hallucination labels, reported only).
        """
        x_tr, se_tr, _ = _collect(train)
        x_va, se_va, y_va = _collect(val)
        thr = best_split(se_tr)
        t_tr, t_va = (se_tr > thr).astype(np.int64), (se_va > thr).astype(np.int64)
        fitted, scores = {}, {}
        for p in POSITIONS:
            for layer in range(x_tr[p].shape[1]):
                fitted[(p, layer)] = fit_logistic(x_tr[p][:, layer], t_tr, self.C, self.max_iter, self.random_state)
                with warnings.catch_warnings(record=True):  # one-class val target: NaN ranks last
                    scores[(p, layer)] = metrics.auroc(logits(x_va[p][:, layer], fitted[(p, layer)]), t_va)
        best = max(scores, key=lambda k: (np.nan_to_num(scores[k], nan=-np.inf), -POSITIONS.index(k[0]), -k[1]))
        self.params, self.layer_index = fitted[best], best[1]
        self._use(best[0])
        with warnings.catch_warnings(record=True):
            val_auroc = metrics.auroc(logits(x_va[best[0]][:, best[1]], self.params), y_va)
        self.state = {"position": best[0], "layer": best[1], "se_threshold": thr, "val_se_auroc": scores[best],
                      "val_auroc": val_auroc, "train_high_se": float(t_tr.mean())}
        return dict(self.state)

    def _use(self, position: str) -> None:
        """Read only ``position`` from now on: scoring needs no samples."""
        self.position, self.inputs = position, (position,)

    def selection(self) -> dict:
        """``{"layer": l}``: the layer chosen on validation."""
        return {"layer": self.state["layer"]} if "layer" in self.state else {}

    def describe(self) -> str:
        """E.g. ``seq.last_prompt layer 12``."""
        return f"{self.state['position']} layer {self.state['layer']}" if "layer" in self.state else ""

    def score(self, batches: Iterable[Batch]) -> np.ndarray:
        """Probe logits ``(n,)``: higher means high semantic entropy is predicted."""
        if self.params is None:
            raise ValueError("sep is not fitted; call fit() or load()")
        out = [logits(np.asarray(b[self.position], dtype=np.float32)[:, self.layer_index], self.params)
               for b in batches]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float64)

    def save(self, out_dir: str | Path) -> None:
        """Write ``model.safetensors`` (probe arrays), then ``config.json``."""
        if self.params is None:
            raise ValueError("sep is not fitted; nothing to save")
        tensors = {**self.params, "layer_index": np.array([self.layer_index], dtype=np.int64)}
        save_arrays(out_dir, self, tensors, self.state)

    @classmethod
    def load(cls, out_dir: str | Path) -> "SepDetector":
        """Rebuild a fitted SEP saved by :meth:`save`."""
        det, tensors = load_arrays(cls, out_dir, {**PARAM_SHAPES, "layer_index": (1,)})
        det.params = {k: tensors[k] for k in PARAM_KEYS}
        det.layer_index = int(tensors["layer_index"][0])
        if det.state.get("position") not in POSITIONS:
            raise ValueError(f"{out_dir}: field 'state.position' must be one of {POSITIONS}; retrain it")
        det._use(det.state["position"])
        return det
