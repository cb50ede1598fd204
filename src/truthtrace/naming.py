"""One naming helper for every capture point, store key, feature key, config field and plot label.

Trace keys look like ``layers.12.hidden`` or ``layers.3.attn`` (TransformerLens-style dotted
names). Hidden-state layer ``0`` is the embedding output and layer ``i`` (1..L) the
residual stream after block ``i-1``, as in ``output_hidden_states`` of transformers;
attention layer ``i`` (0..L-1) is block ``i``'s attention pattern.

Feature keys (the feature store, ``docs/FORMAT.md``) look like ``seq.last_answer``,
``scalar.lookback`` and ``graph.12.edge_index``; build them with :func:`seq_key`,
:func:`scalar_key` and :func:`graph_key`, or use the constants below.
"""

from __future__ import annotations

import re

KINDS = ("hidden", "attn")
TRACES_KIND, FEATURES_KIND = "truthtrace.traces", "truthtrace.features"  # the schema ``kind`` of the two stores
TOKEN_IDS = "token_ids"
ANSWER_LOGPROBS = "answer_logprobs"
ANSWER_ENTROPY = "answer_entropy"

_KEY_RE = re.compile(r"^layers\.(\d+)\.(hidden|attn)$")


def layer_key(layer: int, kind: str) -> str:
    """Return the key for ``kind`` ("hidden" or "attn") at ``layer``, e.g. ``layers.12.hidden``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if layer < 0:
        raise ValueError(f"layer must be >= 0, got {layer}")
    return f"layers.{layer}.{kind}"


def parse_key(key: str) -> tuple[int, str] | None:
    """Return ``(layer, kind)`` for a layer key, or ``None`` for any other key."""
    m = _KEY_RE.match(key)
    return (int(m.group(1)), m.group(2)) if m else None


# token positions of the layer sequences; exact_*: the first / last token of the exact answer (LLMsKnow)
POSITIONS = ("last_answer", "mean_answer", "last_prompt", "exact_first", "exact_last")
SCALARS = ("logprob_stats", "lookback", "attn_logdet", "hidden_svd")
GRAPH_PARTS = ("x", "edge_index", "edge_attr")
_FEATURE_RE = re.compile(r"^(?:seq\.(\w+)|scalar\.(\w+)|graph\.(\d+)\.(\w+))$")


def seq_key(position: str) -> str:
    """Key of the layer sequence at one token ``position``, e.g. ``seq.last_answer`` ``(Lh, d)``."""
    if position not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
    return f"seq.{position}"


def scalar_key(name: str) -> str:
    """Key of one scalar feature group, e.g. ``scalar.lookback`` ``(La, H)``."""
    if name not in SCALARS:
        raise ValueError(f"scalar must be one of {SCALARS}, got {name!r}")
    return f"scalar.{name}"


def graph_key(layer: int, part: str) -> str:
    """Key of one graph tensor, e.g. ``graph.12.edge_index`` (``part`` in x, edge_index, edge_attr)."""
    if part not in GRAPH_PARTS:
        raise ValueError(f"part must be one of {GRAPH_PARTS}, got {part!r}")
    if layer < 0:
        raise ValueError(f"layer must be >= 0, got {layer}")
    return f"graph.{layer}.{part}"


def parse_feature_key(key: str) -> tuple[str, int | None, str] | None:
    """``("seq", None, position)``, ``("scalar", None, name)`` or ``("graph", layer, part)``; None otherwise."""
    m = _FEATURE_RE.match(key)
    if m is None:
        return None
    if m.group(1) in POSITIONS:
        return "seq", None, m.group(1)
    if m.group(2) in SCALARS:
        return "scalar", None, m.group(2)
    if m.group(4) in GRAPH_PARTS:
        return "graph", int(m.group(3)), m.group(4)
    return None


SEQ_LAST_ANSWER, SEQ_MEAN_ANSWER, SEQ_LAST_PROMPT, SEQ_EXACT_FIRST, SEQ_EXACT_LAST = (seq_key(p) for p in POSITIONS)
SCALAR_LOGPROB_STATS, SCALAR_LOOKBACK, SCALAR_ATTN_LOGDET, SCALAR_HIDDEN_SVD = (scalar_key(n) for n in SCALARS)


SAMPLE_PREFIX = "sample."  # keys joined from the samples store
SAMPLE_FIELDS = ("cluster_ids", "logprob_mean", "n_tokens", "embeddings", "p_true", "texts", "greedy")


def sample_key(name: str) -> str:
    """Key of a value joined from the samples store (``truthtrace sample``), e.g. ``sample.embeddings`` ``(K, d)``."""
    if name not in SAMPLE_FIELDS:
        raise ValueError(f"sample field must be one of {SAMPLE_FIELDS}, got {name!r}")
    return SAMPLE_PREFIX + name


(SAMPLE_CLUSTER_IDS, SAMPLE_LOGPROB_MEAN, SAMPLE_N_TOKENS, SAMPLE_EMBEDDINGS, SAMPLE_P_TRUE, SAMPLE_TEXTS,
 SAMPLE_GREEDY) = (sample_key(n) for n in SAMPLE_FIELDS)
