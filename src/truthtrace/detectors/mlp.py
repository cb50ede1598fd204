"""SAPLMA-style MLP on the hidden state of one layer (Azaria & Mitchell, 2023).

The layer is chosen on validation AUROC: a short run on every ``sweep_stride``-th layer
(and the last), then on the untried neighbours of the best one, then a full run on the
winner. Train and val are read into memory once (``(n, Lh, d)`` float32 is ~115 MB for
1,600 traces x 31 layers x 576), so each sweep run is a few seconds on a CPU.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from truthtrace.detectors.base import Batch, register
from truthtrace.detectors.torch_base import TensorBatches, TorchDetector, collect, forward_x, standardizer
from truthtrace.naming import SEQ_LAST_ANSWER
from truthtrace.training import FitResult


class MLPNet(nn.Module):
    """Standardize ``(B, d)`` with stored train statistics, then Linear-ReLU-Dropout blocks -> 1 logit."""

    def __init__(self, d: int, hidden: tuple[int, ...], dropout: float):
        super().__init__()
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("std", torch.ones(d))
        layers: list[nn.Module] = []
        width = d
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, d) -> (B,)
        return self.net((x - self.mean) / self.std).squeeze(-1)


def sweep_positions(n_layers: int, stride: int) -> list[int]:
    """Every ``stride``-th layer position from 0, plus the last."""
    return sorted(set(range(0, n_layers, stride)) | {n_layers - 1})


@register("mlp")
class MLPDetector(TorchDetector):
    """MLP probe on one layer of ``feature`` ``(B, Lh, d)``.

    Args:
        feature: batch key of per-layer vectors, ``"seq.last_answer"`` (default), ``"seq.mean_answer"``
            or ``"seq.last_prompt"`` (the loader must be asked for that key).
        layer: ``"sweep"`` to choose the layer on validation, or a position on axis 1 of ``feature``.
        hidden: widths of the hidden layers.
        dropout: dropout after each hidden layer.
        sweep_stride: try every this-many-th layer first (then the best one's neighbours).
        sweep_epochs: epochs of each sweep run.
        **loop: :class:`~truthtrace.training.LoopConfig` fields (``lr``, ``max_epochs``, ``seed``, ...).
    Raises:
        ValueError: naming the argument when one is out of range.
    """

    inputs = (SEQ_LAST_ANSWER,)
    defaults = {"lr": 1e-3, "weight_decay": 1e-2, "max_epochs": 40, "patience": 6}

    def __init__(self, feature: str = SEQ_LAST_ANSWER, layer: int | str = "sweep",
                 hidden: tuple[int, ...] | list[int] = (256, 128, 64), dropout: float = 0.2,
                 sweep_stride: int = 3, sweep_epochs: int = 5, **loop: Any):
        super().__init__(**loop)
        if layer != "sweep" and not (isinstance(layer, int) and layer >= 0):
            raise ValueError(f"layer must be 'sweep' or an int >= 0, got {layer!r}")
        if not hidden or any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty list of widths >= 1, got {hidden!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if sweep_stride < 1 or sweep_epochs < 1:
            raise ValueError(f"sweep_stride and sweep_epochs must be >= 1, got {sweep_stride}, {sweep_epochs}")
        self.inputs = (feature,)  # the instance reads this key; the class default is seq.last_answer
        self.feature, self.layer, self.hidden = feature, layer, tuple(int(h) for h in hidden)
        self.dropout, self.sweep_stride, self.sweep_epochs = float(dropout), int(sweep_stride), int(sweep_epochs)

    def own_args(self) -> dict:
        return {"feature": self.feature, "layer": self.layer, "hidden": list(self.hidden), "dropout": self.dropout,
                "sweep_stride": self.sweep_stride, "sweep_epochs": self.sweep_epochs}

    def build(self) -> nn.Module:
        return MLPNet(self.dims["d"], self.hidden, self.dropout)

    def forward(self, module: nn.Module, batch: Batch, device: str) -> torch.Tensor:
        x = torch.as_tensor(batch[self.feature])[:, self.dims["layer_index"]]  # (B, d)
        return module(x.float().to(device))

    def _fit_layer(self, pos: int, data: dict, short: bool) -> FitResult:
        """Train on layer position ``pos`` (a short, quiet, untracked run when ``short``)."""
        (x_tr, y_tr), (x_va, y_va) = data["train"], data["val"]
        self.dims["layer_index"] = pos
        mean, std = standardizer(x_tr[:, pos])  # (d,), (d,)

        def prepare(module: MLPNet) -> None:
            module.mean.copy_(mean)
            module.std.copy_(std)

        train = TensorBatches({"x": x_tr[:, pos]}, y_tr, self.loop.batch_size, shuffle=True, seed=self.loop.seed)
        val = TensorBatches({"x": x_va[:, pos]}, y_va, 512)
        overrides = {}
        if short:
            overrides = {"max_epochs": self.sweep_epochs, "patience": self.sweep_epochs, "tracking": "none",
                         "checkpoint_dir": None, "resume": False, "quiet": True}
        return self.train_module(train, val, forward=forward_x, desc=f"mlp layer {pos}", prepare=prepare,
                                 **overrides)

    def _sweep(self, n_layers: int, data: dict) -> dict[int, float]:
        """Best val AUROC of a short run per swept layer position: a coarse grid, then the best's neighbours."""
        grid = sweep_positions(n_layers, self.sweep_stride)
        sweep = {p: self._fit_layer(p, data, short=True).best_auroc for p in grid}
        best = max(sweep, key=lambda p: (sweep[p], -p))
        for pos in range(max(0, best - self.sweep_stride + 1), min(n_layers, best + self.sweep_stride)):
            if pos not in sweep:
                sweep[pos] = self._fit_layer(pos, data, short=True).best_auroc
        return dict(sorted(sweep.items()))

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Sweep layers with short runs on ``val`` AUROC, then train the best layer fully.

        Returns ``{"layer_index", "val_auroc", "best_epoch", "epochs", "val_auroc_sweep", "pos_weight"}``.
        Raises:
            ValueError: if a split lacks a class or the fixed ``layer`` is not stored.
        """
        tr, y_tr = collect(train, (self.feature,))
        va, y_va = collect(val, (self.feature,))
        x_tr, x_va = tr[self.feature], va[self.feature]  # (n, Lh, d)
        n_layers = x_tr.shape[1]
        self.dims = {"d": int(x_tr.shape[2]), "n_layers": int(n_layers)}
        data = {"train": (x_tr, y_tr), "val": (x_va, y_va)}
        sweep: dict[int, float] = {}
        if self.layer == "sweep":
            sweep = self._sweep(n_layers, data)
            chosen = max(sweep, key=lambda p: (sweep[p], -p))  # ties to the lower layer
        elif self.layer >= n_layers:
            raise ValueError(f"layer {self.layer} is not stored; {self.feature} has {n_layers} layers")
        else:
            chosen = int(self.layer)
        result = self._fit_layer(chosen, data, short=False)
        self.state = {"layer_index": chosen, "val_auroc": result.best_auroc, "best_epoch": result.best_epoch,
                      "epochs": result.epochs, "val_auroc_sweep": {str(p): a for p, a in sweep.items()}}
        return dict(self.state, pos_weight=result.pos_weight)

    def selection(self) -> dict:
        """``{"layer": l, "epochs": e}`` chosen on validation (epochs by early stopping)."""
        if "layer_index" not in self.state:
            return {}
        return {"layer": self.state["layer_index"], "epochs": self.state["epochs"]}

    def describe(self) -> str:
        """E.g. ``layer 12, 14 epochs``."""
        if "layer_index" not in self.state:
            return ""
        return f"layer {self.state['layer_index']}, {self.state['epochs']} epochs"
