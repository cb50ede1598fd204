"""The attention graph of a live answer: one layer's head-mean attention, drawn by :mod:`truthtrace.viz.attention`.

The map comes from the result's ``attention`` field when the engine recorded one
(``{"layer", "token_ids", "n_prompt", "weights": (T, T)}``); otherwise from one teacher-forced forward
pass over the prompt and the answer (:func:`truthtrace.traces.capture.forward_traces`), under the
engine's lock and with eager attention for the pass (SDPA returns no attention maps).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from truthtrace.naming import layer_key
from truthtrace.traces.capture import CaptureOptions, forward_traces
from truthtrace.viz.attention import attention_edges, plot_attention_graph, project, token_view
from truthtrace.viz.figure import token_labels

GRAPH_TOKENS = 32  # tokens shown; earlier prompt tokens are merged into blocks
TOP_K = 2  # strongest keys drawn per answer token


@contextmanager
def eager_attention(model):
    """Run the block with the model's eager attention (which returns attention maps), then switch back."""
    before = getattr(model.config, "_attn_implementation", None)
    if before in (None, "eager"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(before)


def attention_map(engine, result: dict, layer: int | None = None) -> dict | None:
    """Head-mean attention ``(T, T)`` of ``layer`` (default: the middle one) over the prompt and the answer.

    Returns None for a result without answer tokens (an error, or an empty answer).
    """
    if result.get("attention"):
        return result["attention"]
    if result.get("error") or not result.get("tokens"):
        return None
    req = engine.request(0, result["question"])
    if isinstance(req, dict):
        return None
    n_layers = int(engine.model.config.num_hidden_layers)
    layer = n_layers // 2 if layer is None else layer
    ids = req.prompt + [int(t["id"]) for t in result["tokens"]]
    opts = CaptureOptions(hidden_layers=(), attn_layers=(layer,), attentions=True, keep="all")
    pad = engine.tokenizer.pad_token_id if engine.tokenizer.pad_token_id is not None else 0
    with engine.lock, eager_attention(engine.model):
        [trace] = forward_traces(engine.model, [ids], [len(req.prompt)], opts, pad)
    weights = trace[layer_key(layer, "attn")].mean(0).numpy()
    return {"layer": layer, "token_ids": ids, "n_prompt": len(req.prompt), "weights": weights}


def answer_edges(weights: np.ndarray, view) -> list[tuple[int, int, float]]:
    """The :data:`TOP_K` strongest edges of each answer token, leaving out the attention sink (the first token)."""
    mat = project(np.asarray(weights, np.float64), view)
    min_key = 1 if view.groups[0][0] == 0 and len(view) >= 3 else 0
    return [e for e in attention_edges(mat, top_k=TOP_K, min_key=min_key) if view.is_answer[e[0]]]


def draw_attention(att: dict, tokenizer, out_stem: str | Path) -> Path:
    """Draw the attention graph of ``att`` (from :func:`attention_map`); returns the PNG's path.

    Raises:
        ImportError: matplotlib or networkx is missing (names the extra).
    """
    labels = token_labels([int(i) for i in att["token_ids"]], tokenizer)
    view = token_view(labels, int(att["n_prompt"]), GRAPH_TOKENS, "blocks")
    edges = answer_edges(att["weights"], view)
    title = f"Attention of the answer, layer {att['layer']}, mean of heads, top {TOP_K} keys per answer token"
    if view.note:
        title += f"\n({view.note})"
    png, _svg = plot_attention_graph(edges, view, title, Path(out_stem))
    return png
