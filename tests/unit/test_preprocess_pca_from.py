"""preprocess with ``pca_from``: a given PCA is reused exactly (not refitted), recorded, and checked."""

import json

import pytest
import torch
from planted_store import make_planted_store

from truthtrace.naming import layer_key
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.features.graphs import apply_pca, load_pca
from truthtrace.store import TraceStore

CFG = dict(node_dim=4, max_nodes=8, shard_max_traces=16)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Two planted stores of the same shape but other traces, and the first one's feature store."""
    root = tmp_path_factory.mktemp("pca_from")
    a, labels_a = make_planted_store(root / "a", n=40, layers=2, heads=2, d=8, seed=0)
    b, labels_b = make_planted_store(root / "b", n=20, layers=2, heads=2, d=8, seed=1)
    preprocess(a, root / "feats_a", PreprocessConfig(**CFG), labels=labels_a, progress=False)
    return root, b, labels_b


def test_given_pca_is_reused_and_applied(stores, tmp_path):
    root, b, labels_b = stores
    given = root / "feats_a" / "pca.safetensors"
    preprocess(b, tmp_path / "own", PreprocessConfig(**CFG), labels=labels_b, progress=False)
    preprocess(b, tmp_path / "reused", PreprocessConfig(**CFG, pca_from=str(root / "feats_a")), labels=labels_b,
               progress=False)
    mean, comps = load_pca(given)
    again = load_pca(tmp_path / "reused" / "pca.safetensors")
    assert torch.equal(again[0], mean) and torch.equal(again[1], comps)
    assert not torch.equal(load_pca(tmp_path / "own" / "pca.safetensors")[1], comps)  # a refit differs
    feats = TraceStore(tmp_path / "reused")
    assert feats.schema["graph"]["pca_from"] == str(given.resolve())
    assert "pca_from" not in TraceStore(tmp_path / "own").schema["graph"]  # unset: the schema is unchanged
    layers = feats.schema["graph"]["layers"]
    tid = feats.ids()[0]
    trace = TraceStore(b).get(tid)
    n = feats.read(tid, f"graph.{layers[0]}.x").shape[0]
    raw = torch.stack([trace[layer_key(i, "hidden")].float()[-n:] for i in layers])  # (G, n, d)
    expected = apply_pca(raw, mean, comps)  # (G, n, k)
    for g, layer in enumerate(layers):
        torch.testing.assert_close(feats.read(tid, f"graph.{layer}.x").float(), expected[g], atol=2e-3, rtol=2e-3)
    split = json.loads((tmp_path / "reused" / "split.json").read_text())
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(TraceStore(b).ids())


def test_bad_pca_from_is_refused(stores, tmp_path):
    root, b, labels_b = stores
    with pytest.raises(ValueError, match="pca_from needs pca=True"):
        PreprocessConfig(pca=False, pca_from=str(root / "feats_a"))
    with pytest.raises(ValueError, match=r"components \(2, 4, 8\).*\(2, 3, 8\)"):
        preprocess(b, tmp_path / "x", PreprocessConfig(node_dim=3, max_nodes=8, pca_from=str(root / "feats_a")),
                   labels=labels_b, progress=False)
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        preprocess(b, tmp_path / "y", PreprocessConfig(**CFG, pca_from=str(tmp_path / "nothing.safetensors")),
                   labels=labels_b, progress=False)
