"""A (bi-)LSTM reading the layer sequence of one token's hidden states, with attention pooling.

Each layer's vector ``(d,)`` is standardized with that layer's train statistics, projected to
``proj`` features, and the sequence over layers ``(Lh, proj)`` is read by an LSTM; a learned
softmax over layers pools the outputs into one vector for a linear head. Train and val are
read into memory once.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from truthtrace.detectors.base import Batch, register
from truthtrace.detectors.torch_base import TorchDetector
from truthtrace.naming import SEQ_LAST_ANSWER


class LayerLSTM(nn.Module):
    """``(B, Lh, d)`` -> logits ``(B,)``; ``pool_weights`` gives the attention over layers ``(B, Lh)``."""

    def __init__(self, n_layers: int, d: int, proj: int, hidden: int, bidirectional: bool, dropout: float):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_layers, d))
        self.register_buffer("std", torch.ones(n_layers, d))
        self.proj = nn.Sequential(nn.Linear(d, proj), nn.GELU(), nn.Dropout(dropout))
        # the projection is shared by all layers; a learned per-layer offset lets the LSTM and the
        # pooling tell layers apart beyond their order (a signal is often in a few layers only)
        self.layer_emb = nn.Parameter(torch.zeros(n_layers, proj))
        self.lstm = nn.LSTM(proj, hidden, batch_first=True, bidirectional=bidirectional)
        width = hidden * (2 if bidirectional else 1)
        self.attn = nn.Linear(width, 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, 1))

    def pool_weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LSTM outputs ``(B, Lh, width)`` and softmax weights over layers ``(B, Lh)``."""
        z = self.proj((x - self.mean) / self.std) + self.layer_emb  # (B, Lh, proj)
        out, _ = self.lstm(z)  # (B, Lh, width)
        return out, torch.softmax(self.attn(out).squeeze(-1), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, Lh, d) -> (B,)
        out, w = self.pool_weights(x)
        pooled = (w.unsqueeze(-1) * out).sum(dim=1)  # (B, width)
        return self.head(pooled).squeeze(-1)


@register("lstm")
class LSTMDetector(TorchDetector):
    """bi-LSTM over the layers of ``feature`` ``(B, Lh, d)`` with attention pooling over layers.

    Args:
        feature: batch key of per-layer vectors (default ``"seq.last_answer"``).
        proj: width of the per-layer input projection.
        hidden: LSTM hidden size (per direction).
        bidirectional: read the layers both ways.
        dropout: dropout after the projection and before the head.
        **loop: :class:`~truthtrace.training.LoopConfig` fields (``lr``, ``max_epochs``, ``seed``, ...).
    Raises:
        ValueError: naming the argument when one is out of range.
    """

    inputs = (SEQ_LAST_ANSWER,)
    defaults = {"lr": 1e-3, "weight_decay": 1e-2, "max_epochs": 30, "patience": 5}

    def __init__(self, feature: str = SEQ_LAST_ANSWER, proj: int = 128, hidden: int = 64,
                 bidirectional: bool = True, dropout: float = 0.2, **loop: Any):
        super().__init__(**loop)
        if proj < 1 or hidden < 1:
            raise ValueError(f"proj and hidden must be >= 1, got {proj}, {hidden}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.inputs = (feature,)  # the instance reads this key; the class default is seq.last_answer
        self.feature, self.proj, self.hidden = feature, int(proj), int(hidden)
        self.bidirectional, self.dropout = bool(bidirectional), float(dropout)

    def own_args(self) -> dict:
        return {"feature": self.feature, "proj": self.proj, "hidden": self.hidden,
                "bidirectional": self.bidirectional, "dropout": self.dropout}

    def build(self) -> nn.Module:
        return LayerLSTM(self.dims["n_layers"], self.dims["d"], self.proj, self.hidden, self.bidirectional,
                         self.dropout)

    def forward(self, module: nn.Module, batch: Batch, device: str) -> torch.Tensor:
        return module(torch.as_tensor(batch[self.feature]).float().to(device))

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Train on ``train``, early-stopping on ``val`` AUROC.

        Returns ``{"val_auroc", "best_epoch", "epochs", "layer_attention", "pos_weight"}``, where
        ``layer_attention`` is the mean pooling weight per layer position on val.
        Raises:
            ValueError: if a split lacks a class.
        """
        result, x_va = self.fit_layer_sequence(train, val, self.feature)
        with torch.no_grad():
            self.module.eval()
            _, w = self.module.pool_weights(x_va.to(self.device))
        self.state = {"val_auroc": result.best_auroc, "best_epoch": result.best_epoch, "epochs": result.epochs,
                      "layer_attention": [round(float(v), 4) for v in w.mean(dim=0)]}
        return dict(self.state, pos_weight=result.pos_weight)

    def selection(self) -> dict:
        """``{"epochs": e}``: the epoch early stopping kept."""
        return {"epochs": self.state["epochs"]} if "epochs" in self.state else {}

    def describe(self) -> str:
        """E.g. ``bi-LSTM 64, 14 epochs``."""
        if "epochs" not in self.state:
            return ""
        return f"{'bi-' if self.bidirectional else ''}LSTM {self.hidden}, {self.state['epochs']} epochs"
