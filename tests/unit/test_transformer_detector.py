"""The ``transformer`` detector: a planted-signal store solved end to end (preprocess -> FeatureDataset ->
fit -> score), seeded training, an exact save/load round trip, and malformed saved files as ValueErrors
naming the file."""

import json

import numpy as np
import pytest
import torch
from planted_store import make_planted_store
from safetensors.torch import load_file, save_file

from truthtrace import metrics
from truthtrace.detectors import DETECTORS, get_detector, load_detector
from truthtrace.detectors.train import DEFAULT_DETECTORS
from truthtrace.detectors.transformer import LayerTransformer, TransformerDetector
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.features.dataset import FeatureDataset, make_loader

KEY = "seq.last_answer"
FAST = {"max_epochs": 3, "patience": 3, "tracking": "none", "device": "cpu", "quiet": True}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Loaders over a preprocessed planted store: hidden layer 2 of 0..3 carries the label (a shift of 3.5 noise
    std along one direction); 420 train traces, as sequence models need a few hundred (with 140 neither the
    transformer nor the lstm gets past 0.75 test AUROC, the probe gets 1.0)."""
    root = tmp_path_factory.mktemp("transformer-planted")
    store, labels = make_planted_store(root, n=600, layers=3, heads=2, d=16, planted_layer=2, shift=3.5)
    preprocess(store, root / "feats", PreprocessConfig(graphs=False), labels=labels, progress=False)

    def loader(split):
        ds = FeatureDataset(root / "feats", split=split, labels=labels, keys=(KEY,), shuffle=split == "train",
                            require_labels=True)
        return make_loader(ds, batch_size=32, num_workers=0)

    return {split: loader(split) for split in ("train", "val", "test")}


def labels_of(batches):
    return np.concatenate([np.asarray(b["label"]) for b in batches])


def tensor_batches(n, seed, layers=4, d=8):
    """In-memory batches ``(B, layers, d)`` whose label is a shift of layer 1 along feature 0."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, layers, d, generator=g)
    x[:, 1, 0] += 2.0 * y
    return [{KEY: x[i:i + 32], "label": y[i:i + 32]} for i in range(0, n, 32)]


@pytest.fixture(scope="module")
def small():
    return tensor_batches(128, 1), tensor_batches(64, 2), tensor_batches(64, 3)


def test_solves_a_preprocessed_planted_store(planted):
    det = get_detector("transformer", tracking="none", device="cpu", quiet=True)  # default model and schedule
    info = det.fit(planted["train"], planted["val"])
    test = planted["test"]
    assert metrics.auroc(det.score(test), labels_of(test)) > 0.95
    assert info["attn_backend"] in ("flash", "math") and info["val_auroc"] > 0.9
    assert det.describe().startswith("encoder 2 x 64, 4 heads, cls pool,")


def test_registered_with_defaults_and_in_the_evaluation_table():
    assert DETECTORS["transformer"] is TransformerDetector and "transformer" in DEFAULT_DETECTORS
    det = get_detector("transformer")
    assert (det.width, det.depth, det.heads, det.pool, det.attn_backend, det.layer_emb) == (64, 2, 4, "cls", "auto",
                                                                                           True)
    assert det.inputs == (KEY,) and det.stochastic
    module = LayerTransformer(31, 576, 64, 2, 4, 128, 0.1, "cls", "auto", 10_000.0, True)
    assert module(torch.randn(3, 31, 576)).shape == (3,)


def test_same_seed_same_scores_other_seed_other_scores(small):
    train, val, test = small
    a, b, c = (get_detector("transformer", seed=s, **FAST) for s in (5, 5, 6))
    for det in (a, b, c):
        det.fit(train, val)
    np.testing.assert_array_equal(a.score(test), b.score(test))
    assert not np.array_equal(a.score(test), c.score(test))


@pytest.fixture(scope="module")
def saved(small, tmp_path_factory):
    train, val, test = small
    det = get_detector("transformer", pool="mean", width=32, heads=2, layer_emb=False, **FAST)
    det.fit(train, val)
    out = tmp_path_factory.mktemp("transformer-saved") / "det"
    det.save(out)
    return det, out, test


def test_save_load_round_trip_scores_identically(saved):
    det, out, test = saved
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_detector(out)
    assert type(loaded) is TransformerDetector and loaded.args() == det.args()
    assert loaded.describe() == det.describe() and loaded.state["attn_backend"] == det.state["attn_backend"]
    before = det.score(test)
    assert before.dtype == np.float64 and before.shape == (64,)
    np.testing.assert_array_equal(before, loaded.score(test))
    assert not any(k.endswith("inv_freq") for k in load_file(str(out / "model.safetensors")))  # RoPE has no weights


def _edit_config(path, edit):
    cfg = json.loads((path / "config.json").read_text())
    edit(cfg)
    (path / "config.json").write_text(json.dumps(cfg))


def _edit_weights(path, edit):
    tensors = load_file(str(path / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(path / "model.safetensors"))


CORRUPTIONS = {
    "garbage weights": (lambda p: (p / "model.safetensors").write_bytes(b"\x00\xffnot safetensors" * 8),
                        "model.safetensors: not a readable safetensors file"),
    "missing weights": (lambda p: (p / "model.safetensors").unlink(), "model.safetensors: missing"),
    "tensor of another shape": (lambda p: _edit_weights(p, lambda t: t.update({"proj.weight": torch.zeros(32, 9)})),
                                "model.safetensors: weights do not fit the saved config"),
    "tensor missing": (lambda p: _edit_weights(p, lambda t: t.pop("head.1.bias")),
                       "model.safetensors: weights do not fit the saved config"),
    "other input width in config": (lambda p: _edit_config(p, lambda c: c["state"]["dims"].update(d=12)),
                                    "model.safetensors: weights do not fit the saved config"),
    "unknown argument": (lambda p: _edit_config(p, lambda c: c["args"].update(bogus=1)),
                         "config.json: field 'args' does not fit detector 'transformer'"),
    "bad pool": (lambda p: _edit_config(p, lambda c: c["args"].update(pool="max")),
                 "config.json: field 'args' does not fit detector 'transformer'"),
    "dims missing": (lambda p: _edit_config(p, lambda c: c["state"].pop("dims")),
                     "config.json: field 'state.dims' {} cannot rebuild detector 'transformer'"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_malformed_saved_files_are_value_errors_naming_the_file(saved, tmp_path, case):
    _, out, _ = saved
    corrupt, message = CORRUPTIONS[case]
    run = tmp_path / "det"
    run.mkdir()
    for p in out.iterdir():
        (run / p.name).write_bytes(p.read_bytes())
    corrupt(run)
    with pytest.raises(ValueError) as err:
        load_detector(run)
    assert f"{run}/{message}" in str(err.value)


@pytest.mark.parametrize("kwargs, match", [
    ({"width": 60, "heads": 8}, "multiple of heads"),
    ({"width": 12, "heads": 4}, "even head size"),
    ({"depth": 0}, "must be >= 1"),
    ({"dropout": 1.0}, "dropout"),
    ({"pool": "max"}, "pool must be one of"),
    ({"attn_backend": "fast"}, "backend must be one of"),
    ({"rope_base": 1.0}, "rope_base"),
    ({"epochs": 3}, "unknown arguments"),
])
def test_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_detector("transformer", **kwargs)


def test_unfitted_detector_refuses_to_score_or_save(tmp_path):
    det = get_detector("transformer")
    with pytest.raises(ValueError, match="not fitted"):
        det.score([])
    with pytest.raises(ValueError, match="not fitted"):
        det.save(tmp_path)


def test_tracking_checkpoints_and_resume_go_through_the_shared_loop(small, tmp_path):
    train, val, test = small
    kw = {"max_epochs": 3, "device": "cpu", "quiet": True, "seed": 7, "log_dir": str(tmp_path / "tb"),
          "checkpoint_dir": str(tmp_path / "ck")}
    a = get_detector("transformer", **kw)
    a.fit(train, val)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert (tmp_path / "ck" / "last.safetensors").is_file() and (tmp_path / "ck" / "best.json").is_file()
    resumed = get_detector("transformer", **kw)  # a finished run resumes from its last checkpoint
    resumed.fit(train, val)
    np.testing.assert_array_equal(a.score(test), resumed.score(test))
