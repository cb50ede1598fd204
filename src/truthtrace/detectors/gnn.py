"""Graph detectors on attention graphs: tokens are nodes, attention weights are edges.

For each graph layer a 2-layer GNN (GATv2Conv or GINEConv, both reading the per-head edge
weights ``edge_attr`` ``(E, H)``) embeds the tokens, mean and max pooling make one vector
per trace and layer, and a bi-LSTM across the graph layers (``gnn``) or a plain head on
one layer (``gnn_layer``) gives the logit. Node features (plus the attention mass each
token receives per head) are standardized per graph layer with train statistics. Train and
val graphs of the kept layers are read into memory once (~60 MB per layer for 1,600 traces
of 64 nodes), only those layers decoded, and prepared once (:mod:`truthtrace.detectors.graph_batches`).
Needs ``torch_geometric`` (``pip install 'truthtrace[gnn]'``).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from truthtrace.detectors.base import Batch, id_order, register
from truthtrace.detectors.graph_batches import (
    PreparedBatches,
    encoder_inputs,
    graph_stats,
    prepare_layers,
    read_layers,
)
from truthtrace.detectors.torch_base import TorchDetector
from truthtrace.features.dataset import with_graph_layers

CONVS = ("gatv2", "gine")


def _pyg():
    """The torch_geometric.nn module, or an ImportError naming the extra."""
    try:
        import torch_geometric.nn as pyg_nn
    except ImportError as e:
        raise ImportError("graph detectors need torch_geometric: pip install 'truthtrace[gnn]'") from e
    return pyg_nn


def make_conv(kind: str, width: int, n_heads: int) -> nn.Module:
    """A message-passing layer ``width -> width`` that uses ``edge_attr`` ``(E, n_heads)``.

    GATv2 is built without its own self-loop step: :func:`~truthtrace.detectors.graph_batches.with_self_loops`
    adds the loops once per graph layer for both convs (the same edges and weights GATv2 would add in each).
    """
    pyg_nn = _pyg()
    if kind == "gatv2":
        return pyg_nn.GATv2Conv(width, width, heads=1, edge_dim=n_heads, add_self_loops=False)
    mlp = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
    return pyg_nn.GINEConv(mlp, train_eps=True, edge_dim=n_heads)


class GraphEncoder(nn.Module):
    """Token graph -> ``(n_graphs, 2 * hidden)``: input projection, 2 residual convs, mean + max pool."""

    def __init__(self, node_dim: int, n_heads: int, hidden: int, conv: str, dropout: float):
        super().__init__()
        self.inp = nn.Linear(node_dim + n_heads, hidden)
        self.convs = nn.ModuleList([make_conv(conv, hidden, n_heads) for _ in range(2)])
        self.dropout = nn.Dropout(dropout)
        self.self_loops = conv == "gatv2"

    def encode(self, x, edge_index, edge_attr, batch, n_graphs: int) -> torch.Tensor:
        """``(n_graphs, 2 * hidden)`` from :func:`~truthtrace.detectors.graph_batches.encoder_inputs`
        (``x`` ``(N, node_dim + H)``, edges with GATv2's self loops) and ``batch`` ``(N,)``."""
        pyg_nn = _pyg()
        h = torch.relu(self.inp(x))  # (N, hidden)
        for conv in self.convs:
            h = h + self.dropout(torch.relu(conv(h, edge_index, edge_attr)))
        return torch.cat([pyg_nn.global_mean_pool(h, batch, n_graphs), pyg_nn.global_max_pool(h, batch, n_graphs)],
                         dim=-1)


class GraphNet(nn.Module):
    """``G`` prepared graph layers (or raw graph batches: :meth:`forward_graphs`) -> logits ``(B,)``; a bi-LSTM
    across them when ``G > 1``."""

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

    def forward(self, layers: list) -> torch.Tensor:
        """Logits ``(B,)`` of ``G`` prepared layers ``(x, edge_index, edge_attr, batch, n_graphs)`` (see
        :meth:`GraphEncoder.encode`); training calls it (through DDP under a process group)."""
        per_layer = [self.encoders[0 if self.shared else i].encode(*layer) for i, layer in enumerate(layers)]
        z = torch.stack(per_layer, dim=1)  # (B, G, 2 * hidden)
        if self.lstm is not None:
            z = self.lstm(z)[0].mean(dim=1)  # (B, 2 * hidden)
        else:
            z = z[:, 0]
        return self.head(z).squeeze(-1)

    def forward_graphs(self, graphs: list) -> torch.Tensor:
        """Logits ``(B,)`` of ``G`` ``torch_geometric`` batches of raw graphs (prepared here, as for training)."""
        self_loops = self.encoders[0].self_loops
        layers = [(*encoder_inputs(g.x, g.edge_index, g.edge_attr, self.mean[i], self.std[i], self_loops)[:3],
                   g.batch, g.num_graphs) for i, g in enumerate(graphs)]
        return self(layers)


def forward_prepared(module: nn.Module, batch: Batch, device: str) -> torch.Tensor:
    """Logits of a :class:`PreparedBatches` batch (``module``: a :class:`GraphNet`, or it in DDP)."""
    return module([(*(t.to(device) for t in layer[:4]), layer[4]) for layer in batch["layers"]])


def n_graph_layers(batches: Iterable[Batch]) -> int:
    """Graph layers the batches hold: from the feature store's schema, else from the first batch."""
    schema = getattr(getattr(batches, "dataset", None), "schema", None)
    if isinstance(schema, dict) and schema.get("graph"):
        return len(schema["graph"]["layers"])
    for batch in batches:
        if "graphs" not in batch:
            raise ValueError("batch is missing key 'graphs' (ask the loader for keys=('graphs',))")
        return len(batch["graphs"])
    raise ValueError("no batches to read (empty split?)")


def read_kept(batches: Iterable[Batch], positions: list[int]) -> tuple[list[list], torch.Tensor, list]:
    """:func:`read_layers` of graph layers ``positions``; a feature-store loader decodes only those layers."""
    narrow = with_graph_layers(batches, positions)
    if narrow is None:
        return read_layers(batches, positions)
    return read_layers(narrow, list(range(len(positions))))


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
    splits_over_ranks = True  # train --procs N fits it on N ranks (DDP over each batch's parts), not in the pool

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
        return module.forward_graphs([batch["graphs"][p].to(device) for p in self.dims["positions"]])

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Read train and val once (kept graph layers only), train, early-stopping on ``val`` AUROC.

        Returns ``{"val_auroc", "best_epoch", "epochs", "graph_layers", "pos_weight"}``.
        Raises:
            ValueError: if a split lacks a class or batches lack ``"graphs"``.
        """
        positions = self.positions(n_graph_layers(val))
        tr, y_tr, ids_tr = read_kept(train, positions)
        va, y_va, _ = read_kept(val, positions)
        first = tr[0][0]  # the first batch's graphs of the first kept layer
        self.dims = {"positions": positions, "node_dim": int(first.x.shape[1]),
                     "n_heads": int(first.edge_attr.shape[1])}
        mean, std = graph_stats(tr)  # (G, node_dim) each
        loops = self.conv == "gatv2"
        tr, va = prepare_layers(tr, mean, std, loops), prepare_layers(va, mean, std, loops)
        order = id_order(ids_tr)  # train rows in trace-id order: the epochs' batches depend on ids and seed only
        if order is not None:
            tr, y_tr = [tr[i] for i in order], y_tr[torch.from_numpy(order)]

        def prepare(module: GraphNet) -> None:
            module.mean.copy_(mean)
            module.std.copy_(std)

        train_batches = PreparedBatches(tr, y_tr, self.loop.batch_size, shuffle=True, seed=self.loop.seed,
                                        split_over_ranks=True)  # under DDP: the one-process gradient, w-fold faster
        result = self.train_module(train_batches, PreparedBatches(va, y_va, 256), forward=forward_prepared,
                                   prepare=prepare)
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
