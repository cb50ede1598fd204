"""Experiment trackers behind one small interface: scalars, per-step series, histograms and artifacts.

TensorBoard is the default (``truthtrace[track]``); MLflow (``truthtrace[mlflow]``, a local
file store under the log dir) and Weights & Biases (``truthtrace[wandb]``, always offline here)
are optional and imported only when chosen. What each backend has no native type for is kept all
the same: TensorBoard copies artifacts into ``<log_dir>/artifacts/`` (and lists them in a text
summary), MLflow stores histograms as JSON artifacts (``histograms/step-NNNN.json``), W&B gets
the per-step series as one line plot at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from truthtrace.fileio import atomic_write, write_json_atomic

HIST_BINS = 64


def _ignore(*_args) -> None:
    return None


@dataclass
class Tracker:
    """A started run.

    ``log({"val/auroc": 0.8}, step)`` records scalars of one epoch; ``steps("lr/step", [(step, lr), ...])``
    a per-optimizer-step series; ``histograms({"weights/w": array}, step)`` value distributions;
    ``artifact(folder, name)`` a folder of files (e.g. the trained detector); ``close()`` flushes.
    ``active`` is False for the no-op tracker (nothing is computed for it).
    """

    log: Callable[[dict[str, float], int], None]
    close: Callable[[], None]
    steps: Callable[[str, list[tuple[int, float]]], None] = _ignore
    histograms: Callable[[dict[str, np.ndarray], int], None] = _ignore
    artifact: Callable[[Path, str], None] = _ignore
    active: bool = True


def module_tensors(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """``weights/<param>`` and, where a gradient is held, ``grads/<param>``: flat float64 arrays."""
    out: dict[str, np.ndarray] = {}
    for name, p in module.named_parameters():
        out[f"weights/{name}"] = p.detach().double().cpu().numpy().ravel()
        if p.grad is not None:
            out[f"grads/{name}"] = p.grad.detach().double().cpu().numpy().ravel()
    return out


def histogram(values: np.ndarray, bins: int = HIST_BINS) -> dict:
    """``{"bin_edges", "counts", "min", "max", "mean", "std"}`` of the finite ``values`` (JSON-safe)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"bin_edges": [], "counts": [], "min": None, "max": None, "mean": None, "std": None}
    counts, edges = np.histogram(finite, bins=bins)
    return {"bin_edges": edges.tolist(), "counts": counts.tolist(), "min": float(finite.min()),
            "max": float(finite.max()), "mean": float(finite.mean()), "std": float(finite.std())}


def log_epoch(tracker: Tracker, record: dict, step_lrs: list[tuple[int, float]], module: torch.nn.Module) -> None:
    """One epoch's scalars (``record`` of the loop), the learning rate of each of its optimizer steps
    (``lr/step``), and histograms of ``module``'s weights and of the gradients of its last step."""
    step = record["epoch"]
    tracker.log({"train/loss": record["train_loss"], "val/auroc": record["val_auroc"], "lr": record["lr"]}, step)
    if tracker.active:
        tracker.steps("lr/step", step_lrs)
        tracker.histograms(module_tensors(module), step)


def log_module(tracker: Tracker, module: torch.nn.Module, name: str, info: dict) -> None:
    """Log ``module`` as artifact ``name``: its state dict (``model.safetensors``, as a saved detector holds
    it) and ``info`` (``fit.json``)."""
    from safetensors.torch import save_file

    if not tracker.active:
        return
    with tempfile.TemporaryDirectory() as tmp:
        tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        atomic_write(Path(tmp) / "model.safetensors", lambda path: save_file(tensors, path))
        write_json_atomic(Path(tmp) / "fit.json", info)
        tracker.artifact(Path(tmp), name)


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

    def steps(key: str, points: list[tuple[int, float]]) -> None:
        for step, value in points:
            writer.add_scalar(key, value, step)

    def histograms(arrays: dict[str, np.ndarray], step: int) -> None:
        for key, values in arrays.items():
            writer.add_histogram(key, values, step)

    def artifact(folder: Path, name: str) -> None:
        target = log_dir / "artifacts" / name
        shutil.copytree(folder, target, dirs_exist_ok=True)
        files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
        writer.add_text(f"artifacts/{name}", f"{target}: " + ", ".join(files))

    return Tracker(log=log, close=writer.close, steps=steps, histograms=histograms, artifact=artifact)


def _mlflow(log_dir: Path, params: dict, run_name: str) -> Tracker:
    try:
        import mlflow
        from mlflow.entities import Metric
    except ImportError as e:
        raise ImportError("MLflow tracking needs mlflow: pip install 'truthtrace[mlflow]'") from e
    mlflow.set_tracking_uri(log_dir.resolve().as_uri())
    run = mlflow.start_run(run_name=run_name or None)
    mlflow.log_params({k: str(v) for k, v in params.items()})
    client = mlflow.tracking.MlflowClient()

    def log(metrics: dict[str, float], step: int) -> None:
        mlflow.log_metrics(metrics, step=step)

    def steps(key: str, points: list[tuple[int, float]]) -> None:
        stamp = int(1000 * time.time())
        client.log_batch(run.info.run_id, metrics=[Metric(key, float(v), stamp, int(s)) for s, v in points])

    def histograms(arrays: dict[str, np.ndarray], step: int) -> None:
        mlflow.log_dict({k: histogram(v) for k, v in arrays.items()}, f"histograms/step-{step:04d}.json")

    def artifact(folder: Path, name: str) -> None:
        mlflow.log_artifacts(str(folder), artifact_path=name)

    return Tracker(log=log, close=lambda: mlflow.end_run() if run else None, steps=steps, histograms=histograms,
                   artifact=artifact)


def _wandb(log_dir: Path, params: dict, run_name: str) -> Tracker:
    try:
        import wandb
    except ImportError as e:
        raise ImportError("Weights & Biases tracking needs wandb: pip install 'truthtrace[wandb]'") from e
    os.environ.setdefault("WANDB_MODE", "offline")  # no network here; `wandb sync` uploads later
    run = wandb.init(dir=str(log_dir), config=params, name=run_name or None, mode=os.environ["WANDB_MODE"],
                     reinit=True)
    series: dict[str, list[list[float]]] = {}
    last = [0]

    def log(metrics: dict[str, float], step: int) -> None:
        last[0] = max(last[0], step)
        run.log(metrics, step=step)

    def histograms(arrays: dict[str, np.ndarray], step: int) -> None:
        last[0] = max(last[0], step)
        run.log({k: wandb.Histogram(v, num_bins=HIST_BINS) for k, v in arrays.items()}, step=step)

    def artifact(folder: Path, name: str) -> None:
        art = wandb.Artifact(f"{run.name or 'run'}-{name}".replace("/", "-"), type="model")
        art.add_dir(str(folder))
        run.log_artifact(art)

    def close() -> None:  # W&B steps must not go back: per-step series are one line plot each, at the end
        plots = {key: wandb.plot.line(wandb.Table(data=rows, columns=["step", key]), "step", key, title=key)
                 for key, rows in series.items()}
        if plots:
            run.log(plots, step=last[0])
        run.finish()

    return Tracker(log=log, close=close, histograms=histograms, artifact=artifact,
                   steps=lambda key, points: series.setdefault(key, []).extend([s, v] for s, v in points))


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
        return Tracker(log=_ignore, close=_ignore, active=False)
    path = Path(log_dir)
    path.mkdir(parents=True, exist_ok=True)
    if kind == "tensorboard":
        return _tensorboard(path, params)
    if kind == "mlflow":
        return _mlflow(path, params, run_name)
    if kind == "wandb":
        return _wandb(path, params, run_name)
    raise ValueError(f"tracking must be 'tensorboard', 'mlflow', 'wandb' or 'none', got {kind!r}")
