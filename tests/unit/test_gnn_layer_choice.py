"""gnn_layer reads the layer it is given, not just its default: the planted attention pattern sits in graph
layer 0 (the default would read the middle one, 1); layer=0 finds it, the default and layer=2 cannot."""

import numpy as np
import pytest
import torch

from truthtrace import metrics
from truthtrace.detectors import get_detector

pytest.importorskip("torch_geometric")

G, H, NODE_DIM, PLANTED = 3, 3, 8, 0
FAST = {"max_epochs": 8, "patience": 3, "tracking": "none", "device": "cpu"}


def _graph(rng, y, planted: bool):
    """A causal token graph; when ``planted``, hallucinated traces weight head 0's edges from token 0."""
    from torch_geometric.data import Data

    n = int(rng.integers(5, 9))
    src, dst = zip(*[(j, i) for i in range(n) for j in sorted({0, max(0, i - 1), i})])
    attr = rng.uniform(0, 1, size=(len(src), H))
    if planted:
        attr[:, 0] = np.where(np.array(src) == 0, 0.9 if y else 0.1, 0.1 if y else 0.5)
    return Data(x=torch.from_numpy(rng.normal(size=(n, NODE_DIM)).astype(np.float32)),
                edge_index=torch.tensor([src, dst], dtype=torch.int64),
                edge_attr=torch.from_numpy(attr.astype(np.float32)))


def _batches(n, seed, batch_size=32):
    from torch_geometric.data import Batch

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    out = []
    for s in range(0, n, batch_size):
        idx = np.arange(s, min(n, s + batch_size))
        out.append({"trace_id": [f"t{i}" for i in idx], "label": torch.from_numpy(y[idx]),
                    "graphs": [Batch.from_data_list([_graph(rng, y[i], g == PLANTED) for i in idx])
                               for g in range(G)]})
    return out


@pytest.fixture(scope="module")
def data():
    return _batches(256, 1), _batches(96, 2), _batches(128, 3)


@pytest.mark.parametrize("layer, solves", [(0, True), (None, False), (2, False)])
def test_gnn_layer_reads_the_given_layer(data, layer, solves):
    train, val, test = data
    det = get_detector("gnn_layer", layer=layer, **FAST)
    info = det.fit(train, val)
    assert info["graph_layers"] == [1 if layer is None else layer]
    auc = metrics.auroc(det.score(test), np.concatenate([b["label"].numpy() for b in test]))
    assert (auc > 0.95) if solves else (0.3 < auc < 0.7), auc
