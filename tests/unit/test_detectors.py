"""Probe and log-prob baselines on synthetic batches with a label planted linearly in one layer."""

import numpy as np
import pytest

from truthtrace import metrics
from truthtrace.detectors import get_detector, load_detector, register
from truthtrace.detectors.probe import ProbeDetector
from truthtrace.features.splits import split_by_question

PLANTED = 3


def make_features(n=400, n_layers=7, d=16, seed=0, layers=None) -> dict:
    """Arrays of a feature store: label planted along a random direction of layer ``PLANTED``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    hidden = rng.normal(size=(n, n_layers, d))  # (n, L+1, d)
    w = rng.normal(size=d)
    hidden[:, PLANTED] += 2.0 * (2 * y - 1)[:, None] * (w / np.linalg.norm(w))
    stats = rng.normal(size=(n, 8)).astype(np.float32)  # (n, 8) logprob_stats
    stats[:, 0] = -rng.gamma(2.0, 0.5, n) - 0.5 * y  # mean log-prob
    stats[:, 5] = rng.gamma(2.0, 1.0, n) + y  # max entropy
    return {"seq.last_answer": hidden.astype(np.float16).astype(np.float32), "scalar.logprob_stats": stats,
            "label": y.astype(np.int64), "question_ids": [f"q{i // 2}" for i in range(n)],
            "layer_ids": np.asarray(list(range(n_layers)) if layers is None else layers)}


def iter_batches(feats: dict, idx, batch_size: int = 64):
    """Batches shaped like ``truthtrace.features.dataset.make_loader``'s (plus the probe's optional ``layer_ids``)."""
    idx = np.asarray(idx)
    for start in range(0, len(idx), batch_size):
        part = idx[start:start + batch_size]
        yield {"seq.last_answer": feats["seq.last_answer"][part], "label": feats["label"][part],
               "scalar.logprob_stats": feats["scalar.logprob_stats"][part], "layer_ids": feats["layer_ids"],
               "trace_id": [f"t{i}" for i in part]}


@pytest.fixture(scope="module")
def data():
    feats = make_features()
    return feats, split_by_question(feats["question_ids"], seed=0)


def _fit(det, feats, split):
    return det.fit(iter_batches(feats, split["train"], 64), iter_batches(feats, split["val"], 64))


def test_probe_sweep_finds_planted_layer(data):
    feats, split = data
    det = get_detector("probe")
    info = _fit(det, feats, split)
    assert info["layer"] == PLANTED and info["layer_index"] == PLANTED
    per_layer = info["val_auroc_per_layer"]
    assert set(per_layer) == {str(i) for i in range(7)}
    assert max(per_layer, key=per_layer.get) == str(PLANTED)
    test_scores = det.score(iter_batches(feats, split["test"], 64))
    assert test_scores.shape == (len(split["test"]),)
    assert metrics.auroc(test_scores, feats["label"][split["test"]]) > 0.95


def test_probe_fixed_layer_uses_model_layer_ids():
    feats = make_features(layers=[10, 11, 12, 13, 14, 15, 16])
    split = split_by_question(feats["question_ids"], seed=0)
    det = ProbeDetector(layer=10 + PLANTED)
    info = _fit(det, feats, split)
    assert info["layer"] == 13 and info["layer_index"] == PLANTED and list(info["val_auroc_per_layer"]) == ["13"]
    with pytest.raises(ValueError, match="not stored"):
        _fit(ProbeDetector(layer=3), feats, split)


def test_baselines_score_exact_features(data):
    feats, split = data
    idx = split["test"]
    ppl = get_detector("perplexity")
    ent = get_detector("max_entropy")
    assert "val_auroc" in _fit(ppl, feats, split)
    stats = feats["scalar.logprob_stats"][idx].astype(np.float64)
    np.testing.assert_array_equal(ppl.score(iter_batches(feats, idx, 64)), -stats[:, 0])
    np.testing.assert_array_equal(ent.score(iter_batches(feats, idx, 64)), stats[:, 5])


@pytest.mark.parametrize("name", ["probe", "perplexity", "max_entropy"])  # the rest: test_detectors_neural
def test_save_load_round_trip_gives_identical_scores(name, data, tmp_path):
    feats, split = data
    det = get_detector(name)
    _fit(det, feats, split)
    det.save(tmp_path / name)
    assert (tmp_path / name / "config.json").is_file()
    loaded = load_detector(tmp_path / name)
    assert type(loaded) is type(det)
    before = det.score(iter_batches(feats, split["test"], 64))
    after = loaded.score(iter_batches(feats, split["test"], 50))
    np.testing.assert_array_equal(before, after)


def test_probe_weights_are_safetensors_not_pickle(data, tmp_path):
    feats, split = data
    det = ProbeDetector()
    _fit(det, feats, split)
    det.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown detector"):
        get_detector("nope")
    with pytest.raises(ValueError, match="already registered"):
        register("probe")(type("Other", (ProbeDetector,), {}))
    with pytest.raises(ValueError, match="layer"):
        ProbeDetector(layer="best")
    with pytest.raises(ValueError, match="C"):
        ProbeDetector(C=0)


def test_probe_needs_two_classes(data):
    feats, split = data
    ones = np.flatnonzero(feats["label"] == 1)
    with pytest.raises(ValueError, match="both classes"):
        ProbeDetector().fit(iter_batches(feats, ones), iter_batches(feats, split["val"]))
    with pytest.raises(ValueError, match="not fitted"):
        ProbeDetector().score(iter_batches(feats, ones))
