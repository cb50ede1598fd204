"""Experiment trackers behind one tiny interface: ``log(metrics, step)`` and ``close()``.

TensorBoard is the default (``truthtrace[track]``); MLflow (``truthtrace[mlflow]``, a local
file store under the log dir) and Weights & Biases (``truthtrace[wandb]``, always offline here)
are optional and imported only when chosen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass
class Tracker:
    """A started run: ``log({"val/auroc": 0.8}, step)`` records scalars; ``close()`` flushes."""

    log: Callable[[dict[str, float], int], None]
    close: Callable[[], None]


def _tensorboard(log_dir: Path, params: dict) -> Tracker:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch's writer needs the tensorboard package
        raise ImportError("TensorBoard logging needs tensorboard: pip install 'truthtrace[track]'") from e
    writer = SummaryWriter(log_dir=str(log_dir))
    writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in sorted(params.items())))

    def log(metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            writer.add_scalar(key, value, step)

    return Tracker(log=log, close=writer.close)


def _mlflow(log_dir: Path, params: dict, run_name: str) -> Tracker:
    try:
        import mlflow
    except ImportError as e:
        raise ImportError("MLflow tracking needs mlflow: pip install 'truthtrace[mlflow]'") from e
    mlflow.set_tracking_uri(log_dir.resolve().as_uri())
    run = mlflow.start_run(run_name=run_name or None)
    mlflow.log_params({k: str(v) for k, v in params.items()})

    def log(metrics: dict[str, float], step: int) -> None:
        mlflow.log_metrics(metrics, step=step)

    return Tracker(log=log, close=lambda: mlflow.end_run() if run else None)


def _wandb(log_dir: Path, params: dict, run_name: str) -> Tracker:
    try:
        import wandb
    except ImportError as e:
        raise ImportError("Weights & Biases tracking needs wandb: pip install 'truthtrace[wandb]'") from e
    os.environ.setdefault("WANDB_MODE", "offline")  # no network here; `wandb sync` uploads later
    run = wandb.init(dir=str(log_dir), config=params, name=run_name or None, mode=os.environ["WANDB_MODE"],
                     reinit=True)

    def log(metrics: dict[str, float], step: int) -> None:
        run.log(metrics, step=step)

    return Tracker(log=log, close=run.finish)


def start_tracker(kind: str, log_dir: str | Path | None, params: dict | None = None, run_name: str = "") -> Tracker:
    """Start a ``kind`` tracker writing under ``log_dir``; a no-op tracker for ``"none"`` or no dir.

    Args:
        kind: ``"tensorboard"``, ``"mlflow"``, ``"wandb"`` or ``"none"``.
        log_dir: directory for event files / runs; created if missing.
        params: run settings recorded once (e.g. ``LoopConfig.to_dict()``).
        run_name: label of the run where the tracker has one.
    Raises:
        ValueError: for an unknown ``kind``.
        ImportError: naming the extra to install when the tracker's package is missing.
    """
    params = dict(params or {})
    if kind == "none" or log_dir is None:
        return Tracker(log=lambda metrics, step: None, close=lambda: None)
    path = Path(log_dir)
    path.mkdir(parents=True, exist_ok=True)
    if kind == "tensorboard":
        return _tensorboard(path, params)
    if kind == "mlflow":
        return _mlflow(path, params, run_name)
    if kind == "wandb":
        return _wandb(path, params, run_name)
    raise ValueError(f"tracking must be 'tensorboard', 'mlflow', 'wandb' or 'none', got {kind!r}")
