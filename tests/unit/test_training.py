"""The training loop on a tiny planted problem: config checks, class weights, early stopping,
EMA, checkpoint resume equal to an uninterrupted run, TensorBoard events."""

import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

from truthtrace import metrics
from truthtrace.detectors.torch_base import TensorBatches
from truthtrace.training import LoopConfig, fit_module, label_counts, pos_weight_from_counts, predict
from truthtrace.training.checkpoint import has_checkpoint
from truthtrace.training.ema import make_ema
from truthtrace.training.loop import warmup_cosine
from truthtrace.training.tracking import start_tracker


def planted(n, seed, d=8, pos_frac=0.3, noise=False):
    """x (n, d) with the label shifting dimension 0 (unless ``noise``), labels (n,) with ~pos_frac positives."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < pos_frac).long()
    x = torch.randn(n, d, generator=g)
    if not noise:
        x[:, 0] += 3.0 * y
    return x, y


def batches(n, seed, shuffle=False, **kw):
    x, y = planted(n, seed, **kw)
    return TensorBatches({"x": x}, y, 16, shuffle=shuffle, seed=seed)


def forward(module, batch, device):
    return module(batch["x"].to(device)).squeeze(-1)


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))


def cfg(**kw):
    base = {"lr": 5e-3, "max_epochs": 8, "patience": 8, "tracking": "none", "quiet": True, "seed": 0}
    return LoopConfig(**{**base, **kw})


@pytest.mark.parametrize("field,value", [
    ("lr", 0), ("lr", -1e-3), ("weight_decay", -0.1), ("max_epochs", 0), ("max_epochs", 2.5), ("patience", 0),
    ("warmup_frac", 1.0), ("warmup_frac", -0.1), ("clip_norm", 0), ("ema_decay", 1.0), ("ema_decay", 0.0),
    ("seed", 1.5), ("device", "gpu"), ("tracking", "neptune"), ("batch_size", 0), ("amp", "yes"),
])
def test_loop_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        LoopConfig(**{field: value})


def test_loop_config_resume_needs_checkpoint_dir_and_device_resolves():
    with pytest.raises(ValueError, match="checkpoint_dir"):
        LoopConfig(resume=True)
    assert LoopConfig(device="cpu").resolve_device() == "cpu"
    assert LoopConfig(device="auto").resolve_device() in ("cpu", "cuda")
    LoopConfig(ema_decay=0.99, clip_norm=None, device="cuda:1")  # valid


def test_class_weights_from_train_counts():
    labels = [torch.tensor([0, 0, 1, -1]), torch.tensor([0, 0, 0, 1, 0])]
    counts = label_counts([{"label": y} for y in labels])
    assert counts == (6, 2, 2)  # unknown (-1) labels are not counted
    assert pos_weight_from_counts(6, 2) == 3.0
    with pytest.raises(ValueError, match="both classes"):
        pos_weight_from_counts(5, 0)
    result = fit_module(tiny_net(), forward, batches(96, 1), batches(64, 2), cfg(max_epochs=1))
    _, y = planted(96, 1)
    assert result.pos_weight == pytest.approx(float((y == 0).sum() / (y == 1).sum()))


def test_schedule_warms_up_then_decays_to_zero():
    f = warmup_cosine(100, 0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0) and f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0)
    assert all(f(s) >= f(s + 1) for s in range(10, 100))


def test_fit_solves_planted_problem_and_keeps_best_weights():
    net = tiny_net()
    result = fit_module(net, forward, batches(256, 1, shuffle=True), batches(128, 2), cfg(max_epochs=10))
    scores, y = predict(net, forward, batches(256, 3), "cpu")
    assert metrics.auroc(scores, y) > 0.9
    assert result.best_auroc == max(h["val_auroc"] for h in result.history)
    val_scores, val_y = predict(net, forward, batches(128, 2), "cpu")
    assert metrics.auroc(val_scores, val_y) == pytest.approx(result.best_auroc)  # model holds the best epoch


def test_early_stopping_stops_on_unlearnable_labels():
    result = fit_module(tiny_net(), forward, batches(128, 1, noise=True), batches(128, 2, noise=True),
                        cfg(max_epochs=60, patience=2))
    assert result.stopped_early and result.epochs < 60
    assert result.epochs == result.best_epoch + 2
    assert all(h["val_auroc"] <= result.best_auroc for h in result.history)


def test_ema_update_is_the_exponential_average():
    net = nn.Linear(2, 1, bias=False)
    ema = make_ema(net, 0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
        ema.update_parameters(net)  # first update copies
        net.weight.fill_(3.0)
        ema.update_parameters(net)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.9 * 1.0 + 0.1 * 3.0))
    with pytest.raises(ValueError, match="ema_decay"):
        make_ema(net, 1.5)


def test_ema_weights_lag_the_trained_weights():
    init = {k: v.clone() for k, v in tiny_net().state_dict().items()}
    plain, slow = tiny_net(), tiny_net()
    fit_module(plain, forward, batches(128, 1), batches(64, 2), cfg(max_epochs=3))
    fit_module(slow, forward, batches(128, 1), batches(64, 2), cfg(max_epochs=3, ema_decay=0.999))

    def dist(sd):
        return sum(float((sd[k] - init[k]).norm()) for k in init)

    # the very slow average stays near the weights after the first step, far from where training went
    assert dist(slow.state_dict()) < 0.5 * dist(plain.state_dict())


class Crash(Exception):
    pass


def test_resume_after_crash_equals_uninterrupted_run(tmp_path):
    settings = {"max_epochs": 6, "patience": 6, "ema_decay": 0.9, "checkpoint_dir": str(tmp_path / "a")}
    full = tiny_net()
    r_full = fit_module(full, forward, batches(96, 1, shuffle=True), batches(64, 2), cfg(**settings))

    def crash_after_3(epoch, record):
        if epoch == 3:
            raise Crash

    settings["checkpoint_dir"] = str(tmp_path / "b")
    with pytest.raises(Crash):
        fit_module(tiny_net(), forward, batches(96, 1, shuffle=True), batches(64, 2), cfg(**settings),
                   callback=crash_after_3)
    assert has_checkpoint(tmp_path / "b", "last")
    resumed = tiny_net(seed=123)  # different init: everything must come from the checkpoint
    r_res = fit_module(resumed, forward, batches(96, 1, shuffle=True), batches(64, 2), cfg(**settings, resume=True))
    assert r_res.history == r_full.history and r_res.best_epoch == r_full.best_epoch
    for k, v in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=0)
    from safetensors.torch import load_file

    last_a, last_b = load_file(str(tmp_path / "a/last.safetensors")), load_file(str(tmp_path / "b/last.safetensors"))
    assert last_a.keys() == last_b.keys()
    for k in last_a:
        torch.testing.assert_close(last_a[k], last_b[k], rtol=0, atol=0, msg=k)


def test_mismatched_checkpoint_pair_is_refused(tmp_path):
    settings = {"max_epochs": 2, "checkpoint_dir": str(tmp_path)}
    fit_module(tiny_net(), forward, batches(64, 1), batches(64, 2), cfg(**settings))
    best = (tmp_path / "best.safetensors").read_bytes()
    (tmp_path / "last.safetensors").write_bytes(best)  # as if the crash hit between the two writes
    with pytest.raises(ValueError, match="does not match"):
        fit_module(tiny_net(), forward, batches(64, 1), batches(64, 2), cfg(**settings, resume=True))


def test_resume_with_other_settings_is_refused(tmp_path):
    settings = {"max_epochs": 2, "checkpoint_dir": str(tmp_path)}
    fit_module(tiny_net(), forward, batches(64, 1), batches(64, 2), cfg(**settings))
    with pytest.raises(ValueError, match="other settings.*lr"):
        fit_module(tiny_net(), forward, batches(64, 1), batches(64, 2), cfg(**settings, resume=True, lr=1e-2))
    # settings that do not change the weights may differ
    fit_module(tiny_net(), forward, batches(64, 1), batches(64, 2), cfg(**settings, resume=True, tracking="none"))


def test_tensorboard_event_files_are_written(tmp_path):
    fit_module(tiny_net(), forward, batches(64, 1), batches(64, 2),
               cfg(max_epochs=2, tracking="tensorboard", log_dir=str(tmp_path / "tb")))
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert {"train/loss", "val/auroc", "lr"} <= set(acc.Tags()["scalars"])
    assert len(acc.Scalars("val/auroc")) == 2


def test_optional_trackers_name_their_extra(tmp_path):
    for kind in ("mlflow", "wandb"):
        if importlib.util.find_spec(kind) is None:
            with pytest.raises(ImportError, match=rf"truthtrace\[{kind}\]"):
                start_tracker(kind, tmp_path)
    with pytest.raises(ValueError, match="tracking"):
        start_tracker("neptune", tmp_path)
    start_tracker("tensorboard", None).log({"a": 1.0}, 1)  # no dir: a no-op tracker


def test_val_with_one_class_is_refused():
    x, _ = planted(32, 5)
    one_class = TensorBatches({"x": x}, torch.zeros(32, dtype=torch.long), 16)
    with pytest.raises(ValueError, match="val split"):
        fit_module(tiny_net(), forward, batches(64, 1), one_class, cfg(max_epochs=1))


def test_unknown_labels_are_ignored_by_the_loss():
    x, y = planted(64, 1)
    y = y.clone()
    y[::4] = -1
    result = fit_module(tiny_net(), forward, TensorBatches({"x": x}, y, 16), batches(64, 2), cfg(max_epochs=2))
    assert np.isfinite(result.history[-1]["train_loss"])
