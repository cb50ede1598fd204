"""``train`` with ``procs=2``: the fits shared out over two spawned processes give the one-process summary."""

import warnings

import numpy as np
import pytest
import torch
from planted_store import make_planted_store

from truthtrace.detectors import train_pool
from truthtrace.detectors.train import TrainConfig, train
from truthtrace.detectors.train_pool import by_cost
from truthtrace.features import PreprocessConfig, preprocess

FAST = {"mlp": {"max_epochs": 4, "sweep_epochs": 2, "patience": 3, "log_dir": None}}
DETECTORS = ("perplexity", "probe", "mlp", "max_entropy", "sep")  # sep: no samples store -> skipped, with a warning


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    store, labels = make_planted_store(root / "traces", n=120, layers=3, heads=2, d=16, direction_seed=0)
    preprocess(store, root / "feats", PreprocessConfig(graphs=False), labels=labels, progress=False)
    return root, root / "feats", labels


def test_two_processes_fit_what_one_does(features):
    root, feats, labels = features
    summaries = {}
    for procs in (1, 2):
        config = TrainConfig(detectors=DETECTORS, seeds=(0, 1), detector_args=FAST, procs=procs)
        with pytest.warns(UserWarning, match="detector sep skipped"):  # raised again from the worker
            summaries[procs] = train(feats, labels, root / f"det{procs}", config, progress=False)
    one, two = summaries[1]["detectors"], summaries[2]["detectors"]
    assert list(one) == list(two) == list(DETECTORS)  # job order, whichever process ended first
    assert {k: list(v) for k, v in one.items()} == {k: list(v) for k, v in two.items()}
    for name in ("perplexity", "max_entropy", "probe"):  # deterministic fits
        assert two[name]["seed-0"]["val_auroc"] == pytest.approx(one[name]["seed-0"]["val_auroc"], abs=1e-9)
    for seed in ("seed-0", "seed-1"):  # another thread count may move the last float bits, not the fit
        assert two["mlp"][seed]["layer_index"] == one["mlp"][seed]["layer_index"]
        assert two["mlp"][seed]["val_auroc"] == pytest.approx(one["mlp"][seed]["val_auroc"], abs=0.02)
    assert two["sep"]["seed-0"]["skipped"].startswith("no samples")
    again = train(feats, labels, root / "det2", TrainConfig(detectors=DETECTORS[:3], seeds=(0, 1),
                                                            detector_args=FAST, procs=2), progress=False)
    assert all(info == {"skipped": "already trained"} for runs in again["detectors"].values() for info in runs.values())


def test_the_slowest_fits_are_handed_out_first():
    assert by_cost([("perplexity", 0), ("gnn", 0), ("probe", 0), ("mlp", 1), ("gnn", 1)]) == \
        [("gnn", 0), ("gnn", 1), ("mlp", 1), ("probe", 0), ("perplexity", 0)]
    with pytest.raises(ValueError, match="procs"):
        TrainConfig(procs=0)


def _warns_twice() -> dict:
    warnings.warn("own warning", UserWarning)
    warnings.warn_explicit("`torch.jit.script` is deprecated.", DeprecationWarning, "/x/site-packages/torch/jit.py", 1)
    return {"ok": True}


def test_worker_warnings_come_back_but_foreign_deprecations_do_not():
    info, messages = train_pool.warned(_warns_twice)
    assert info == {"ok": True} and messages == ["own warning"]


GNN_ARGS = {"gnn": {"max_epochs": 3, "patience": 3, "dropout": 0.0, "hidden": 8, "batch_size": 16, "log_dir": None}}


@pytest.fixture(scope="module")
def graph_features(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpool")
    store, labels = make_planted_store(root / "traces", n=120, layers=3, heads=2, d=16, direction_seed=0)
    preprocess(store, root / "feats", PreprocessConfig(node_dim=4), labels=labels, progress=False)
    return root, root / "feats", labels


def test_gnn_fits_on_two_ranks_as_in_one_process(graph_features, monkeypatch):
    """procs=2: the gnn is fitted on 2 local DDP ranks, each holding half of every batch (the one-process gradient),
    before the pool fits the rest; without dropout its weights and scores equal one process's up to rounding."""
    from truthtrace.detectors import train as train_module
    from truthtrace.detectors.base import load_detector
    from truthtrace.features.dataset import FeatureDataset, make_loader

    root, feats, labels = graph_features
    summaries = {procs: train(feats, labels, root / f"g{procs}", TrainConfig(detectors=("gnn", "probe"),
                                                                              detector_args=GNN_ARGS, procs=procs),
                              progress=False) for procs in (1, 2)}
    one, two = (s["detectors"]["gnn"]["seed-0"] for s in (summaries[1], summaries[2]))
    assert two["epochs"] == one["epochs"] == 3 and two["val_auroc"] == pytest.approx(one["val_auroc"], abs=1e-4)
    assert summaries[2]["detectors"]["probe"]["seed-0"]["val_auroc"] == pytest.approx(
        summaries[1]["detectors"]["probe"]["seed-0"]["val_auroc"], abs=1e-9)
    dets = [load_detector(root / f"g{procs}" / "gnn" / "seed-0") for procs in (1, 2)]
    for name, weight in dets[0].module.state_dict().items():
        assert torch.allclose(dets[1].module.state_dict()[name], weight, atol=1e-4), name
    test = make_loader(FeatureDataset(feats, "test", labels=labels, keys=("graphs",)), batch_size=16)
    assert np.allclose(dets[0].score(test), dets[1].score(test), atol=1e-4)
    monkeypatch.setattr(train_module, "run_local_ranks", lambda *a, **k: pytest.fail("launched ranks for nothing"))
    again = train(feats, labels, root / "g2", TrainConfig(detectors=("gnn", "probe"), detector_args=GNN_ARGS, procs=2),
                  progress=False)
    assert all(info == {"skipped": "already trained"} for runs in again["detectors"].values() for info in runs.values())
