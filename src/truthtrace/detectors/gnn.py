"""Graph detectors on attention graphs: tokens are nodes, attention weights are edges.

For each graph layer a 2-layer GNN (GATv2Conv or GINEConv, both reading the per-head edge
weights ``edge_attr`` ``(E, H)``) embeds the tokens, mean and max pooling make one vector
per trace and layer, and a bi-LSTM across the graph layers (``gnn``) or a plain head on
one layer (``gnn_layer``) gives the logit. Node features (plus the attention mass each
token receives per head) are standardized per graph layer with train statistics. Train and
val graphs of the kept layers are read into memory once (~50 MB per layer for 1,600 traces
of 64 nodes). Needs ``torch_geometric`` (``pip install 'truthtrace[gnn]'``).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from truthtrace.detectors.base import Batch, register
from truthtrace.detectors.torch_base import TorchDetector

CONVS = ("gatv2", "gine")


def _pyg():
    """The torch_geometric.nn module, or an ImportError naming the extra."""
    try:
        import torch_geometric.nn as pyg_nn
    except ImportError as e:
        raise ImportError("graph detectors need torch_geometric: pip install 'truthtrace[gnn]'") from e
    return pyg_nn


def make_conv(kind: str, width: int, n_heads: int) -> nn.Module:
    """A message-passing layer ``width -> width`` that uses ``edge_attr`` ``(E, n_heads)``."""
    pyg_nn = _pyg()
    if kind == "gatv2":
        return pyg_nn.GATv2Conv(width, width, heads=1, edge_dim=n_heads)
    mlp = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
    return pyg_nn.GINEConv(mlp, train_eps=True, edge_dim=n_heads)


def attention_received(edge_index: torch.Tensor, edge_attr: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """Attention mass each token receives per head, ``(N, H)``: the sum of its outgoing edge weights.

    Fed to the GNN as node features so that attention patterns (e.g. a sink token soaking up
    attention) are visible even when the hidden states say little; GATv2 otherwise uses edge
    weights only to mix neighbours.
    """
    out = torch.zeros(n_nodes, edge_attr.shape[1], dtype=edge_attr.dtype, device=edge_attr.device)
    return out.index_add_(0, edge_index[0], edge_attr)


class GraphEncoder(nn.Module):
    """Token graph -> ``(n_graphs, 2 * hidden)``: input projection, 2 residual convs, mean + max pool."""

    def __init__(self, node_dim: int, n_heads: int, hidden: int, conv: str, dropout: float):
        super().__init__()
        self.inp = nn.Linear(node_dim + n_heads, hidden)
        self.convs = nn.ModuleList([make_conv(conv, hidden, n_heads) for _ in range(2)])
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, edge_index, edge_attr, batch, n_graphs: int) -> torch.Tensor:
        pyg_nn = _pyg()
        x = torch.cat([x, attention_received(edge_index, edge_attr, x.shape[0])], dim=-1)  # (N, node_dim + H)
        h = torch.relu(self.inp(x))  # (N, hidden)
        for conv in self.convs:
            h = h + self.dropout(torch.relu(conv(h, edge_index, edge_attr)))
        return torch.cat([pyg_nn.global_mean_pool(h, batch, n_graphs), pyg_nn.global_max_pool(h, batch, n_graphs)],
                         dim=-1)


class GraphNet(nn.Module):
    """A list of ``G`` graph batches -> logits ``(B,)``; a bi-LSTM across them when ``G > 1``."""

    def __init__(self, n_layers: int, node_dim: int, n_heads: int, hidden: int, conv: str, shared: bool,
                 dropout: float):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_layers, node_dim))
        self.register_buffer("std", torch.ones(n_layers, node_dim))
        self.shared = shared
        n_enc = 1 if shared else n_layers
        self.encoders = nn.ModuleList([GraphEncoder(node_dim, n_heads, hidden, conv, dropout) for _ in range(n_enc)])
        self.lstm = nn.LSTM(2 * hidden, hidden, batch_first=True, bidirectional=True) if n_layers > 1 else None
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, graphs: list) -> torch.Tensor:
        per_layer = []
        for i, g in enumerate(graphs):
            enc = self.encoders[0 if self.shared else i]
            x = (g.x.float() - self.mean[i]) / self.std[i]  # (N, node_dim)
            per_layer.append(enc(x, g.edge_index, g.edge_attr.float(), g.batch, g.num_graphs))
        z = torch.stack(per_layer, dim=1)  # (B, G, 2 * hidden)
        if self.lstm is not None:
            z = self.lstm(z)[0].mean(dim=1)  # (B, 2 * hidden)
        else:
            z = z[:, 0]
        return self.head(z).squeeze(-1)


class GraphBatches:
    """Graphs of the selected layers held in memory, re-batched (and reshuffled per epoch) on each pass.

    Reading a feature store's graphs costs far more than a GNN step on a CPU, so train and val
    are read once; an epoch then only re-collates ``Batch.from_data_list`` for the kept layers.

    Args:
        samples: per trace, one ``torch_geometric.data.Data`` per kept graph layer.
        labels: ``(n,)`` int64.
        batch_size: traces per batch.
        shuffle: permute traces each epoch (from ``seed`` and the epoch set by ``set_epoch``).
    """

    def __init__(self, samples: list[list], labels: torch.Tensor, batch_size: int, shuffle: bool = False,
                 seed: int = 0):
        self.samples, self.labels = samples, labels
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        from torch_geometric.data import Batch as PygBatch

        n = len(self.samples)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        else:
            order = torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size].tolist()
            graphs = [PygBatch.from_data_list([self.samples[i][g] for i in idx]) for g in range(len(self.samples[0]))]
            yield {"graphs": graphs, "label": self.labels[idx]}


def read_graphs(batches: Iterable[Batch], positions: list[int]) -> tuple[list[list], torch.Tensor, int]:
    """One pass over ``batches``: per trace the ``Data`` of graph layers ``positions``, labels ``(n,)``,
    and the number of graph layers in the batches.

    Raises:
        ValueError: on no batches, batches without ``"graphs"``, or fewer graph layers than ``positions`` needs.
    """
    samples: list[list] = []
    labels, n_layers = [], 0
    for batch in batches:
        if "graphs" not in batch:
            raise ValueError("batch is missing key 'graphs' (ask the loader for keys=('graphs',))")
        n_layers = len(batch["graphs"])
        if max(positions) >= n_layers:
            raise ValueError(f"graph layer {max(positions)} is not stored; the batches hold {n_layers} graph layers")
        per_layer = [batch["graphs"][p].to_data_list() for p in positions]
        samples.extend(list(graphs) for graphs in zip(*per_layer))
        labels.append(torch.as_tensor(batch["label"]).long().reshape(-1))
    if not samples:
        raise ValueError("no batches to read (empty split?)")
    return samples, torch.cat(labels), n_layers


def graph_stats(samples: list[list]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of node features per kept graph layer over all nodes: ``(G, node_dim)`` each."""
    means, stds = [], []
    for g in range(len(samples[0])):
        x = torch.cat([s[g].x for s in samples]).double()  # (N_all, node_dim)
        means.append(x.mean(0))
        stds.append(x.std(0).nan_to_num(1.0).clamp_min(1e-4))
    return torch.stack(means).float(), torch.stack(stds).float()


def _forward_cached(module: nn.Module, batch: Batch, device: str) -> torch.Tensor:
    """Logits of a :class:`GraphBatches` batch, whose graphs are already the kept layers."""
    return module([g.to(device) for g in batch["graphs"]])


def _first_graphs(batches: Iterable[Batch]) -> list:
    """The ``graphs`` list of the first batch (to read sizes)."""
    for batch in batches:
        if "graphs" not in batch:
            raise ValueError("batch is missing key 'graphs' (ask the loader for keys=('graphs',))")
        return batch["graphs"]
    raise ValueError("no batches to read (empty split?)")


@register("gnn")
class GNNDetector(TorchDetector):
    """GNN on every graph layer, then a bi-LSTM across layers.

    Args:
        conv: ``"gatv2"`` (GATv2Conv, 1 attention head, edge weights in the attention) or ``"gine"``
            (GINEConv, edge weights added to messages; ~1.5x faster).
        hidden: node embedding width.
        shared: one GNN for all graph layers (else one per layer).
        dropout: dropout in the convs and before the head.
        max_layers: read at most this many graph layers, evenly spaced (first and last included).
        **loop: :class:`~truthtrace.training.LoopConfig` fields.
    Raises:
        ValueError: naming the argument when one is out of range.
    """

    inputs = ("graphs",)
    defaults = {"lr": 2e-3, "weight_decay": 1e-2, "max_epochs": 30, "patience": 5}

    def __init__(self, conv: str = "gatv2", hidden: int = 64, shared: bool = True, dropout: float = 0.1,
                 max_layers: int = 8, **loop: Any):
        super().__init__(**loop)
        if not (isinstance(max_layers, int) and max_layers >= 1):
            raise ValueError(f"max_layers must be an int >= 1, got {max_layers!r}")
        self.max_layers = max_layers
        if conv not in CONVS:
            raise ValueError(f"conv must be one of {CONVS}, got {conv!r}")
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.conv, self.hidden, self.shared, self.dropout = conv, int(hidden), bool(shared), float(dropout)

    def own_args(self) -> dict:
        return {"conv": self.conv, "hidden": self.hidden, "shared": self.shared, "dropout": self.dropout,
                "max_layers": self.max_layers}

    def positions(self, n_graph_layers: int) -> list[int]:
        """Graph layers read (positions in ``batch["graphs"]``): all, or ``max_layers`` evenly spaced ones.

        Every one of 30 layers costs ~4x the time of 8 on a CPU, for neighbouring layers that carry
        much the same pattern.
        """
        if n_graph_layers <= self.max_layers:
            return list(range(n_graph_layers))
        return sorted({round(i * (n_graph_layers - 1) / (self.max_layers - 1)) for i in range(self.max_layers)}
                      if self.max_layers > 1 else {n_graph_layers - 1})

    def build(self) -> nn.Module:
        return GraphNet(len(self.dims["positions"]), self.dims["node_dim"], self.dims["n_heads"], self.hidden,
                        self.conv, self.shared, self.dropout)

    def forward(self, module: nn.Module, batch: Batch, device: str) -> torch.Tensor:
        return module([batch["graphs"][p].to(device) for p in self.dims["positions"]])

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Read train and val once (kept graph layers only), train, early-stopping on ``val`` AUROC.

        Returns ``{"val_auroc", "best_epoch", "epochs", "graph_layers", "pos_weight"}``.
        Raises:
            ValueError: if a split lacks a class or batches lack ``"graphs"``.
        """
        positions = self.positions(len(_first_graphs(val)))
        tr, y_tr, _ = read_graphs(train, positions)
        va, y_va, _ = read_graphs(val, positions)
        first = tr[0][0]
        self.dims = {"positions": positions, "node_dim": int(first.x.shape[1]),
                     "n_heads": int(first.edge_attr.shape[1])}
        mean, std = graph_stats(tr)  # (G, node_dim) each

        def prepare(module: GraphNet) -> None:
            module.mean.copy_(mean)
            module.std.copy_(std)

        result = self.train_module(GraphBatches(tr, y_tr, self.loop.batch_size, shuffle=True, seed=self.loop.seed),
                                   GraphBatches(va, y_va, 256), forward=_forward_cached, prepare=prepare)
        self.state = {"val_auroc": result.best_auroc, "best_epoch": result.best_epoch, "epochs": result.epochs,
                      "graph_layers": positions}
        return dict(self.state, pos_weight=result.pos_weight)

    def selection(self) -> dict:
        """``{"epochs": e}``: the epoch early stopping kept."""
        return {"epochs": self.state["epochs"]} if "epochs" in self.state else {}

    def describe(self) -> str:
        """E.g. ``gatv2 x 8 layers + bi-LSTM, 12 epochs``."""
        if "epochs" not in self.state:
            return ""
        return f"{self.conv} x {len(self.state['graph_layers'])} layers + bi-LSTM, {self.state['epochs']} epochs"


@register("gnn_layer")
class GNNLayerDetector(GNNDetector):
    """The GNN on a single graph layer (no LSTM across layers).

    Args:
        layer: position in the feature store's graph layers (``schema["graph"]["layers"]``);
            ``None`` = the middle one.
        conv, hidden, dropout, **loop: as for :class:`GNNDetector`.
    """

    def __init__(self, layer: int | None = None, conv: str = "gatv2", hidden: int = 64, dropout: float = 0.1,
                 **loop: Any):
        super().__init__(conv=conv, hidden=hidden, shared=True, dropout=dropout, max_layers=1, **loop)
        if layer is not None and not (isinstance(layer, int) and layer >= 0):
            raise ValueError(f"layer must be None or an int >= 0, got {layer!r}")
        self.layer = layer

    def own_args(self) -> dict:
        return {"layer": self.layer, "conv": self.conv, "hidden": self.hidden, "dropout": self.dropout}

    def positions(self, n_graph_layers: int) -> list[int]:
        """The one graph layer read: ``layer``, or the middle one."""
        pos = n_graph_layers // 2 if self.layer is None else self.layer
        if pos >= n_graph_layers:
            raise ValueError(f"layer {pos} is not stored; the batches hold {n_graph_layers} graph layers")
        return [pos]

    def selection(self) -> dict:
        """``{"graph_layer": l, "epochs": e}`` chosen on validation."""
        if "epochs" not in self.state:
            return {}
        return {"graph_layer": self.state["graph_layers"][0], "epochs": self.state["epochs"]}

    def describe(self) -> str:
        """E.g. ``gatv2 on graph layer 4, 12 epochs``."""
        if "epochs" not in self.state:
            return ""
        return f"{self.conv} on graph layer #{self.state['graph_layers'][0]}, {self.state['epochs']} epochs"
