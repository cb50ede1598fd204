"""Attention graphs held in memory for GNN training: read once, prepared once, re-batched each epoch.

The graph detectors (:mod:`truthtrace.detectors.gnn`) train for a dozen epochs on the same
~1,600 traces x 8 graph layers. What does not depend on the weights is done once per graph here
instead of once per step and layer: standardizing the node features, appending the attention
each token receives, and (for GATv2) the self-loop edges GATv2 would add in each of its convs.
An epoch then only concatenates the prepared graphs of a batch with a few ``torch.cat`` calls, in
the order ``torch_geometric`` would, so the network sees the very tensors (and computes the very
numbers) it would on a ``Batch`` of the raw graphs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch

from truthtrace import distributed
from truthtrace.detectors.base import Batch
from truthtrace.detectors.torch_base import epoch_order
from truthtrace.training import ddp


@dataclass
class PreparedGraph:
    """One token graph ready for :meth:`GraphEncoder.encode`: ``n`` nodes, ``e`` edges besides self loops.

    Attributes:
        x: ``(n, node_dim + H)`` standardized node features and the attention each node receives.
        edge_index: ``(2, e)`` int64 edges without self loops (local node numbers).
        edge_attr: ``(e, H)`` their per-head weights.
        loop_attr: ``(n, H)`` weights of the self loop of every node, or None (no self loops added).
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    loop_attr: torch.Tensor | None


def read_layers(batches: Iterable[Batch], positions: list[int]) -> tuple[list[list], torch.Tensor, list]:
    """One pass over ``batches``: per batch the ``torch_geometric`` batches of graph layers ``positions``, the
    labels ``(n,)`` and per batch its ``"trace_id"`` list (None where a batch has none; see ``id_order``).

    Raises:
        ValueError: on no batches, batches without ``"graphs"``, or fewer graph layers than ``positions`` needs.
    """
    layers, labels, ids = [], [], []
    for batch in batches:
        if "graphs" not in batch:
            raise ValueError("batch is missing key 'graphs' (ask the loader for keys=('graphs',))")
        n_layers = len(batch["graphs"])
        if max(positions) >= n_layers:
            raise ValueError(f"graph layer {max(positions)} is not stored; the batches hold {n_layers} graph layers")
        layers.append([batch["graphs"][p] for p in positions])
        labels.append(torch.as_tensor(batch["label"]).long().reshape(-1))
        ids.append(batch.get("trace_id"))
    if not layers:
        raise ValueError("no batches to read (empty split?)")
    return layers, torch.cat(labels), ids


def graph_stats(layers: list[list]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of node features per kept graph layer over all nodes of ``layers`` (per batch, one graph batch
    per kept layer, as :func:`read_layers` gives them): ``(G, node_dim)`` each."""
    means, stds = [], []
    for g in range(len(layers[0])):
        x = torch.cat([batch[g].x for batch in layers]).double()  # (N_all, node_dim)
        means.append(x.mean(0))
        stds.append(x.std(0).nan_to_num(1.0).clamp_min(1e-4))
    return torch.stack(means).float(), torch.stack(stds).float()


def attention_received(edge_index: torch.Tensor, edge_attr: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """Attention mass each token receives per head, ``(N, H)``: the sum of its outgoing edge weights.

    Fed to the GNN as node features so that attention patterns (e.g. a sink token soaking up
    attention) are visible even when the hidden states say little; GATv2 otherwise uses edge
    weights only to mix neighbours.
    """
    out = torch.zeros(n_nodes, edge_attr.shape[1], dtype=edge_attr.dtype, device=edge_attr.device)
    return out.index_add_(0, edge_index[0], edge_attr)


def with_self_loops(edge_index: torch.Tensor, edge_attr: torch.Tensor, n_nodes: int):
    """GATv2's self-loop step: drop stored self loops, append one per node weighted by the mean of its in-edges.

    Returns ``edge_index`` ``(2, E')`` (the ``n_nodes`` loops last) and ``edge_attr`` ``(E', H)``.
    """
    from torch_geometric.utils import add_self_loops, remove_self_loops

    edge_index, edge_attr = remove_self_loops(edge_index, edge_attr)
    return add_self_loops(edge_index, edge_attr, fill_value="mean", num_nodes=n_nodes)


def encoder_inputs(x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor, mean: torch.Tensor,
                   std: torch.Tensor, self_loops: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """What ``GraphEncoder.encode`` reads, from one graph layer's raw graph(s) and its train ``mean``/``std``
    ``(node_dim,)``.

    Returns ``x`` ``(N, node_dim + H)`` (standardized, the attention each node receives appended), ``edge_index``
    and ``edge_attr`` (with GATv2's self loops last when ``self_loops``), and the number of loops appended (0 or N).
    """
    x = (x.float() - mean) / std  # (N, node_dim)
    edge_attr = edge_attr.float()
    n = x.shape[0]
    x = torch.cat([x, attention_received(edge_index, edge_attr, n)], dim=-1)  # (N, node_dim + H)
    if not self_loops:
        return x, edge_index, edge_attr, 0
    return x, *with_self_loops(edge_index, edge_attr, n), n


def split_prepared(graphs, mean: torch.Tensor, std: torch.Tensor, self_loops: bool) -> list[PreparedGraph]:
    """The graphs of one ``torch_geometric`` batch (one graph layer), prepared by :func:`encoder_inputs` at once and
    cut per graph: the same tensors as preparing each graph alone (every step acts per node or per edge)."""
    x, edge_index, edge_attr, n_loops = encoder_inputs(graphs.x, graphs.edge_index, graphs.edge_attr, mean, std,
                                                       self_loops)
    e = edge_index.shape[1] - n_loops
    sizes = (graphs.ptr[1:] - graphs.ptr[:-1]).tolist()
    owner = graphs.batch[edge_index[1, :e]]  # (e,) graph of each edge; edges stay grouped by graph
    local = edge_index[:, :e] - graphs.ptr[owner]
    counts = torch.bincount(owner, minlength=len(sizes)).tolist()
    loops = edge_attr[e:].split(sizes) if self_loops else [None] * len(sizes)
    return [PreparedGraph(*parts) for parts in zip(x.split(sizes), local.split(counts, dim=1),
                                                   edge_attr[:e].split(counts), loops)]


def prepare_layers(layers: list[list], mean: torch.Tensor, std: torch.Tensor,
                   self_loops: bool) -> list[list[PreparedGraph]]:
    """Per trace, one :class:`PreparedGraph` per kept layer, from :func:`read_layers`' batches and the layers'
    ``mean``/``std`` ``(G, node_dim)``. The graph batches are dropped from ``layers`` as they are prepared."""
    out: list[list[PreparedGraph]] = []
    for i, batch in enumerate(layers):
        per_layer = [split_prepared(graphs, mean[g], std[g], self_loops) for g, graphs in enumerate(batch)]
        out.extend(list(trace) for trace in zip(*per_layer))
        layers[i] = None
    return out


def batch_graphs(graphs: list[PreparedGraph]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate prepared graphs as ``torch_geometric`` batches them, self loops last as GATv2 appends them.

    Returns:
        ``x`` ``(N, node_dim + H)``, ``edge_index`` ``(2, E)`` (node numbers offset per graph), ``edge_attr``
        ``(E, H)`` and ``batch`` ``(N,)`` (graph of each node).
    """
    sizes = torch.tensor([g.x.shape[0] for g in graphs])
    offsets = torch.cumsum(sizes, 0) - sizes
    n_edges = torch.tensor([g.edge_index.shape[1] for g in graphs])
    edge_index = torch.cat([g.edge_index for g in graphs], dim=1) + offsets.repeat_interleave(n_edges)
    edge_attr = [g.edge_attr for g in graphs]
    if graphs[0].loop_attr is not None:
        loops = torch.arange(int(sizes.sum()))
        edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
        edge_attr += [g.loop_attr for g in graphs]
    batch = torch.repeat_interleave(torch.arange(len(graphs)), sizes)
    return torch.cat([g.x for g in graphs]), edge_index, torch.cat(edge_attr), batch


class PreparedBatches:
    """Prepared graphs re-batched (and reshuffled per epoch) on each pass.

    Yields ``{"layers": [(x, edge_index, edge_attr, batch, n_graphs) per kept layer], "label": (B,)}``.
    The traces of a batch and their order are those of the former ``GraphBatches`` of raw graphs.

    Args:
        samples: per trace, one :class:`PreparedGraph` per kept graph layer.
        labels: ``(n,)`` int64.
        batch_size: traces per batch.
        shuffle: permute traces each epoch (from ``seed`` and the epoch set by ``set_epoch``).
        split_over_ranks: under a process group, rank ``k`` of ``w`` gets traces ``k, k + w, ...`` of every batch,
            with the whole batch's labels as ``"label_full"`` (:mod:`truthtrace.training.ddp`: the one-process
            gradient from ``w`` processes); a rank left without a trace gets the batch's first one, unlabelled.
    """

    def __init__(self, samples: list[list[PreparedGraph]], labels: torch.Tensor, batch_size: int,
                 shuffle: bool = False, seed: int = 0, split_over_ranks: bool = False):
        self.samples, self.labels = samples, labels
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0
        self.split_over_ranks = split_over_ranks

    def set_epoch(self, epoch: int) -> None:
        """Choose the permutation of the next pass."""
        self.epoch = epoch

    def __iter__(self):
        n = len(self.samples)
        order = epoch_order(n, self.shuffle, self.seed, self.epoch)
        split = ddp.splits_batches(self)
        rank, world = distributed.env_world() if split else (0, 1)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size].tolist()
            mine, labels = idx[rank::world], None
            if not mine:  # fewer traces than ranks: a zero-weight step on the first one keeps the ranks in step
                mine, labels = idx[:1], torch.full((1,), -1, dtype=self.labels.dtype)
            layers = [(*batch_graphs([self.samples[i][g] for i in mine]), len(mine))
                      for g in range(len(self.samples[0]))]
            batch = {"layers": layers, "label": self.labels[mine] if labels is None else labels}
            yield dict(batch, label_full=self.labels[idx]) if split else batch
