"""Detectors that fit on rows held in memory learn the same thing whatever order the batches came in.

The train loader shuffles shard order, record order and a buffer, so the order of the same train
split changes with the feature store's shard boundaries (and its workers). Fitting sorts the rows by
trace id first: the same rows in another order and other batch sizes must give the very same scores.
"""

import numpy as np
import pytest
import torch
from test_detectors_neural import FAST, make_batches

from truthtrace.detectors import get_detector
from truthtrace.detectors.base import concat_batches, id_order


def rebatch(batches, seed: int, sizes=(7, 19, 33)):
    """The same rows as ``batches`` in a seeded random order, cut into batches of cycling ``sizes``."""
    keys = [k for k in batches[0] if k != "graphs"]
    rows = [{k: b[k][i] for k in keys} | ({"graphs": [g.get_example(i) for g in b["graphs"]]} if "graphs" in b
                                          else {}) for b in batches for i in range(len(b["label"]))]
    order = np.random.default_rng(seed).permutation(len(rows))
    out, start, n = [], 0, 0
    while start < len(rows):
        part = [rows[j] for j in order[start:start + sizes[n % len(sizes)]]]
        start, n = start + len(part), n + 1
        batch = {k: (torch.stack([r[k] for r in part]) if isinstance(part[0][k], torch.Tensor)
                     else [r[k] for r in part]) for k in keys}
        if "graphs" in part[0]:
            from torch_geometric.data import Batch

            n_layers = len(part[0]["graphs"])
            batch["graphs"] = [Batch.from_data_list([r["graphs"][g] for r in part]) for g in range(n_layers)]
        out.append(batch)
    return out


def test_id_order_sorts_by_id_and_keeps_rows_without_ids():
    assert id_order([["b", "a"], ["c", "a"]]).tolist() == [1, 3, 0, 2]  # per batch its trace ids
    assert id_order(None) is None and id_order([["a"], None]) is None
    batches = [{"trace_id": ["t2", "t0"], "label": np.array([0, 1])}, {"trace_id": ["t1"], "label": np.array([1])}]
    assert concat_batches(batches, ("label",), by_id=True)["label"].tolist() == [1, 1, 0]
    assert concat_batches(batches, ("label",))["label"].tolist() == [0, 1, 1]
    no_ids = [{"label": np.array([0, 1])}, {"label": np.array([1])}]
    assert concat_batches(no_ids, ("label",), by_id=True)["label"].tolist() == [0, 1, 1]


@pytest.mark.parametrize("name,args", [
    ("mlp", {**FAST, "layer": 2}),
    ("lstm", FAST),
    ("transformer", FAST),
    ("probe", {}),
    ("lookback", {}),
])
def test_fit_does_not_depend_on_batch_order(name, args):
    train, val, test = make_batches(160, 1), make_batches(64, 2), make_batches(64, 3)
    scores = []
    for batches in (train, rebatch(train, seed=5)):
        torch.manual_seed(0)
        det = get_detector(name, **args)
        det.fit(batches, val)
        scores.append(det.score(test))
    np.testing.assert_array_equal(scores[0], scores[1])


def test_gnn_fit_does_not_depend_on_batch_order():
    pytest.importorskip("torch_geometric")
    train, val, test = (make_batches(48, s, batch_size=16, graphs=True) for s in (1, 2, 3))
    scores = []
    for batches in (train, rebatch(train, seed=5)):
        det = get_detector("gnn", **FAST)
        det.fit(batches, val)
        scores.append(det.score(test))
    np.testing.assert_allclose(scores[0], scores[1], rtol=0, atol=1e-5)  # feature stats summed in another order
