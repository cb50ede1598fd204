"""FeatureDataset / make_loader: exactly once per epoch over workers and ranks, shuffling, batches."""

import json

import pytest
import torch
from planted_store import make_planted_store

from truthtrace.features.dataset import FeatureDataset, auto_num_workers, collate, make_loader, split_ids
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.store import TraceStore

SCALARS = ("scalar.logprob_stats", "scalar.lookback", "scalar.attn_logdet", "scalar.hidden_svd")


@pytest.fixture(scope="module")
def feats(tmp_path_factory):
    """Two feature stores of one planted store: 8 shards of 8 records, and a single shard."""
    root = tmp_path_factory.mktemp("ds")
    store, labels = make_planted_store(root, n=64, layers=2, heads=2, d=8)
    many, one = root / "many", root / "one"
    preprocess(store, many, PreprocessConfig(node_dim=4, shard_max_traces=8), labels=labels, progress=False)
    preprocess(store, one, PreprocessConfig(node_dim=4, shard_max_traces=256), labels=labels, progress=False)
    return many, one, labels


def _ids(loader) -> list[str]:
    return [i for batch in loader for i in batch["trace_id"]]


@pytest.mark.parametrize("which", [0, 1], ids=["shards-per-worker", "records-per-worker"])
def test_each_sample_once_per_epoch_with_two_workers(feats, which):
    root, labels = feats[which], feats[2]
    ds = FeatureDataset(root, "train", labels=labels, keys=("scalar.lookback",), shuffle=True, buffer_size=4)
    loader = make_loader(ds, batch_size=5, num_workers=2)
    want = sorted(split_ids(root, "train"))
    epochs = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        epochs.append(_ids(loader))
        assert sorted(epochs[-1]) == want
    assert epochs[0] != epochs[1]
    fresh = FeatureDataset(root, "train", labels=labels, keys=("scalar.lookback",), shuffle=True, buffer_size=4)
    fresh.set_epoch(1)  # persistent workers saw set_epoch(1): same order as a new loader at epoch 1
    assert _ids(make_loader(fresh, batch_size=5, num_workers=2)) == epochs[1]


@pytest.mark.parametrize("which", [0, 1])
def test_ranks_partition_the_split(feats, which):
    root = feats[which]
    per_rank = [_ids(make_loader(FeatureDataset(root, "val", keys=SCALARS, shuffle=True, rank=r, world_size=2),
                                 batch_size=4, num_workers=0)) for r in range(2)]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == sorted(split_ids(root, "val"))
    with pytest.raises(ValueError, match="rank"):
        FeatureDataset(root, "val", rank=2, world_size=2)


def test_ranks_times_workers(feats):
    root = feats[0]
    seen = []
    for r in range(2):
        seen += _ids(make_loader(FeatureDataset(root, None, keys=("scalar.hidden_svd",), shuffle=True,
                                                rank=r, world_size=2), batch_size=3, num_workers=2))
    assert sorted(seen) == sorted(TraceStore(root).ids())


def test_shuffle_is_reproducible_and_off_means_store_order(feats):
    root, labels = feats[0], feats[2]

    def order(seed, epoch, shuffle=True):
        ds = FeatureDataset(root, "train", labels=labels, keys=SCALARS, shuffle=shuffle, seed=seed, buffer_size=8)
        ds.set_epoch(epoch)
        return [s["trace_id"] for s in ds]

    assert order(0, 3) == order(0, 3)
    assert order(0, 3) != order(0, 4) and order(0, 3) != order(1, 3)
    train = set(split_ids(root, "train"))
    assert order(0, 0, shuffle=False) == [i for i in TraceStore(root).ids() if i in train]


def test_labels_batches_and_errors(feats):
    root, labels = feats[0], feats[2]
    ds = FeatureDataset(root, "test", labels=labels, keys=("seq.last_answer", *SCALARS))
    batch = next(iter(make_loader(ds, batch_size=6, num_workers=0)))
    assert batch["seq.last_answer"].shape == (6, 3, 8) and batch["seq.last_answer"].dtype == torch.float32
    assert batch["scalar.lookback"].shape == (6, 2, 2) and batch["scalar.attn_logdet"].shape == (6, 2)
    assert batch["scalar.hidden_svd"].shape == (6, 3) and batch["scalar.logprob_stats"].shape == (6, 8)
    truth = {r["trace_id"]: r for r in _csv(labels)}
    assert batch["label"].tolist() == [int(truth[t]["hallucinated"]) for t in batch["trace_id"]]
    assert batch["question_id"] == [truth[t]["question_id"] for t in batch["trace_id"]]
    some = {batch["trace_id"][0]: 1}
    unlabeled = next(iter(FeatureDataset(root, "test", labels=some, keys=SCALARS)))
    assert unlabeled["label"] in (1, -1)
    with pytest.raises(ValueError, match="no label"):
        FeatureDataset(root, "test", labels=some, require_labels=True)
    with pytest.raises(ValueError, match="keys"):
        FeatureDataset(root, "test", keys=("seq.nope",))
    with pytest.raises(ValueError, match="split"):
        FeatureDataset(root, "dev")
    with pytest.raises(ValueError, match="not a feature store"):
        FeatureDataset(root.parent / "traces", "test")
    assert 0 <= auto_num_workers() <= 4


def _csv(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_graph_batches(feats):
    root = feats[0]
    ds = FeatureDataset(root, "train", keys=("graphs", "scalar.lookback"))
    samples = [s for _, s in zip(range(5), ds)]
    batch = collate(samples)
    schema = json.loads((root / "index.json").read_text())["schema"]
    assert len(batch["graphs"]) == len(schema["graph"]["layers"]) == 2
    for g, graph in enumerate(batch["graphs"]):
        n_nodes = [s["graphs"][g].num_nodes for s in samples]
        n_edges = [s["graphs"][g].edge_index.shape[1] for s in samples]
        assert graph.x.shape == (sum(n_nodes), 4) and graph.x.dtype == torch.float32
        assert graph.edge_index.shape == (2, sum(n_edges)) and graph.edge_attr.shape == (sum(n_edges), 2)
        assert graph.batch.tolist() == [b for b, n in enumerate(n_nodes) for _ in range(n)]
        assert int(graph.edge_index.max()) < sum(n_nodes)
    loader = make_loader(ds, batch_size=7, num_workers=2)
    sizes = [b["graphs"][0].num_graphs for b in loader]
    assert sum(sizes) == len(split_ids(root, "train"))
