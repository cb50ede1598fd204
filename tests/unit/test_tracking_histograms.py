"""Training tracking beyond scalars: weight and gradient histograms per epoch, the per-step learning rate,
and the trained module logged as an artifact (TensorBoard here; MLflow / W&B when installed)."""

import importlib.util
import json

import numpy as np
import pytest
import torch
from torch import nn

from truthtrace.detectors.torch_base import TensorBatches
from truthtrace.training import LoopConfig, fit_module
from truthtrace.training.tracking import histogram, module_tensors, start_tracker

HAS_TB = importlib.util.find_spec("tensorboard") is not None


def planted(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.4).long()
    x = torch.randn(n, 6, generator=g)
    x[:, 0] += 3.0 * y
    return TensorBatches({"x": x}, y, 16, shuffle=True, seed=seed)


def forward(module, batch, device):
    return module(batch["x"].to(device)).squeeze(-1)


def fit(tmp_path, tracking, sums=None):
    """A 2-epoch fit of a small MLP; ``sums`` collects the first layer's weight sum after each epoch."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1))
    cfg = LoopConfig(lr=5e-3, max_epochs=2, patience=5, tracking=tracking, log_dir=str(tmp_path / "log"),
                     quiet=True, warmup_frac=0.2)
    callback = None if sums is None else (lambda epoch, record: sums.append(float(net[0].weight.detach().sum())))
    return net, fit_module(net, forward, planted(96, 1), planted(64, 2), cfg, callback=callback, desc="tiny")


@pytest.mark.skipif(not HAS_TB, reason="tensorboard is not installed (pip install 'truthtrace[track]')")
def test_tensorboard_holds_histograms_lr_schedule_and_the_artifact(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sums = []
    net, result = fit(tmp_path, "tensorboard", sums)
    acc = EventAccumulator(str(tmp_path / "log"), size_guidance={"histograms": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    hists = set(acc.Tags()["histograms"])
    for name, _ in net.named_parameters():
        assert {f"weights/{name}", f"grads/{name}"} <= hists
        assert [e.step for e in acc.Histograms(f"weights/{name}")] == [1, 2]
    for event, total in zip(acc.Histograms("weights/0.weight"), sums):  # each epoch's weights
        assert event.histogram_value.num == net[0].weight.numel()
        assert event.histogram_value.sum == pytest.approx(total, abs=1e-4)
    grads = acc.Histograms("grads/0.weight")[-1].histogram_value
    assert grads.num == net[0].weight.numel() and grads.max > grads.min
    assert [e.step for e in acc.Scalars("lr")] == [1, 2]
    schedule = [e.value for e in acc.Scalars("lr/step")]
    assert len(schedule) == 12 and schedule[0] < schedule[1] and schedule[-1] < max(schedule)  # warmup, decay
    saved = tmp_path / "log" / "artifacts" / "detector"
    from safetensors.torch import load_file

    weights = load_file(str(saved / "model.safetensors"))
    assert all(torch.equal(weights[k], v) for k, v in net.state_dict().items())  # the best (returned) weights
    info = json.loads((saved / "fit.json").read_text())
    assert info["best_epoch"] == result.best_epoch and len(info["history"]) == 2
    assert "artifacts/detector" in " ".join(acc.Tags()["tensors"])  # listed in a text summary


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow is not installed "
                    "(pip install 'truthtrace[mlflow]')")
def test_mlflow_holds_histograms_lr_schedule_and_the_artifact(tmp_path):
    import mlflow

    fit(tmp_path, "mlflow")
    client = mlflow.tracking.MlflowClient(tracking_uri=(tmp_path / "log").resolve().as_uri())
    [run] = client.search_runs(client.search_experiments()[0].experiment_id)
    assert len(client.get_metric_history(run.info.run_id, "lr/step")) == 12
    paths = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"detector", "histograms"} <= paths


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed "
                    "(pip install 'truthtrace[wandb]')")
def test_wandb_offline_run_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    fit(tmp_path, "wandb")
    assert list((tmp_path / "log").rglob("*.wandb"))


def test_module_tensors_and_histogram_summaries():
    net = nn.Linear(3, 2)
    assert set(module_tensors(net)) == {"weights/weight", "weights/bias"}  # no grads yet
    net(torch.ones(1, 3)).sum().backward()
    arrays = module_tensors(net)
    assert set(arrays) == {"weights/weight", "weights/bias", "grads/weight", "grads/bias"}
    h = histogram(np.array([0.0, 1.0, 1.0, np.nan]), bins=2)
    assert h["counts"] == [1, 2] and h["max"] == 1.0 and h["mean"] == pytest.approx(2 / 3)
    assert histogram(np.array([np.inf]))["counts"] == []


def test_the_no_op_tracker_computes_nothing(tmp_path):
    tracker = start_tracker("none", tmp_path)
    assert not tracker.active
    tracker.histograms({"w": np.ones(3)}, 1)
    tracker.steps("lr/step", [(0, 1.0)])
    tracker.artifact(tmp_path, "x")
    tracker.close()
    assert list(tmp_path.iterdir()) == []
