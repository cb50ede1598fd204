"""Shared glue for detectors whose state is a torch module (mlp, lstm, gnn).

A :class:`TorchDetector` keeps its training settings as a :class:`LoopConfig` built from
its keyword arguments, trains with :func:`truthtrace.training.fit_module`, scores in eval
mode, and saves ``model.safetensors`` (the module's state dict, including the input
standardization buffers) beside ``config.json`` whose ``args`` rebuild the detector and whose
``state.dims`` rebuild the module (input sizes seen at fit time).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from truthtrace.detectors.base import (
    CONFIG_FILE,
    RETRAIN,
    WEIGHTS_FILE,
    Batch,
    Detector,
    concat_batches,
    detector_from_config,
    read_weights,
    write_config,
)
from truthtrace.fileio import atomic_write
from truthtrace.training import FitResult, LoopConfig, fit_module, predict

LOOP_FIELDS = tuple(f.name for f in dataclasses.fields(LoopConfig))


def epoch_order(n: int, shuffle: bool, seed: int, epoch: int) -> torch.Tensor:
    """The order ``(n,)`` in which one pass visits ``n`` samples held in memory: a permutation seeded by ``(seed,
    epoch)`` when ``shuffle``, else ``0..n-1``."""
    if not shuffle:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


class TensorBatches:
    """Re-iterable batches over in-memory tensors; shuffled per epoch from ``seed`` when ``shuffle``.

    Args:
        tensors: name -> tensor with ``n`` rows, e.g. ``{"x": (n, d)}``.
        labels: ``(n,)`` int64 labels, yielded as ``"label"``.
        batch_size: rows per batch (the last batch may be smaller).
        shuffle: permute rows each epoch (``set_epoch`` picks the permutation).
        seed: base seed of the permutation.
    """

    def __init__(self, tensors: dict[str, torch.Tensor], labels: torch.Tensor, batch_size: int,
                 shuffle: bool = False, seed: int = 0):
        self.tensors, self.labels = tensors, labels
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the permutation of the next pass."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.labels)
        order = epoch_order(n, self.shuffle, self.seed, self.epoch)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield {**{k: v[idx] for k, v in self.tensors.items()}, "label": self.labels[idx]}


def collect(batches: Iterable[Batch], keys: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Concatenate ``keys`` of all batches as float32 tensors (e.g. ``(n, Lh, d)``) and the labels ``(n,)``,
    rows in trace-id order when the batches carry ids (``concat_batches(by_id=True)``).

    Raises:
        ValueError: on no batches or a batch without one of ``keys``.
    """
    cols = concat_batches(batches, (*keys, "label"), by_id=True)
    tensors = {k: torch.from_numpy(np.asarray(cols[k], dtype=np.float32)) for k in keys}
    return tensors, torch.from_numpy(np.asarray(cols["label"], dtype=np.int64))


def standardizer(x: torch.Tensor, dims: tuple[int, ...] = (0,)) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of ``x`` over ``dims`` (std floored so constant features stay finite)."""
    mean = x.mean(dim=dims)
    std = x.std(dim=dims).nan_to_num(1.0).clamp_min(1e-4)
    return mean, std


def forward_x(module: torch.nn.Module, batch: Batch, device: str) -> torch.Tensor:
    """Logits ``(B,)`` of an in-memory :class:`TensorBatches` batch whose ``"x"`` is the module's input."""
    return module(batch["x"].to(device))


class TorchDetector(Detector):
    """A detector whose fitted state is ``self.module``; subclasses implement ``build`` and ``forward``.

    Keyword arguments named like :class:`LoopConfig` fields (``lr``, ``max_epochs``, ``seed``,
    ``log_dir``, ``checkpoint_dir``, ...) configure training; ``resume`` (default True) continues
    from ``checkpoint_dir/last`` when one exists.
    """

    stochastic = True
    defaults: dict[str, Any] = {}  # per-detector LoopConfig defaults

    def __init__(self, **loop: Any):
        unknown = sorted(set(loop) - set(LOOP_FIELDS))
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown arguments {unknown}")
        settings = {**self.defaults, **loop}
        settings.setdefault("resume", True)
        settings["resume"] = bool(settings["resume"] and settings.get("checkpoint_dir"))
        self.loop = LoopConfig(**settings)
        self.module: torch.nn.Module | None = None
        self.dims: dict[str, Any] = {}
        self.state: dict[str, Any] = {}

    def own_args(self) -> dict:
        """The detector's own constructor arguments (not the loop's)."""
        return {}

    def args(self) -> dict:
        return {**self.own_args(), **{k: v for k, v in self.loop.to_dict().items() if k != "resume"}}

    def build(self) -> torch.nn.Module:
        """A fresh module for ``self.dims``."""
        raise NotImplementedError

    def forward(self, module: torch.nn.Module, batch: Batch, device: str) -> torch.Tensor:
        """Logits ``(B,)`` of a raw batch (as the loaders give it)."""
        raise NotImplementedError

    @property
    def device(self) -> str:
        return self.loop.resolve_device()

    def train_module(self, train, val, forward=None, desc: str = "", prepare=None, **overrides: Any) -> FitResult:
        """Build a module (seeded) and fit it with ``fit_module``.

        Args:
            train, val: re-iterable batches for ``fit_module``.
            forward: logits function for these batches (default :meth:`forward`).
            desc: progress-bar label.
            prepare: called on the fresh module before training (e.g. to set standardization buffers).
            **overrides: :class:`LoopConfig` fields replacing the detector's for this run.
        """
        config = dataclasses.replace(self.loop, **overrides)
        torch.manual_seed(config.seed)
        self.module = self.build()
        if prepare is not None:
            with torch.no_grad():
                prepare(self.module)
        return fit_module(self.module, forward or self.forward, train, val, config, desc=desc or self.name)

    def fit_layer_sequence(self, train: Iterable[Batch], val: Iterable[Batch],
                           feature: str) -> tuple[FitResult, torch.Tensor]:
        """Fit a module over the per-layer vectors ``batch[feature]`` ``(B, Lh, d)``, early-stopping on val.

        Sets ``self.dims`` (``n_layers``, ``d``) for :meth:`build`, standardizes with train's per-(layer, dim)
        mean and std (copied into the module's ``mean``/``std`` buffers). Returns the fit and val's ``x``
        ``(n_val, Lh, d)``. Raises ValueError if a split lacks a class.
        """
        tr, y_tr = collect(train, (feature,))
        va, y_va = collect(val, (feature,))
        x_tr, x_va = tr[feature], va[feature]  # (n, Lh, d)
        self.dims = {"n_layers": int(x_tr.shape[1]), "d": int(x_tr.shape[2])}
        mean, std = standardizer(x_tr)  # (Lh, d) each

        def prepare(module: torch.nn.Module) -> None:
            module.mean.copy_(mean)
            module.std.copy_(std)

        result = self.train_module(TensorBatches({"x": x_tr}, y_tr, self.loop.batch_size, shuffle=True,
                                                 seed=self.loop.seed),
                                   TensorBatches({"x": x_va}, y_va, 256), forward=forward_x, prepare=prepare)
        return result, x_va

    def score(self, batches: Iterable[Batch]) -> np.ndarray:
        """Return logits ``(n,)`` float64 in batch order, computed in eval mode."""
        if self.module is None:
            raise ValueError(f"{self.name} is not fitted; call fit() or load()")
        self.module.to(self.device)
        return predict(self.module, self.forward, batches, self.device)[0]

    def save(self, out_dir: str | Path) -> None:
        """Write ``model.safetensors`` (module state dict), then ``config.json`` (args, dims, fit state)."""
        from safetensors.torch import save_file

        if self.module is None:
            raise ValueError(f"{self.name} is not fitted; nothing to save")
        out = Path(out_dir)
        (out / CONFIG_FILE).unlink(missing_ok=True)  # config.json marks a complete save
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        atomic_write(out / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp))
        write_config(out, self, state={**self.state, "dims": self.dims})

    @classmethod
    def load(cls, out_dir: str | Path) -> "TorchDetector":
        """Rebuild a detector saved by :meth:`save`; ValueError naming the file and field if it is malformed."""
        from safetensors.torch import load_file

        det, cfg = detector_from_config(cls, out_dir)
        state = dict(cfg.get("state", {}))
        det.dims = state.pop("dims", {})
        det.state = state
        try:
            det.module = det.build()
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"{Path(out_dir) / CONFIG_FILE}: field 'state.dims' {det.dims!r} cannot rebuild "
                             f"detector {cls.name!r} ({type(e).__name__}: {e})") from None
        path = Path(out_dir) / WEIGHTS_FILE
        try:
            det.module.load_state_dict(read_weights(out_dir, load_file))
        except RuntimeError as e:
            raise ValueError(f"{path}: weights do not fit the saved config: {' '.join(str(e).split())}; "
                             f"{RETRAIN}") from None
        det.module.eval()
        return det
