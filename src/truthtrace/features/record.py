"""One trace -> one feature record: the computation shared by ``preprocess`` and live scoring.

:func:`trace_record` turns a trace (stored, or held in memory by :mod:`truthtrace.inference`) into the
feature tensors of ``docs/FORMAT.md``; :func:`feature_cast` is the dtype the feature store keeps them in.
Both paths call these two functions, so live scores equal scores of the stored features.
"""

from __future__ import annotations

import warnings

import torch

from truthtrace.features.config import graph_key
from truthtrace.features.graphs import apply_pca, build_edges, graph_window, window_attention
from truthtrace.features.scalars import attn_logdet, hidden_svd, logprob_stats, lookback_ratio
from truthtrace.features.sequences import layout_of, sequence_features
from truthtrace.naming import (
    ANSWER_ENTROPY,
    ANSWER_LOGPROBS,
    SCALAR_ATTN_LOGDET,
    SCALAR_HIDDEN_SVD,
    SCALAR_LOGPROB_STATS,
    SCALAR_LOOKBACK,
    layer_key,
)

FP16_MAX = 65504.0


def feature_cast(t: torch.Tensor) -> torch.Tensor:
    """float16 for floats (float32 if a finite value would overflow it); other dtypes unchanged."""
    if not t.is_floating_point() or t.numel() == 0:
        return t
    low, high = (float(v) for v in torch.aminmax(t))  # one pass; NaN makes both tests fail
    if -FP16_MAX <= low and high <= FP16_MAX:
        return t.half()
    finite = t[torch.isfinite(t)]
    return t.float() if finite.numel() and float(finite.abs().max()) > FP16_MAX else t.half()


def stack_layers(trace, layers: list[int], kind: str) -> torch.Tensor:
    """``(len(layers), ...)`` float32 stack of one trace's layer tensors."""
    return torch.stack([trace[layer_key(i, kind)] for i in layers]).float()


def trace_record(trace, schema: dict, pca: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[dict, dict]:
    """One feature-store record from one source trace (every layer vectorised).

    Args:
        trace: a source ``Trace``; hidden states ``(K, d)``, attention maps ``(H, K, T)``.
        schema: the feature schema (which layers, graph settings).
        pca: ``(mean (G, d), components (G, k, d))`` or None to keep raw node features.
    Returns:
        ``(tensors, meta)`` as the contract lists them, tensors still float32.
    Raises:
        ValueError: naming the trace when its meta and tensors disagree.
    """
    hidden = stack_layers(trace, schema["hidden_layers"], "hidden")  # (Lh, K, d)
    layout = layout_of(trace.meta, hidden.shape[1], f"trace {trace.id!r}")
    if "exact_span" not in trace.meta:
        warnings.warn("traces without an exact_span in their meta (extracted before truthtrace recorded it): "
                      "seq.exact_first / seq.exact_last are their answers' first and last token", stacklevel=2)
    attn_layers = schema["attn_layers"]
    attn = stack_layers(trace, attn_layers, "attn") if attn_layers else torch.zeros(0, schema["n_heads"], 1, 1)
    out = sequence_features(hidden, layout)
    out[SCALAR_LOGPROB_STATS] = logprob_stats(trace[ANSWER_LOGPROBS], trace[ANSWER_ENTROPY])
    out[SCALAR_LOOKBACK] = lookback_ratio(attn, layout) if attn_layers else torch.zeros(0, schema["n_heads"])
    out[SCALAR_ATTN_LOGDET] = attn_logdet(attn, layout) if attn_layers else torch.zeros(0)
    out[SCALAR_HIDDEN_SVD] = hidden_svd(hidden, layout)
    graph = schema["graph"]
    if graph:
        n = graph_window(layout, graph["max_nodes"])
        h_rows = [schema["hidden_layers"].index(i) for i in graph["layers"]]
        x = hidden[h_rows, -n:]  # (G, n, d)
        x = apply_pca(x, *pca) if pca is not None else x
        a_win = window_attention(attn[[attn_layers.index(i) for i in graph["layers"]]], n)  # (G, H, n, n)
        edges = build_edges(a_win, graph["top_k"], graph["threshold"])
        for g, layer in enumerate(graph["layers"]):
            edge_index, edge_attr = edges[g]
            out[graph_key(layer, "x")] = x[g].contiguous()
            out[graph_key(layer, "edge_index")] = edge_index
            out[graph_key(layer, "edge_attr")] = edge_attr
    meta = {"question_id": str(trace.meta["question_id"]), "category": trace.meta.get("category"),
            "n_prompt_tokens": layout.n_prompt, "n_answer_tokens": layout.n_tokens - layout.n_prompt}
    return out, meta
