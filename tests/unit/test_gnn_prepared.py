"""The gnn detector's fast paths give the very numbers of the plain ones.

- graphs prepared once (standardized, attention received, GATv2's self loops) and re-batched with ``torch.cat``
  give bit-identical logits to ``GraphNet`` on ``torch_geometric`` batches of the raw graphs;
- GATv2 without its own self-loop step, fed the loops once per layer, equals PyG's GATv2Conv adding them itself
  (outputs and gradients);
- a feature-store loader narrowed to the kept graph layers yields the same graphs as the full one, and a gnn fit
  on it trains the same weights, bit for bit, as on batches holding every graph layer;
- feature stores are opened once per process and reopened when rewritten.
"""

import shutil

import pytest
import torch
from planted_store import make_planted_store

from truthtrace.detectors.graph_batches import PreparedBatches, graph_stats, prepare_layers, read_layers
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.features.dataset import FeatureDataset, make_loader, with_graph_layers
from truthtrace.features.open_stores import forget_stores, shared_store

pytest.importorskip("torch_geometric")

H, NODE_DIM = 3, 6


def _graph(gen: torch.Generator, n: int):
    """A causal token graph like the store's: each token's top sources j <= i (itself included), sorted."""
    from torch_geometric.data import Data

    edges = sorted({(j, i) for i in range(n) for j in (i, max(0, i - 1), int(torch.randint(0, i + 1, (1,),
                                                                                          generator=gen)))},
                   key=lambda e: (e[1], e[0]))
    return Data(x=torch.randn(n, NODE_DIM, generator=gen), edge_index=torch.tensor(edges).T.contiguous(),
                edge_attr=torch.rand(len(edges), H, generator=gen), num_nodes=n)


def _batches(n_traces: int, n_layers: int, batch_size: int, seed: int = 0) -> list[dict]:
    from torch_geometric.data import Batch

    gen = torch.Generator().manual_seed(seed)
    graphs = [[_graph(gen, int(torch.randint(3, 10, (1,), generator=gen))) for _ in range(n_layers)]
              for _ in range(n_traces)]
    labels = torch.arange(n_traces) % 2
    return [{"graphs": [Batch.from_data_list([g[layer] for g in graphs[s:s + batch_size]])
                        for layer in range(n_layers)], "label": labels[s:s + batch_size]}
            for s in range(0, n_traces, batch_size)]


@pytest.mark.parametrize("conv", ["gatv2", "gine"])
def test_prepared_batches_give_the_logits_of_raw_batches(conv):
    from torch_geometric.data import Batch

    from truthtrace.detectors.gnn import GraphNet

    batches = _batches(24, 3, 8)
    layers, labels, _ = read_layers(batches, [0, 2])
    mean, std = graph_stats(layers)  # (2, NODE_DIM)
    torch.manual_seed(0)
    net = GraphNet(2, NODE_DIM, H, 16, conv, shared=True, dropout=0.0).eval()
    net.mean.copy_(mean)
    net.std.copy_(std)
    raw = [[b[0].to_data_list(), b[1].to_data_list()] for b in layers]
    prepared = PreparedBatches(prepare_layers(layers, mean, std, conv == "gatv2"), labels, 8, shuffle=True, seed=3)
    flat = [list(trace) for batch in raw for trace in zip(*batch)]  # per trace: (layer 0, layer 2)
    order = torch.randperm(24, generator=torch.Generator().manual_seed(3 * 100_003))
    with torch.no_grad():
        for k, batch in enumerate(prepared):
            idx = order[8 * k:8 * k + 8].tolist()
            graphs = [Batch.from_data_list([flat[i][g] for i in idx]) for g in range(2)]
            assert torch.equal(net(batch["layers"]), net.forward_graphs(graphs))
            assert torch.equal(batch["label"], labels[idx])


def test_gatv2_with_loops_added_once_equals_pyg_adding_them():
    from torch_geometric.nn import GATv2Conv

    from truthtrace.detectors.gnn import make_conv
    from truthtrace.detectors.graph_batches import with_self_loops

    g = _batches(8, 1, 8)[0]["graphs"][0]
    torch.manual_seed(0)
    ours = make_conv("gatv2", NODE_DIM, H)
    theirs = GATv2Conv(NODE_DIM, NODE_DIM, heads=1, edge_dim=H)  # adds the self loops itself
    theirs.load_state_dict(ours.state_dict())
    edge_index, edge_attr = with_self_loops(g.edge_index, g.edge_attr, g.num_nodes)
    outs = []
    for conv, args in ((ours, (edge_index, edge_attr)), (theirs, (g.edge_index, g.edge_attr))):
        x = g.x.clone().requires_grad_()
        out = conv(x, *args)
        (out ** 2).sum().backward()
        outs.append((out.detach(), x.grad, [p.grad for p in conv.parameters()]))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    assert all(torch.equal(a, b) for a, b in zip(outs[0][2], outs[1][2]))


@pytest.fixture(scope="module")
def feats(tmp_path_factory):
    root = tmp_path_factory.mktemp("gnnfeat")
    store, labels = make_planted_store(root, n=64, layers=3, heads=2, d=8, planted_attn_layer=0)
    out = root / "feats"
    preprocess(store, out, PreprocessConfig(node_dim=4, shard_max_traces=16), labels=labels, progress=False)
    return out, labels


def _loaders(feats, batch_size=16):
    root, labels = feats
    return [make_loader(FeatureDataset(root, split, labels=labels, keys=("graphs",), shuffle=split == "train",
                                       seed=0, require_labels=True), batch_size=batch_size, num_workers=0)
            for split in ("train", "val")]


def test_narrowed_loader_yields_the_kept_layers_only(feats):
    train, _ = _loaders(feats)
    narrow = with_graph_layers(train, [2, 0])
    assert with_graph_layers([{"graphs": []}], [0]) is None
    for full, thin in zip(train, narrow):
        assert full["trace_id"] == thin["trace_id"] and len(thin["graphs"]) == 2
        for got, want in zip(thin["graphs"], (full["graphs"][2], full["graphs"][0])):
            for key in ("x", "edge_index", "edge_attr", "batch"):
                assert torch.equal(getattr(got, key), getattr(want, key))
    with pytest.raises(ValueError, match="graph_layers"):
        with_graph_layers(train, [3])


def test_gnn_fit_on_the_store_equals_fit_on_all_layer_batches(feats):
    from truthtrace.detectors import get_detector

    fast = {"max_epochs": 3, "patience": 3, "tracking": "none", "device": "cpu", "quiet": True, "hidden": 16,
            "max_layers": 2}
    dets = []
    for source in ("store", "lists"):
        train, val = _loaders(feats)
        if source == "lists":  # plain batches with every graph layer: the generic path
            train, val = list(train), list(val)
        det = get_detector("gnn", **fast)
        info = det.fit(train, val)
        dets.append((det, info))
    (a, ia), (b, ib) = dets
    assert ia == ib and ia["graph_layers"] == [0, 2]
    sa, sb = a.module.state_dict(), b.module.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_stores_are_opened_once_and_reopened_when_rewritten(feats, tmp_path):
    forget_stores()
    root, _ = feats
    first = shared_store(root)
    assert shared_store(root) is first
    a, b = _loaders(feats)
    assert a.dataset._open() is first and b.dataset._open() is first
    store, labels = make_planted_store(tmp_path, n=16, layers=1, heads=2, d=8, planted_layer=1)
    other = tmp_path / "feats"
    preprocess(store, other, PreprocessConfig(node_dim=4), labels=labels, progress=False)
    before = shared_store(other)
    shutil.rmtree(other)  # the same path, written again
    preprocess(store, other, PreprocessConfig(node_dim=4, shard_max_traces=4), labels=labels, progress=False)
    after = shared_store(other)
    assert after is not before and len(after.shard_ids()) == 4
