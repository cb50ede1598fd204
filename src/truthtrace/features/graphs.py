"""Token graphs from attention maps, and the PCA that shrinks their node features.

For a graph layer ``l`` the nodes are the last ``n <= max_nodes`` tokens, with the hidden
state entering block ``l`` (``layers.{l}.hidden``) as features, and an edge ``j -> i``
(source ``j``, target ``i``, ``j <= i``) wherever token ``i`` attends strongly to ``j``:
its ``top_k`` strongest sources under the head-mean attention, or every source above
``threshold``. Edges are sorted by (target, source); ``edge_attr`` holds each head's weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from truthtrace.features.sequences import TokenLayout
from truthtrace.fileio import save_tensors_atomic


def graph_window(layout: TokenLayout, max_nodes: int) -> int:
    """Number of nodes ``n``: the last ``min(max_nodes, K)`` stored tokens."""
    return min(max_nodes, layout.n_kept)


def window_attention(attn: torch.Tensor, n: int) -> torch.Tensor:
    """The ``(..., n, n)`` attention among the last ``n`` tokens of ``(..., K, T)`` maps."""
    return attn[..., -n:, -n:]


def build_edges(attn: torch.Tensor, top_k: int | None = None,
                threshold: float | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Edges of the token graphs of ``G`` layers at once.

    Args:
        attn: ``(G, H, n, n)`` causal attention among the graph's tokens (row = target).
        top_k: keep each target's ``top_k`` strongest sources ``j <= i`` (fewer for early rows).
        threshold: instead, keep every source whose head-mean weight is above it.
    Returns:
        per layer, ``edge_index`` ``(2, E)`` int64 (row 0 source, row 1 target) and
        ``edge_attr`` ``(E, H)`` float32 per-head weights.
    Raises:
        ValueError: unless exactly one of ``top_k`` and ``threshold`` is given.
    """
    if (top_k is None) == (threshold is None):
        raise ValueError("build_edges needs exactly one of top_k and threshold")
    n = attn.shape[-1]
    mean = attn.float().mean(1)  # (G, n, n)
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    if threshold is not None:
        pairs = [((m > threshold) & causal).nonzero(as_tuple=True) for m in mean]  # row-major = sorted
        return [_edges(attn[g], tgt, src) for g, (tgt, src) in enumerate(pairs)]
    k = min(top_k, n)
    src = mean.masked_fill(~causal, float("-inf")).topk(k, dim=-1).indices  # (G, n, k)
    # row i has min(k, i + 1) real sources whatever the layer: the same mask for every layer
    keep = torch.arange(k) < torch.arange(1, n + 1).clamp(max=k).unsqueeze(1)  # (n, k)
    src = src.masked_fill(~keep, n).sort(dim=-1).values  # real sources first, ascending
    tgt = torch.arange(n).unsqueeze(1).expand(n, k)[keep]  # (E,)
    return [_edges(attn[g], tgt, src[g][keep]) for g in range(attn.shape[0])]


def _edges(attn: torch.Tensor, tgt: torch.Tensor, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``edge_index`` ``(2, E)`` and per-head ``edge_attr`` ``(E, H)`` from ``(H, n, n)`` weights."""
    return torch.stack([src, tgt]).long(), attn[:, tgt, src].float().T.contiguous()


def apply_pca(x: torch.Tensor, mean: torch.Tensor, components: torch.Tensor) -> torch.Tensor:
    """Project ``(..., n, d)`` node features with ``mean`` ``(..., d)`` and ``components`` ``(..., k, d)``."""
    return (x - mean.unsqueeze(-2)) @ components.transpose(-1, -2)


@dataclass
class PcaMoments:
    """Running sums over sampled tokens for one PCA per graph layer (float64, exact).

    Tokens are buffered and multiplied in chunks of ``chunk`` tokens: one big fp32 matmul
    per chunk instead of one per trace, and one fp64 accumulation per chunk.
    """

    n_layers: int
    d: int
    chunk: int = 1024
    count: int = 0
    total: torch.Tensor = field(init=False)  # (G, d)
    gram: torch.Tensor = field(init=False)  # (G, d, d)

    def __post_init__(self) -> None:
        self.total = torch.zeros(self.n_layers, self.d, dtype=torch.float64)
        self.gram = torch.zeros(self.n_layers, self.d, self.d, dtype=torch.float64)
        self._buffer: list[torch.Tensor] = []
        self._buffered = 0

    def add(self, x: torch.Tensor) -> None:
        """Add the same ``n`` tokens of every graph layer: ``x`` is ``(G, n, d)``."""
        self._buffer.append(x.float())
        self._buffered += x.shape[1]
        self.count += x.shape[1]
        if self._buffered >= self.chunk:
            self.flush()

    def flush(self) -> None:
        """Fold the buffered tokens into the sums."""
        if not self._buffer:
            return
        x = torch.cat(self._buffer, dim=1)  # (G, N, d)
        self._buffer, self._buffered = [], 0
        self.total += x.sum(1).double()
        self.gram += (x.transpose(1, 2) @ x).double()  # fp32 within a chunk, fp64 across chunks


def fit_pca(moments: PcaMoments, node_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA of each layer's sampled tokens from their moments.

    Returns:
        ``mean`` ``(G, d)`` and ``components`` ``(G, node_dim, d)`` float32, components
        sorted by explained variance, each signed so its largest-magnitude entry is positive.
    Raises:
        ValueError: with fewer sampled tokens than ``node_dim + 1`` or ``node_dim > d``.
    """
    moments.flush()
    if moments.count <= node_dim or node_dim > moments.d:
        raise ValueError(f"node_dim {node_dim}: the PCA needs node_dim <= d_model ({moments.d}) and more "
                         f"train tokens than node_dim (sampled {moments.count})")
    mean = moments.total / moments.count  # (G, d)
    cov = moments.gram / moments.count - mean.unsqueeze(2) * mean.unsqueeze(1)
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues, vectors in columns
    comps = vecs.flip(-1)[..., :node_dim].transpose(1, 2)  # (G, node_dim, d)
    peak = comps.abs().argmax(-1, keepdim=True)
    comps = comps * torch.sign(comps.gather(-1, peak))
    return mean.float(), comps.float().contiguous()


def save_pca(path: str | Path, mean: torch.Tensor, components: torch.Tensor) -> None:
    """Write ``pca.safetensors`` (``mean`` ``(G, d)``, ``components`` ``(G, k, d)``) atomically."""
    save_tensors_atomic(path, {"mean": mean.numpy(), "components": components.numpy()})


def load_pca(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read ``pca.safetensors``; ValueError naming the file if a tensor is missing or misshapen."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    mean, comps = tensors.get("mean"), tensors.get("components")
    if mean is None or comps is None or mean.dim() != 2 or comps.dim() != 3 or comps.shape[0] != mean.shape[0]:
        raise ValueError(f"{path}: expected 'mean' (G, d) and 'components' (G, k, d)")
    return mean, comps
