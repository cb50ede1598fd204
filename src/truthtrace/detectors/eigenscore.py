"""EigenScore (INSIDE, Chen et al., ICLR 2024): how spread out the meanings of K sampled answers are, read
from the model's middle layer.

With ``Z = [z_1 .. z_K]`` ``(d, K)`` the sentence embeddings of the K samples (the middle-layer hidden state
of each sample's last answer token, ``sample.embeddings``), the paper's covariance and score are

    Sigma = Z^T J_d Z,    J_d = I_d - (1/d) 1_d 1_d^T          (K, K)
    EigenScore = (1/K) log det(Sigma + alpha I_K) = (1/K) sum_i log(lambda_i)

with ``lambda_i`` the eigenvalues of ``Sigma + alpha I_K`` and ``alpha = 1e-3``. As in the authors' code
(``torch.cov`` of the K embeddings), ``Sigma`` is divided by ``d - 1``; logs are natural. Consistent answers
have nearly parallel embeddings, a near-singular ``Sigma`` and a very negative score; hallucinated ones
spread out and score higher.

Feature clipping (the paper's test-time "FC"): each feature is clipped to ``[h_min, h_max]``, its bottom and
top ``clip_percentile`` % over a memory bank of up to ``memory_bank`` embeddings (3000 in the paper, 0.2%):
here the first embeddings of the train split, read without labels. ``clip_percentile=0`` turns it off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from truthtrace import metrics
from truthtrace.detectors.base import Batch, Detector, load_arrays, register, save_arrays
from truthtrace.naming import SAMPLE_EMBEDDINGS


def eigenscore(z: np.ndarray, alpha: float = 1e-3) -> float:
    """EigenScore of K embeddings ``z`` ``(K, d)``: ``(1/K) sum_i log eig_i(Z^T J_d Z / (d - 1) + alpha I)``."""
    z = np.asarray(z, dtype=np.float64)
    centred = z - z.mean(axis=1, keepdims=True)  # J_d: each embedding centred over its d features
    sigma = centred @ centred.T / (z.shape[1] - 1)  # (K, K)
    eig = np.linalg.eigvalsh(sigma + alpha * np.eye(len(z)))
    return float(np.mean(np.log(np.clip(eig, alpha * 1e-6, None))))  # clip: round-off below 0 on a rank-1 Sigma


def clip_bounds(bank: np.ndarray, percentile: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature ``(h_min, h_max)`` ``(d,)``: the ``percentile`` and ``100 - percentile`` % of ``bank`` ``(N, d)``."""
    if percentile <= 0:
        return np.full(bank.shape[1], -np.inf), np.full(bank.shape[1], np.inf)
    return np.percentile(bank, percentile, axis=0), np.percentile(bank, 100 - percentile, axis=0)


@register("eigenscore")
class EigenScoreDetector(Detector):
    """EigenScore with feature clipping (see module docstring).

    Args:
        alpha: the regularizer added to ``Sigma``'s diagonal.
        clip_percentile: clip each feature to its bottom/top percentile over the memory bank (0: off).
        memory_bank: at most this many train embeddings set the clipping bounds.
    """

    inputs = (SAMPLE_EMBEDDINGS,)
    family = "training-free"  # the clipping bounds come from unlabelled train embeddings

    def __init__(self, alpha: float = 1e-3, clip_percentile: float = 0.2, memory_bank: int = 3000):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if not 0 <= clip_percentile < 50:
            raise ValueError(f"clip_percentile must be in [0, 50), got {clip_percentile}")
        if memory_bank < 1:
            raise ValueError(f"memory_bank must be >= 1, got {memory_bank}")
        self.alpha, self.clip_percentile, self.memory_bank = float(alpha), float(clip_percentile), int(memory_bank)
        self.bounds: tuple[np.ndarray, np.ndarray] | None = None
        self.state: dict = {}

    def args(self) -> dict:
        return {"alpha": self.alpha, "clip_percentile": self.clip_percentile, "memory_bank": self.memory_bank}

    def describe(self) -> str:
        return f"clip {self.clip_percentile:g}%" if self.clip_percentile > 0 else "no clipping"

    def _bank(self, batches: Iterable[Batch]) -> np.ndarray:
        """Up to ``memory_bank`` embeddings ``(N, d)`` from ``sample.embeddings`` ``(B, K, d)`` batches."""
        rows, n = [], 0
        for b in batches:
            z = np.asarray(b[SAMPLE_EMBEDDINGS], dtype=np.float64)
            rows.append(z.reshape(-1, z.shape[-1])[: self.memory_bank - n])
            n += len(rows[-1])
            if n >= self.memory_bank:
                break
        if not rows:
            raise ValueError("eigenscore got no train batches (empty split?)")
        return np.concatenate(rows)

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Set the clipping bounds from train embeddings; report the validation AUROC."""
        self.bounds = clip_bounds(self._bank(train), self.clip_percentile)
        batches = list(val)
        y = np.concatenate([np.asarray(b["label"]) for b in batches]) if batches else np.zeros(0)
        self.state = {"val_auroc": metrics.auroc(self.score(iter(batches)), y) if len(np.unique(y)) > 1 else None}
        return dict(self.state)

    def score(self, batches: Iterable[Batch]) -> np.ndarray:
        """Return ``(n,)`` EigenScores of the clipped embeddings."""
        if self.bounds is None:
            raise ValueError("eigenscore is not fitted; call fit() or load()")
        lo, hi = self.bounds
        out = []
        for b in batches:
            z = np.clip(np.asarray(b[SAMPLE_EMBEDDINGS], dtype=np.float64), lo, hi)  # (B, K, d)
            if z.shape[-1] != len(lo):
                raise ValueError(f"eigenscore: fitted on d={len(lo)} embeddings, got {z.shape}; other samples?")
            out.append(np.array([eigenscore(zi, self.alpha) for zi in z]))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float64)

    def save(self, out_dir: str | Path) -> None:
        """Write ``model.safetensors`` (the clipping bounds), then ``config.json``."""
        if self.bounds is None:
            raise ValueError("eigenscore is not fitted; nothing to save")
        save_arrays(out_dir, self, {"clip_min": self.bounds[0], "clip_max": self.bounds[1]}, self.state)

    @classmethod
    def load(cls, out_dir: str | Path) -> "EigenScoreDetector":
        """Rebuild a fitted EigenScore detector saved by :meth:`save`."""
        det, arrays = load_arrays(cls, out_dir, {"clip_min": ("d",), "clip_max": ("d",)})
        det.bounds = (arrays["clip_min"], arrays["clip_max"])
        return det
