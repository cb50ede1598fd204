"""LLM-Check (Sriramanan et al., 2024): training-free scores read at one layer.

- ``attn_logdet``: ``scalar.attn_logdet`` ``(La,)``, the mean log of the attention diagonal
  (log-determinant of the lower-triangular attention map / T), averaged over heads;
- ``hidden_svd``: ``scalar.hidden_svd`` ``(Lh,)``, the mean log singular value of the centred
  hidden-state matrix.

Nothing is fitted: on validation the layer and the sign (whether a high or a low value
means hallucinated) with the best AUROC are chosen, and the score is ``sign * x[:, layer]``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

from truthtrace import metrics
from truthtrace.detectors.base import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    Batch,
    Detector,
    check_shapes,
    concat_batches,
    detector_from_config,
    read_weights,
    register,
    write_config,
)
from truthtrace.fileio import save_tensors_atomic
from truthtrace.naming import SCALAR_ATTN_LOGDET, SCALAR_HIDDEN_SVD


def choose_layer_and_sign(x: np.ndarray, y: np.ndarray) -> tuple[int, float, list[float]]:
    """Layer and sign maximizing the AUROC of ``sign * x[:, layer]``.

    Args:
        x: ``(n, layers)`` per-layer scalars; y: ``(n,)`` labels in {0, 1}.
    Returns:
        ``(layer, sign, auroc_per_layer)`` with the AUROCs of the + sign (the - sign gives 1 - AUROC).
        Ties go to the lower layer and the + sign.
    Raises:
        ValueError: if ``y`` has one class.
    """
    if len(np.unique(y)) < 2:
        raise ValueError("choosing a layer and sign needs both classes in the val split")
    per_layer = [metrics.auroc(x[:, j], y) for j in range(x.shape[1])]
    candidates = [(max(a, 1 - a), -j, a >= 1 - a) for j, a in enumerate(per_layer)]
    best, neg_j, positive = max(candidates)
    return -neg_j, (1.0 if positive else -1.0), per_layer


class LayerScalarDetector(Detector):
    """Score = ``sign * batch[feature][:, layer]``, layer and sign chosen on validation AUROC."""

    family = "training-free"
    feature = ""

    def __init__(self):
        self.layer_index: int | None = None
        self.sign = 1.0
        self.state: dict = {}

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Choose the layer and sign on ``val``; ``train`` is not read.

        Returns ``{"layer_index", "sign", "val_auroc", "val_auroc_per_layer"}``.
        Raises:
            ValueError: if val has one class.
        """
        cols = concat_batches(val, (self.feature, "label"))
        x, y = np.asarray(cols[self.feature], dtype=np.float64), np.asarray(cols["label"], dtype=np.int64)
        known = y >= 0
        with warnings.catch_warnings(record=True):
            layer, sign, per_layer = choose_layer_and_sign(x[known], y[known])
        self.layer_index, self.sign = layer, sign
        self.state = {"layer_index": layer, "sign": sign, "val_auroc": max(per_layer[layer], 1 - per_layer[layer]),
                      "val_auroc_per_layer": per_layer}
        return dict(self.state)

    def score(self, batches: Iterable[Batch]) -> np.ndarray:
        """Return ``sign * x[:, layer]`` ``(n,)`` float64."""
        if self.layer_index is None:
            raise ValueError(f"{self.name} is not fitted; call fit() or load()")
        out = [self.sign * self._layer(np.asarray(b[self.feature], dtype=np.float64)) for b in batches]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float64)

    def _layer(self, x: np.ndarray) -> np.ndarray:
        """Column ``layer_index`` of a ``(B, layers)`` batch; ValueError when the saved layer is not in it."""
        if x.ndim != 2 or not 0 <= self.layer_index < x.shape[1]:
            raise ValueError(f"{self.name}: the saved layer position {self.layer_index} is not in {self.feature} "
                             f"of shape {x.shape}; was it chosen on another feature store?")
        return x[:, self.layer_index]

    def selection(self) -> dict:
        """``{"layer": l, "sign": +1 or -1}`` chosen on validation."""
        return {} if self.layer_index is None else {"layer": int(self.layer_index), "sign": int(self.sign)}

    def describe(self) -> str:
        """E.g. ``layer 14, -sign (training-free: layer and sign chosen on val)``."""
        if self.layer_index is None:
            return ""
        sign = "+" if self.sign > 0 else "-"
        return f"layer {self.layer_index}, {sign}sign (training-free: layer and sign chosen on val)"

    def save(self, out_dir: str | Path) -> None:
        """Write ``model.safetensors`` (layer index and sign), then ``config.json``."""
        if self.layer_index is None:
            raise ValueError(f"{self.name} is not fitted; nothing to save")
        out = Path(out_dir)
        (out / CONFIG_FILE).unlink(missing_ok=True)
        save_tensors_atomic(out / WEIGHTS_FILE, {"layer_index": np.array([self.layer_index], dtype=np.int64),
                                                 "sign": np.array([self.sign], dtype=np.float64)})
        write_config(out, self, state=self.state)

    @classmethod
    def load(cls, out_dir: str | Path) -> "LayerScalarDetector":
        """Rebuild a detector saved by :meth:`save`; ValueError naming the file and field if it is malformed."""
        det, cfg = detector_from_config(cls, out_dir)
        tensors = read_weights(out_dir)
        check_shapes(tensors, {"layer_index": (1,), "sign": (1,)}, Path(out_dir) / WEIGHTS_FILE)
        det.layer_index, det.sign = int(tensors["layer_index"][0]), float(tensors["sign"][0])
        det.state = cfg.get("state", {})
        return det


@register("attn_logdet")
class AttnLogdetDetector(LayerScalarDetector):
    """LLM-Check attention score at one layer (training-free)."""

    feature = SCALAR_ATTN_LOGDET
    inputs = (feature,)


@register("hidden_svd")
class HiddenSVDDetector(LayerScalarDetector):
    """LLM-Check hidden-state score at one layer (training-free)."""

    feature = SCALAR_HIDDEN_SVD
    inputs = (feature,)
