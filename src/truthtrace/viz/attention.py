"""Attention figures of one trace: the token graph of a layer, per-head heatmaps, layers side by side.

Long sequences are first reduced to at most ``max_tokens`` shown tokens by a
:class:`TokenView`: either the last N tokens, or the earliest prompt tokens merged into
blocks (a block's column is the attention mass it receives, its row the mean of its rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from truthtrace.viz.figure import (
    ANSWER_COLOR,
    ANSWER_TEXT_COLOR,
    CMAP,
    PROMPT_COLOR,
    TICK_PT,
    plain,
    pyplot,
    save_figure,
)

TOKEN_MODES = ("blocks", "last")


@dataclass
class TokenView:
    """Which stored positions each shown token stands for.

    ``groups[g]`` lists the positions of shown token ``g`` (contiguous, in order);
    ``labels[g]`` its tick label; ``is_answer[g]`` whether it is an answer token;
    ``note`` says how tokens were reduced ("" when all are shown).
    """

    groups: list[list[int]]
    labels: list[str]
    is_answer: list[bool]
    note: str

    def __len__(self) -> int:
        return len(self.groups)


def token_view(labels: list[str], n_prompt: int, max_tokens: int = 48, mode: str = "blocks") -> TokenView:
    """Reduce ``len(labels)`` tokens (the first ``n_prompt`` are prompt) to at most ``max_tokens`` shown.

    ``blocks`` keeps the answer and the end of the prompt as single tokens and merges the
    earliest prompt tokens into blocks of about 16; it falls back to ``last`` when the
    answer alone exceeds the budget.

    Raises:
        ValueError: ``mode`` unknown or ``max_tokens`` < 2.
    """
    if mode not in TOKEN_MODES:
        raise ValueError(f"token mode must be one of {TOKEN_MODES}, got {mode!r}")
    if max_tokens < 2:
        raise ValueError(f"max_tokens must be >= 2, got {max_tokens}")
    t = len(labels)
    if t <= max_tokens:
        return TokenView([[i] for i in range(t)], list(labels), [i >= n_prompt for i in range(t)], "")
    n_blocks = min(max(1, math.ceil((t - max_tokens) / 16)), max_tokens // 4)
    merged = t - (max_tokens - n_blocks)  # earliest positions that go into blocks
    if mode == "last" or merged > n_prompt:
        start = t - max_tokens
        return TokenView([[i] for i in range(start, t)], list(labels[start:]),
                         [i >= n_prompt for i in range(start, t)], f"last {max_tokens} of {t} tokens")
    bounds = np.linspace(0, merged, n_blocks + 1).round().astype(int)
    groups = [list(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
    blabels = [f"[{g[0]}–{g[-1]}] {_hint([labels[i] for i in g])}" for g in groups]
    singles = list(range(merged, t))
    note = f"prompt tokens 0–{merged - 1} merged into {n_blocks} block{'s' * (n_blocks > 1)}"
    return TokenView(groups + [[i] for i in singles], blabels + [labels[i] for i in singles],
                     [False] * n_blocks + [i >= n_prompt for i in singles], note)


def _hint(labels: list[str]) -> str:
    """A block's first word-like token (not a special one), so the reader can tell what it holds."""
    word = next((t for t in labels if len(t) >= 3 and t[0].isalnum()), labels[0])
    return word + "…"


def project(attn: np.ndarray, view: TokenView) -> np.ndarray:
    """Attention ``(..., T, T)`` seen through ``view``: ``(..., G, G)``.

    Entry ``[g, h]`` is the mean over the rows of group ``g`` of the attention mass they
    give to the positions of group ``h``.
    """
    t = attn.shape[-1]
    rows = np.zeros((len(view), t), dtype=np.float64)
    cols = np.zeros((len(view), t), dtype=np.float64)
    for g, pos in enumerate(view.groups):
        rows[g, pos] = 1.0 / len(pos)
        cols[g, pos] = 1.0
    return rows @ attn.astype(np.float64) @ cols.T


def select_head(attn: np.ndarray, head: int | str) -> np.ndarray:
    """Pick ``head`` (an int) from ``(H, T, T)`` or average the heads (``"mean"``): ``(T, T)``.

    Raises:
        ValueError: ``head`` out of range or not an int / "mean".
    """
    if head == "mean":
        return attn.mean(axis=0)
    if not isinstance(head, int) or not 0 <= head < attn.shape[0]:
        raise ValueError(f"head must be 'mean' or an int in 0..{attn.shape[0] - 1}, got {head!r}")
    return attn[head]


def attention_edges(mat: np.ndarray, top_k: int | None = None, threshold: float | None = None,
                    min_key: int = 0) -> list[tuple[int, int, float]]:
    """Edges ``(query, key, weight)`` of a causal map ``mat`` ``(T, T)``, ``min_key <= key < query``.

    Self-attention is left out (an arc needs two ends), and so are keys before
    ``min_key`` (``min_key=1`` hides the first token, the attention sink that otherwise
    takes every token's top edge). With ``top_k``, each query keeps its
    ``min(top_k, query - min_key)`` strongest keys; with ``threshold``, every weight >= it.

    Raises:
        ValueError: both or neither of ``top_k`` / ``threshold`` given, or out of range.
    """
    if (top_k is None) == (threshold is None):
        raise ValueError("give exactly one of top_k and threshold")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    edges = []
    for q in range(min_key + 1, mat.shape[0]):
        row = mat[q, min_key:q]
        if top_k is not None:
            keys = np.argsort(-row, kind="stable")[:top_k]
        else:
            keys = np.flatnonzero(row >= threshold)
        edges.extend((q, min_key + int(k), float(row[k])) for k in sorted(keys))
    return edges


def _token_ticks(ax, view: TokenView, axis: str, size_in: float) -> None:
    """Label every token if they fit at :data:`TICK_PT`, else every n-th; colour answer tokens."""
    n = len(view)
    stride = max(1, math.ceil(n * TICK_PT * 1.25 / (size_in * 72)))
    idx = list(range(n - 1, -1, -stride))[::-1]  # anchor on the last token: the answer end matters most
    labels = [plain(view.labels[i]) for i in idx]
    if axis == "x":
        ax.set_xticks(idx, labels, rotation=90, fontsize=TICK_PT)
        ticks = ax.get_xticklabels()
    else:
        ax.set_yticks(idx, labels, fontsize=TICK_PT)
        ticks = ax.get_yticklabels()
    for i, tick in zip(idx, ticks):
        tick.set_color(ANSWER_TEXT_COLOR if view.is_answer[i] else "black")
        tick.set_fontweight("bold" if view.is_answer[i] else "normal")


def _heatmap(ax, mat: np.ndarray, view: TokenView, norm, size_in: float, xlab: bool, ylab: bool):
    """Draw one causal map ``(G, G)`` with the upper triangle blank."""
    masked = np.ma.masked_where(np.triu(np.ones_like(mat, dtype=bool), 1), mat)
    im = ax.imshow(masked, cmap=CMAP, norm=norm, interpolation="nearest", aspect="equal")
    ax.set_facecolor("white")
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)
    if xlab:
        _token_ticks(ax, view, "x", size_in)
        ax.set_xlabel("key token (attended to)")
    else:
        ax.set_xticks([])
    if ylab:
        _token_ticks(ax, view, "y", size_in)
        ax.set_ylabel("query token")
    else:
        ax.set_yticks([])
    return im


def _panel_inches(n_tokens: int) -> float:
    return float(np.clip(0.135 * n_tokens, 2.6, 6.5))  # >= 9.4 pt per token up to 48 tokens: all labels fit


def _heatmap_grid(mats: list[np.ndarray], titles: list[str], view: TokenView, ncols: int, cbar_label: str,
                  title: str, out_stem: Path) -> list[Path]:
    """Causal maps ``(G, G)`` in a grid on one square-root colour scale; token ticks on the outer panels."""
    from matplotlib.colors import PowerNorm

    plt = pyplot()
    n, g = len(mats), len(view)
    nrows = math.ceil(n / ncols)
    size = _panel_inches(g) * (1.3 if n == 1 else 1.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size + 1.6, nrows * size + 1.4), squeeze=False,
                             layout="constrained")
    # square root: the first token soaks up most attention and would flatten a linear scale
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=max(max(float(m.max()) for m in mats), 1e-6))
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        im = _heatmap(ax, mats[k], view, norm, size, xlab=k + ncols >= n, ylab=k % ncols == 0)
        ax.set_title(titles[k])
    fig.colorbar(im, ax=axes, shrink=min(0.8, 0.3 + 0.25 * nrows), aspect=30, label=cbar_label)
    fig.suptitle(plain(title))
    return save_figure(fig, out_stem)


def _ncols(n: int) -> int:
    return n if n <= 3 else math.ceil(math.sqrt(n))


def plot_head_heatmaps(attn: np.ndarray, view: TokenView, title: str, out_stem: Path) -> list[Path]:
    """Every head of one layer in a grid; ``attn`` is ``(H, G, G)`` already projected by ``view``.

    Returns:
        the written ``[png, svg]`` paths.
    """
    return _heatmap_grid(list(attn), [f"head {k}" for k in range(attn.shape[0])], view, _ncols(attn.shape[0]),
                         "attention weight (square-root scale)", title, out_stem)


def plot_layer_comparison(maps: dict[int, np.ndarray], view: TokenView, title: str, out_stem: Path) -> list[Path]:
    """Head-mean attention ``(G, G)`` of several layers side by side, on one colour scale.

    Args:
        maps: ``{layer: (G, G)}`` in display order.

    Returns:
        the written ``[png, svg]`` paths.
    """
    return _heatmap_grid(list(maps.values()), [f"layer {i}" for i in maps], view, _ncols(len(maps)),
                         "attention weight, mean of heads (square-root scale)", title, out_stem)


def _arc(x0: float, x1: float):
    """A quadratic Bezier arc from ``x0`` to ``x1`` above the axis, height 0.3 * distance."""
    from matplotlib.path import Path as MplPath

    d = abs(x1 - x0)
    return MplPath([(x0, 0.0), ((x0 + x1) / 2, 0.6 * d), (x1, 0.0)],
                   [MplPath.MOVETO, MplPath.CURVE3, MplPath.CURVE3])


def _draw_arcs(ax, edges: list[tuple[int, int, float]], view: TokenView) -> float:
    """One arc per edge, width and opacity by weight, colour by the query's kind; returns the max weight."""
    from matplotlib.patches import PathPatch

    wmax = max((w for _, _, w in edges), default=1.0) or 1.0
    for q, k, w in sorted(edges, key=lambda e: e[2]):  # strongest drawn last, on top
        rel = w / wmax
        ax.add_patch(PathPatch(_arc(k, q), fill=False, edgecolor=ANSWER_COLOR if view.is_answer[q] else PROMPT_COLOR,
                               lw=0.4 + 3.6 * rel, alpha=0.25 + 0.7 * rel, capstyle="round"))
    return wmax


def _draw_nodes(ax, edges: list[tuple[int, int, float]], view: TokenView) -> None:
    """Tokens on a line; node area grows with the attention received through the drawn edges."""
    try:
        import networkx as nx
    except ImportError as exc:
        raise ImportError("the attention graph needs networkx: pip install 'truthtrace[viz]'") from exc
    n = len(view)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from(edges)
    received = dict(graph.in_degree(weight="weight"))
    most = max(max(received.values(), default=1.0), 1e-9)
    nx.draw_networkx_nodes(graph, {i: (i, 0.0) for i in range(n)}, ax=ax,
                           node_size=[30 + 220 * received[i] / most for i in range(n)],
                           node_color=[ANSWER_COLOR if a else PROMPT_COLOR for a in view.is_answer],
                           edgecolors="black", linewidths=0.6)


def plot_attention_graph(edges: list[tuple[int, int, float]], view: TokenView, title: str,
                         out_stem: Path) -> list[Path]:
    """Tokens as nodes in reading order, arcs from each query back to the keys it attends to.

    Arc width and opacity grow with the weight; arcs of answer queries are orange, of
    prompt queries blue; node size grows with the attention a token receives.

    Args:
        edges: ``(query, key, weight)`` from :func:`attention_edges`, indices into ``view``.

    Returns:
        the written ``[png, svg]`` paths.

    Raises:
        ImportError: networkx is missing; names the ``viz`` extra.
    """
    from matplotlib.lines import Line2D

    plt = pyplot()
    n = len(view)
    width = float(np.clip(0.3 * n + 1.5, 6.0, 22.0))
    top = 0.3 * max((q - k for q, k, _ in edges), default=1) + 0.6  # highest arc, in token units
    plot_h = float(np.clip(top * (width - 1.0) / (n + 1), 1.2, 6.0))  # about equal aspect: arcs look round
    fig, ax = plt.subplots(figsize=(width, plot_h + 2.4), layout="constrained")
    wmax = _draw_arcs(ax, edges, view)
    _draw_nodes(ax, edges, view)
    _token_ticks(ax, view, "x", width - 1.0)
    ax.set(xlim=(-1, n), ylim=(-0.5, top), yticks=[], title=plain(title),
           xlabel="token (reading order; arcs run from each token back to earlier tokens it attends to)")
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="x", length=0, labelbottom=True)
    handles = [Line2D([], [], color=PROMPT_COLOR, lw=2.5, label="prompt token / its attention"),
               Line2D([], [], color=ANSWER_COLOR, lw=2.5, label="answer token / its attention"),
               Line2D([], [], color="none", label=f"{len(edges)} edges; width, opacity ∝ weight (max {wmax:.2f})")]
    ax.legend(handles=handles, loc="upper left", ncols=3)
    return save_figure(fig, out_stem)
