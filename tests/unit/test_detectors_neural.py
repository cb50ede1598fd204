"""Neural and literature detectors on synthetic batches shaped like the feature-store contract,
each with a planted signal of known layer/head/sign."""

import numpy as np
import pytest
import torch

from truthtrace import metrics
from truthtrace.detectors import DETECTORS, get_detector, load_detector
from truthtrace.detectors.mlp import sweep_positions

LH, D, LA, H, G, NODE_DIM = 5, 16, 4, 3, 3, 8  # hidden layers, width, attn layers, heads, graph layers
SEQ_LAYER, LOOKBACK = 2, (1, 2)  # planted hidden layer; planted (layer, head) of the lookback ratio
LOGDET_LAYER, SVD_LAYER, GRAPH_LAYER = 3, 1, 1
FAST = {"max_epochs": 2, "patience": 2, "tracking": "none", "device": "cpu"}


def _graph(rng, y, planted: bool):
    """A causal token graph: each token links to itself and <= 2 previous ones; edge_attr (E, H).

    When ``planted``, hallucinated traces put head 0's weight on edges from token 0 (an attention sink).
    """
    from torch_geometric.data import Data

    n = int(rng.integers(5, 9))
    src, dst = [], []
    for i in range(n):
        for j in sorted({0, max(0, i - 1), i}):
            src.append(j)
            dst.append(i)
    attr = rng.uniform(0, 1, size=(len(src), H))
    if planted:
        attr[:, 0] = np.where(np.array(src) == 0, 0.9 if y else 0.1, 0.1 if y else 0.5)
    return Data(x=torch.from_numpy(rng.normal(size=(n, NODE_DIM)).astype(np.float32)),
                edge_index=torch.tensor([src, dst], dtype=torch.int64),
                edge_attr=torch.from_numpy(attr.astype(np.float32)))


def make_batches(n, seed, batch_size=32, graphs=False):
    """Batch dicts as ``make_loader`` yields them, with planted signals (see the module constants)."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(99).normal(size=D)
    direction /= np.linalg.norm(direction)
    y = rng.integers(0, 2, n)
    sign = (2 * y - 1).astype(np.float64)
    seq = rng.normal(size=(n, LH, D))
    seq[:, SEQ_LAYER] += 1.5 * sign[:, None] * direction
    lookback = rng.uniform(0.2, 0.8, size=(n, LA, H))
    lookback[:, LOOKBACK[0], LOOKBACK[1]] = 0.5 - 0.15 * sign + 0.05 * rng.normal(size=n)
    logdet = rng.normal(size=(n, LA))
    logdet[:, LOGDET_LAYER] -= 1.5 * sign  # hallucinated -> lower: the - sign must be chosen
    svd = rng.normal(size=(n, LH))
    svd[:, SVD_LAYER] += 1.5 * sign
    out = []
    for s in range(0, n, batch_size):
        idx = np.arange(s, min(n, s + batch_size))
        batch = {
            "trace_id": [f"t{seed}-{i}" for i in idx], "question_id": [f"q{seed}-{i}" for i in idx],
            "label": torch.from_numpy(y[idx]),
            "seq.last_answer": torch.from_numpy(seq[idx].astype(np.float32)),
            "scalar.lookback": torch.from_numpy(lookback[idx].astype(np.float32)),
            "scalar.attn_logdet": torch.from_numpy(logdet[idx].astype(np.float32)),
            "scalar.hidden_svd": torch.from_numpy(svd[idx].astype(np.float32)),
            "scalar.logprob_stats": torch.from_numpy(rng.normal(size=(len(idx), 8)).astype(np.float32)),
        }
        if graphs:
            from torch_geometric.data import Batch

            batch["graphs"] = [Batch.from_data_list([_graph(rng, y[i], g == GRAPH_LAYER) for i in idx])
                               for g in range(G)]
        out.append(batch)
    return out


def labels_of(batches):
    return np.concatenate([b["label"].numpy() for b in batches])


@pytest.fixture(scope="module")
def data():
    return make_batches(640, 1), make_batches(128, 2), make_batches(192, 3)


@pytest.fixture(scope="module")
def graph_data():
    pytest.importorskip("torch_geometric")
    return make_batches(256, 1, graphs=True), make_batches(96, 2, graphs=True), make_batches(128, 3, graphs=True)


def test_gnn_reads_evenly_spaced_graph_layers():
    from truthtrace.detectors.gnn import GNNDetector, GNNLayerDetector

    assert GNNDetector().positions(30) == [0, 4, 8, 12, 17, 21, 25, 29]
    assert GNNDetector().positions(3) == [0, 1, 2]
    assert GNNLayerDetector().positions(5) == [2] and GNNLayerDetector(layer=4).positions(5) == [4]
    with pytest.raises(ValueError, match="not stored"):
        GNNLayerDetector(layer=5).positions(5)


def test_sweep_positions():
    assert sweep_positions(31, 4) == [0, 4, 8, 12, 16, 20, 24, 28, 30]
    assert sweep_positions(5, 1) == [0, 1, 2, 3, 4]


def test_mlp_finds_planted_layer_and_solves_test(data):
    train, val, test = data
    det = get_detector("mlp", max_epochs=20, patience=5, tracking="none", sweep_epochs=3)
    info = det.fit(train[:10], val)  # 320 traces are enough for the MLP; the LSTM gets all 640
    assert info["layer_index"] == SEQ_LAYER
    assert set(info["val_auroc_sweep"]) >= {"0", "2", "4"}
    assert metrics.auroc(det.score(test), labels_of(test)) > 0.95
    assert det.describe().startswith(f"layer {SEQ_LAYER},")


def test_lstm_solves_planted_layer(data):
    train, val, test = data
    det = get_detector("lstm", lr=3e-3, max_epochs=25, patience=6, tracking="none")
    info = det.fit(train, val)
    assert metrics.auroc(det.score(test), labels_of(test)) > 0.95
    assert len(info["layer_attention"]) == LH and "LSTM 64" in det.describe()


@pytest.mark.parametrize("name", ["gnn", "gnn_layer"])
def test_gnn_solves_planted_attention_pattern(name, graph_data):
    train, val, test = graph_data
    det = get_detector(name, max_epochs=8, patience=3, tracking="none")
    info = det.fit(train, val)
    assert metrics.auroc(det.score(test), labels_of(test)) > 0.95
    assert info["graph_layers"] == ([GRAPH_LAYER] if name == "gnn_layer" else list(range(G)))


def test_gine_variant_trains(graph_data):
    train, val, test = graph_data
    det = get_detector("gnn", conv="gine", shared=False, max_epochs=3, tracking="none")
    det.fit(train, val)
    assert det.score(test).shape == (128,)


def test_lookback_solves_planted_ratio(data):
    train, val, test = data
    det = get_detector("lookback")
    info = det.fit(train, val)
    assert info["n_features"] == LA * H
    assert metrics.auroc(det.score(test), labels_of(test)) > 0.95


@pytest.mark.parametrize("name,layer,sign", [("attn_logdet", LOGDET_LAYER, -1.0), ("hidden_svd", SVD_LAYER, 1.0)])
def test_llm_check_picks_planted_layer_and_sign(name, layer, sign, data):
    train, val, test = data
    det = get_detector(name)
    info = det.fit(train, val)
    assert (info["layer_index"], info["sign"]) == (layer, sign)
    key = f"scalar.{name}"
    expected = np.concatenate([sign * b[key][:, layer].numpy().astype(np.float64) for b in test])
    np.testing.assert_array_equal(det.score(test), expected)
    assert metrics.auroc(det.score(test), labels_of(test)) > 0.8
    assert DETECTORS[name].family == "training-free" and "training-free" in det.describe()


MINE = ("mlp", "lstm", "gnn", "gnn_layer", "lookback", "attn_logdet", "hidden_svd")


@pytest.mark.parametrize("name", MINE)
def test_save_load_scores_identically(name, tmp_path):
    graphs = name.startswith("gnn")
    if graphs:
        pytest.importorskip("torch_geometric")
    train, val, test = (make_batches(n, s, graphs=graphs) for n, s in ((96, 1), (64, 2), (64, 3)))
    kwargs = dict(FAST, sweep_epochs=1) if name == "mlp" else dict(FAST) if DETECTORS[name].stochastic else {}
    det = get_detector(name, **kwargs)
    det.fit(train, val)
    det.save(tmp_path / name)
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_detector(tmp_path / name)
    assert type(loaded) is type(det) and loaded.args() == det.args() and loaded.describe() == det.describe()
    before = det.score(test)
    assert before.dtype == np.float64 and before.shape == (64,)
    np.testing.assert_array_equal(before, loaded.score(test))


def test_torch_detectors_are_seeded_and_write_tracking_and_checkpoints(data, tmp_path):
    train, val, test = data
    kw = {"max_epochs": 3, "log_dir": str(tmp_path / "tb"), "checkpoint_dir": str(tmp_path / "ck"), "seed": 7}
    a = get_detector("lstm", **kw)
    a.fit(train, val)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert (tmp_path / "ck" / "last.safetensors").is_file() and (tmp_path / "ck" / "best.json").is_file()
    b = get_detector("lstm", **dict(kw, checkpoint_dir=None, log_dir=None))
    b.fit(train, val)
    np.testing.assert_array_equal(a.score(test), b.score(test))  # same seed, same model
    resumed = get_detector("lstm", **kw)  # a finished run resumes from its last checkpoint
    resumed.fit(train, val)
    np.testing.assert_array_equal(a.score(test), resumed.score(test))


def test_detector_argument_errors():
    with pytest.raises(ValueError, match="unknown arguments"):
        get_detector("mlp", epochs=3)
    with pytest.raises(ValueError, match="max_epochs"):
        get_detector("lstm", max_epochs=0)
    with pytest.raises(ValueError, match="conv"):
        get_detector("gnn", conv="gcn")
    with pytest.raises(ValueError, match="layer"):
        get_detector("mlp", layer="best")
    with pytest.raises(ValueError, match="C"):
        get_detector("lookback", C=0)
    with pytest.raises(ValueError, match="not fitted"):
        get_detector("attn_logdet").score([])


def test_mlp_fixed_layer_out_of_range(data):
    train, val, _ = data
    with pytest.raises(ValueError, match="not stored"):
        get_detector("mlp", layer=LH, **FAST).fit(train, val)


def test_end_to_end_on_a_preprocessed_planted_store(tmp_path):
    """planted trace store -> preprocess -> FeatureDataset loaders -> detectors find what was planted."""
    pytest.importorskip("torch_geometric")
    from planted_store import make_planted_store

    from truthtrace.features.dataset import FeatureDataset, make_loader
    from truthtrace.features import PreprocessConfig, preprocess

    store, labels = make_planted_store(tmp_path, n=160, layers=3, heads=2, d=16)  # hidden layer 2, attn layer 2
    preprocess(store, tmp_path / "feats", PreprocessConfig(node_dim=8, shard_max_traces=64), labels=labels,
               progress=False)

    def loader(split, keys):
        ds = FeatureDataset(tmp_path / "feats", split=split, labels=labels, keys=keys, shuffle=split == "train",
                            require_labels=True)
        return make_loader(ds, batch_size=32, num_workers=0)

    for name, kwargs in (("mlp", {"sweep_epochs": 3}), ("lookback", {}), ("gnn_layer", {"layer": 2})):
        keys = DETECTORS[name].inputs
        if DETECTORS[name].stochastic:
            kwargs = dict(kwargs, max_epochs=8, patience=4, tracking="none")
        det = get_detector(name, **kwargs)
        info = det.fit(loader("train", keys), loader("val", keys))
        if name == "mlp":
            assert info["layer_index"] == 2
        test = loader("test", keys)
        assert metrics.auroc(det.score(test), labels_of(test)) > 0.9, name
        det.save(tmp_path / name)
        np.testing.assert_array_equal(load_detector(tmp_path / name).score(test), det.score(test))
