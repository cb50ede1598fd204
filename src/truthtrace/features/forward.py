"""Feature reductions inside the forward pass: the record of ``trace_record`` without storing any map.

:class:`FeatureReducer` holds, for one batch, what each sample's record needs and fills it while the model
runs. Two kinds of capture point feed it, both live only inside :func:`reducing`:

- hidden states: a pre-hook on every decoder block (the state entering block ``i``: ``layers.{i}.hidden``) and a
  hook on the final norm (``layers.{L}.hidden``). Each stored layer is reduced at once to the three positions,
  the hidden-SVD score and, for a graph layer, its last ``n`` rows: ``(3 d + 1 + n d)`` numbers a layer.
- attention: the model runs the attention function :data:`FEATURES_ATTENTION` (registered in transformers'
  ``AttentionInterface`` and, with the eager additive mask, in ``AttentionMaskInterface`` — without it there
  is no causal mask). Every layer's output comes from SDPA. For a kept attention layer on the CPU the fused
  kernel also returns each row's log-sum-exp, which gives every kept row's diagonal weight (the log-det) with no
  row of weights; the weights of the answer rows and the graph window (elsewhere: of every kept row) are
  recomputed ``row_chunk`` rows at a time, as eager attention computes them, and reduced to the Lookback-Lens
  masses and the window. At most ``(H, row_chunk, T)`` weights exist at once and the function returns no
  weights, so no ``(L, H, T, T)`` tensor is ever built.

The reductions call the very functions ``preprocess`` calls (``sequence_features``, ``hidden_svd``,
``lookback_from_mass``, ``logdet_from_diagonal``, ``build_edges``), so the records equal those of stored
traces up to SDPA's round-off. transformers is imported where the attention function is registered.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from truthtrace.features.config import graph_key
from truthtrace.features.graphs import build_edges
from truthtrace.features.kernels import diagonal_weights, fused_attention, row_weights
from truthtrace.features.scalars import hidden_svd, logdet_from_diagonal, lookback_from_mass
from truthtrace.features.sequences import TokenLayout, sequence_features
from truthtrace.models.attention import attention_implementation
from truthtrace.naming import (
    SCALAR_ATTN_LOGDET,
    SCALAR_HIDDEN_SVD,
    SCALAR_LOGPROB_STATS,
    SCALAR_LOOKBACK,
)

FEATURES_ATTENTION = "truthtrace_features"
ROW_CHUNK = 64  # attention rows recomputed at once: (H, ROW_CHUNK, T) float32 weights
_ACTIVE: list["FeatureReducer"] = []  # the reducer the registered attention function feeds (innermost first)


@dataclass(frozen=True)
class SamplePlan:
    """Where one sample sits in the batch: its tokens at ``offset .. offset + T - 1``, its layout, its graph size."""

    offset: int
    layout: TokenLayout
    n_nodes: int  # graph nodes: the last n kept tokens (0 without graphs)


@dataclass
class SampleReductions:
    """One sample's reduced tensors, by layer: filled by the hooks, turned into a record by ``record``."""

    seq: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # layer -> {seq key: (d,)}
    svd: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> ()
    nodes: dict[int, torch.Tensor] = field(default_factory=dict)  # graph layer -> (n, d)
    lookback: dict[int, torch.Tensor] = field(default_factory=dict)  # attn layer -> (H,)
    logdet: dict[int, torch.Tensor] = field(default_factory=dict)  # attn layer -> ()
    window: dict[int, torch.Tensor] = field(default_factory=dict)  # graph layer -> (H, n, n)


class FeatureReducer:
    """Reduces hidden states and attention of one batch to feature-record pieces as each layer runs.

    Args:
        schema: the feature schema (``hidden_layers``, ``attn_layers``, ``n_heads``, ``graph``).
        row_chunk: attention rows whose weights are recomputed at once.
        fused: take the output and every row's log-sum-exp from one fused CPU kernel (then weights are
            recomputed only for answer and graph rows); False: SDPA, and weights for every kept row.
    """

    def __init__(self, schema: dict, row_chunk: int = ROW_CHUNK, fused: bool = True):
        if not isinstance(row_chunk, int) or row_chunk < 1:
            raise ValueError(f"row_chunk must be a positive int, got {row_chunk!r}")
        self.schema, self.row_chunk = schema, row_chunk
        self.hidden_layers = frozenset(schema["hidden_layers"])
        self.attn_layers = frozenset(schema["attn_layers"])
        graph = schema["graph"] or {}
        self.graph_layers = frozenset(graph.get("layers") or ())
        self.plans: list[SamplePlan] = []
        self.samples: list[SampleReductions] = []
        self.largest_weights: tuple[int, ...] = ()  # shape of the largest weight block built (for tests)
        self.fused = fused

    def start(self, plans: list[SamplePlan]) -> None:
        """Begin a batch of ``len(plans)`` samples (batch row ``b`` is ``plans[b]``)."""
        self.plans, self.samples = list(plans), [SampleReductions() for _ in plans]

    def reduce_hidden(self, layer: int, hidden: torch.Tensor) -> None:
        """Reduce ``layers.{layer}.hidden`` of the batch, ``(B, W, d)``, to each sample's record pieces."""
        if layer not in self.hidden_layers:
            return
        for b, plan in enumerate(self.plans):
            lay = plan.layout
            self.add_hidden_rows(b, layer, hidden[b, plan.offset + lay.kept_start: plan.offset + lay.n_tokens])

    def add_hidden_rows(self, b: int, layer: int, rows: torch.Tensor) -> None:
        """Sample ``b``'s kept hidden rows ``(K, d)`` of one layer -> its positions, SVD score and graph nodes."""
        plan, out, rows = self.plans[b], self.samples[b], rows.float()
        out.seq[layer] = {k: v[0] for k, v in sequence_features(rows[None], plan.layout).items()}
        out.svd[layer] = hidden_svd(rows[None], plan.layout)[0]
        if layer in self.graph_layers:
            out.nodes[layer] = rows[-plan.n_nodes:].clone()

    def add_attention_rows(self, b: int, layer: int, diag: torch.Tensor, prompt: torch.Tensor,
                           answer: torch.Tensor, window: torch.Tensor | None, first_row: int | None = None) -> None:
        """Sample ``b``'s per-row attention reductions of one layer -> its lookback ratios and log-det score.

        Args:
            diag: ``(H, K)`` each kept row's diagonal weight.
            prompt, answer: ``(H, t - first_row)`` the mass on prompt / answer columns of rows ``first_row ..``
                (default: the kept rows); they must cover the answer rows.
            window: ``(H, n, n)`` weights among the graph's tokens (None when ``layer`` is no graph layer).
        """
        lay = self.plans[b].layout
        start = max(lay.answer_start, lay.kept_start) - (lay.kept_start if first_row is None else first_row)
        out = self.samples[b]
        out.lookback[layer] = lookback_from_mass(prompt[:, start:], answer[:, start:])  # (H,)
        out.logdet[layer] = logdet_from_diagonal(diag)  # ()
        if window is not None:
            out.window[layer] = window

    def reduce_attention(self, layer: int, query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None,
                         scaling: float, lse: torch.Tensor | None = None, value=None) -> None:
        """Reduce layer ``layer``'s attention of the batch without building its maps (returns None: the output
        comes from SDPA; ``value`` is not needed).

        Args:
            lse: ``(B, H, W)`` each query row's log-sum-exp of scores (from the fused kernel), or None.
            query: ``(B, H, W, D)``; key: ``(B, H_kv, W, D)`` (grouped heads are repeated here).
            mask: the additive float mask ``(B, 1, W, W)``, or None for a plain causal one.
            scaling: the score scale (``D ** -0.5`` for Llama).
        """
        if layer not in self.attn_layers:
            return
        n_rep = query.shape[1] // key.shape[1]
        for b, plan in enumerate(self.plans):
            o, t = plan.offset, plan.layout.n_tokens
            k = key[b, :, o:o + t].repeat_interleave(n_rep, dim=0)  # (H, T, D)
            m = mask[b, 0, o:o + t, o:o + t] if mask is not None else None  # (T, T)
            self._reduce_sample(b, layer, query[b, :, o:o + t], k, m, scaling,
                                None if lse is None else lse[b, :, o:o + t])

    def _reduce_sample(self, b: int, layer: int, q, k, mask, scaling, lse=None) -> None:
        """Sample ``b``'s rows: ``q`` ``(H, T, D)``, ``k`` ``(H, T, D)``, ``lse`` ``(H, T)`` or None. With the
        rows' log-sum-exp the diagonal of every kept row comes from it, and weights are recomputed (``row_chunk``
        rows at a time) only for the answer rows and the graph window; without it, for every kept row."""
        plan = self.plans[b]
        lay, n = plan.layout, plan.n_nodes if layer in self.graph_layers else 0
        t, p, k0 = lay.n_tokens, lay.n_prompt, lay.kept_start
        first = k0 if lse is None else max(min(lay.answer_start, t - n), k0)
        diag, prompt, answer, window = [], [], [], []
        if lse is not None:
            rows = torch.arange(k0, t, device=q.device)
            diag.append(diagonal_weights(q[:, k0:t], k[:, k0:t], None if mask is None else mask[rows, rows],
                                         lse[:, k0:t], scaling))
        for r0 in range(first, t, self.row_chunk):
            r1 = min(r0 + self.row_chunk, t)
            w = row_weights(q[:, r0:r1], k, None if mask is None else mask[r0:r1], scaling, r0)  # (H, R, T)
            self.note_weights(w)
            if lse is None:
                rows = torch.arange(r1 - r0, device=w.device)
                diag.append(w[:, rows, rows + r0])  # (H, R)
            prompt.append(w[..., :p].sum(-1))
            answer.append(w[..., p:].sum(-1))
            if n and r1 > t - n:
                window.append(w[:, max(t - n - r0, 0):, t - n:])  # (H, rows in the window, n)
        self.add_attention_rows(b, layer, torch.cat(diag, 1), torch.cat(prompt, 1), torch.cat(answer, 1),
                                torch.cat(window, 1) if window else None, first)

    def note_weights(self, w: torch.Tensor) -> None:
        """Remember the largest weight block built (tests check no map is ever whole)."""
        if w.numel() > _numel(self.largest_weights):
            self.largest_weights = tuple(w.shape)

    def record(self, b: int, logprob_stats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Sample ``b``'s feature tensors, keys in ``trace_record``'s order (graph ``x`` not PCA-projected).

        Args:
            logprob_stats: ``(8,)`` the answer statistics (they come from the logits, not from a hook).
        Returns:
            ``seq.*`` ``(Lh, d)``, ``scalar.logprob_stats`` ``(8,)``, ``scalar.lookback`` ``(La, H)``,
            ``scalar.attn_logdet`` ``(La,)``, ``scalar.hidden_svd`` ``(Lh,)``, ``graph.{l}.x`` ``(n, d)``,
            ``.edge_index`` ``(2, E)``, ``.edge_attr`` ``(E, H)``; on the CPU.
        Raises:
            RuntimeError: a layer was never reduced (the model bypassed the hooks or the attention function).
        """
        s, hidden, attn = self.samples[b], self.schema["hidden_layers"], self.schema["attn_layers"]
        missing = [i for i in hidden if i not in s.seq] + [i for i in attn if i not in s.lookback]
        if missing:
            raise RuntimeError(f"layers {missing} were not reduced: the model did not run the hooked blocks "
                               f"or the {FEATURES_ATTENTION!r} attention")
        out = {key: torch.stack([s.seq[i][key] for i in hidden]) for key in s.seq[hidden[0]]}
        out[SCALAR_LOGPROB_STATS] = logprob_stats
        n_heads = self.schema["n_heads"]
        out[SCALAR_LOOKBACK] = torch.stack([s.lookback[i] for i in attn]) if attn else torch.zeros(0, n_heads)
        out[SCALAR_ATTN_LOGDET] = torch.stack([s.logdet[i] for i in attn]) if attn else torch.zeros(0)
        out[SCALAR_HIDDEN_SVD] = torch.stack([s.svd[i] for i in hidden])
        graph = self.schema["graph"]
        for layer in graph["layers"] if graph else ():
            edges = build_edges(s.window[layer][None], graph["top_k"], graph["threshold"])[0]
            out[graph_key(layer, "x")] = s.nodes[layer].contiguous()
            out[graph_key(layer, "edge_index")], out[graph_key(layer, "edge_attr")] = edges
        return {k: v.cpu() for k, v in out.items()}


def _numel(shape: tuple[int, ...]) -> int:
    """Elements of a tensor of ``shape`` (0 for the empty tuple: nothing built yet)."""
    return int(torch.Size(shape).numel()) if shape else 0


def features_attention_forward(module, query, key, value, attention_mask, **kwargs):
    """transformers attention function: SDPA output (or the reducer's own); the active reducer reduces the weights.

    Args:
        module: the attention module (its ``layer_idx`` names the layer).
        query: ``(B, H, W, D)``; key, value: ``(B, H_kv, W, D)``; attention_mask: additive ``(B, 1, W, W)``.
    Returns:
        ``(output (B, W, H, D), None)``: never any weights.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    kwargs.pop("output_attentions", None)
    reducer, layer = _ACTIVE[-1] if _ACTIVE else None, getattr(module, "layer_idx", None)
    if reducer is None or layer not in reducer.attn_layers:  # no layer_idx: never reduced, record() says so
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)[0], None
    scaling = kwargs.get("scaling") or getattr(module, "scaling", None) or query.shape[-1] ** -0.5
    fused = None
    if getattr(reducer, "fused", False) and not (module.training and kwargs.get("dropout")):
        fused = fused_attention(query, key, value, attention_mask, scaling)
    own = reducer.reduce_attention(int(layer), query, key, attention_mask, scaling,
                                   None if fused is None else fused[1], value)  # a reducer may compute the output
    if own is not None:
        return own, None
    if fused is not None:
        return fused[0], None
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)[0], None


def register_features_attention() -> str:
    """Register :func:`features_attention_forward` (and the eager mask) under :data:`FEATURES_ATTENTION`."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(FEATURES_ATTENTION, features_attention_forward)
    AttentionMaskInterface.register(FEATURES_ATTENTION, eager_mask)  # else: no causal mask
    return FEATURES_ATTENTION


def decoder_blocks(model):
    """``(blocks, final_norm)`` of a decoder-only model (``model.model.layers``, ``model.model.norm``).

    Raises:
        ValueError: the model has no such modules.
    """
    base = getattr(model, "model", None) or getattr(model, "base_model", None)
    blocks, norm = getattr(base, "layers", None), getattr(base, "norm", None)
    if blocks is None or norm is None or len(blocks) != model.config.num_hidden_layers:
        raise ValueError(f"{type(model).__name__}: features in the forward pass need decoder blocks at "
                         "model.model.layers and a final norm at model.model.norm; extract traces and run "
                         "truthtrace preprocess instead")
    return blocks, norm


@contextmanager
def reducing(model, reducer: FeatureReducer):
    """Run the block with the model feeding ``reducer``: its attention switched to :data:`FEATURES_ATTENTION`
    and hooks on its blocks; the hooks, the attention and the active reducer are restored on exit."""
    blocks, norm = decoder_blocks(model)

    def pre_hook(layer):
        def hook(module, args, kwargs):
            reducer.reduce_hidden(layer, args[0] if args else kwargs["hidden_states"])
        return hook

    handles = [block.register_forward_pre_hook(pre_hook(i), with_kwargs=True) for i, block in enumerate(blocks)]
    handles.append(norm.register_forward_hook(lambda module, args, output: reducer.reduce_hidden(len(blocks), output)))
    _ACTIVE.append(reducer)
    try:
        with attention_implementation(model, register_features_attention()):
            yield reducer
    finally:
        _ACTIVE.remove(reducer)
        for handle in handles:
            handle.remove()

