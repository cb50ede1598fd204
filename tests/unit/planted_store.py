"""A synthetic trace store whose hallucination label is planted where a detector can find it.

Use it for known-answer tests of preprocessing and detectors::

    from planted_store import make_planted_store
    store_dir, labels_csv = make_planted_store(tmp_path, n=120)

What is planted (everything else is pure noise, including log-probs and entropies):

- **hidden states**: in hidden layer ``planted_layer`` every token of a hallucinated
  trace is shifted by ``shift`` along one fixed unit direction (``planted_direction``).
  A linear probe on ``seq.*`` features of that layer separates the classes; other layers
  carry no signal.
- **attention**: in attention layer ``planted_attn_layer`` (default
  ``min(planted_layer, layers - 1)``) each answer token of a hallucinated trace puts 90%
  of its mass on the previous token; a correct trace's answer tokens put 90% on the
  prompt, spread evenly. So ``scalar.lookback`` of that layer is ~0.1 vs ~0.9+, and the
  top-k graph edges differ (previous-token chain vs edges into the prompt).

Traces ``t000, t001, ...`` come two per question (``q000`` holds t000 and t001), exactly
half are hallucinated (``label`` 1), prompt and answer lengths vary around ``n_tokens``.
``labels.csv`` has the columns of ``truthtrace.labels.score`` (``hallucinated`` = label).
"""

from __future__ import annotations

from pathlib import Path

import torch

from truthtrace.labels.io import write_labels
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS, TOKEN_IDS, layer_key
from truthtrace.store import TraceWriter


def planted_direction(d: int, seed: int = 0) -> torch.Tensor:
    """The fixed unit direction ``(d,)`` along which hallucinated traces are shifted."""
    u = torch.randn(d, generator=torch.Generator().manual_seed(10_000 + seed))
    return u / u.norm()


def planted_labels(n: int, seed: int = 0) -> list[int]:
    """Label of each of the ``n`` traces: a seeded permutation of n//2 ones and the rest zeros."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(20_000 + seed))
    return [int(p < n // 2) for p in perm]


def _attention(g, heads: int, t: int) -> torch.Tensor:
    """Random causal attention ``(H, T, T)`` whose rows sum to 1."""
    mask = torch.ones(t, t, dtype=torch.bool).triu(1)
    return torch.randn(heads, t, t, generator=g).masked_fill(mask, float("-inf")).softmax(-1)


def _plant_attention(attn: torch.Tensor, n_prompt: int, label: int) -> torch.Tensor:
    """Answer rows: 90% on the previous token (label 1) or spread over the prompt (label 0)."""
    out = attn.clone()
    for i in range(n_prompt, attn.shape[-1]):
        target = torch.zeros(attn.shape[-1])
        if label:
            target[i - 1] = 1.0
        else:
            target[:n_prompt] = 1.0 / n_prompt
        out[:, i] = 0.1 * attn[:, i] + 0.9 * target
    return out


def planted_trace(i: int, label: int, *, layers: int, heads: int, d: int, n_tokens: int,
                  planted_layer: int, planted_attn_layer: int, shift: float, seed: int,
                  direction_seed: int | None = None) -> tuple[dict, dict]:
    """Tensors and meta of trace ``i``: hidden ``(T, d)`` x (layers+1), attn ``(H, T, T)`` x layers."""
    g = torch.Generator().manual_seed(seed * 100_003 + i)
    n_answer = int(torch.randint(2, 5, (1,), generator=g))
    n_prompt = max(2, n_tokens - 4 + int(torch.randint(0, 3, (1,), generator=g)))
    t = n_prompt + n_answer
    tensors = {}
    for layer in range(layers + 1):
        h = torch.randn(t, d, generator=g)
        if layer == planted_layer and label:
            h = h + shift * planted_direction(d, seed if direction_seed is None else direction_seed)
        tensors[layer_key(layer, "hidden")] = h
    for layer in range(layers):
        attn = _attention(g, heads, t)
        if layer == planted_attn_layer:
            attn = _plant_attention(attn, n_prompt, label)
        tensors[layer_key(layer, "attn")] = attn
    tensors[TOKEN_IDS] = torch.randint(0, 1000, (t,), generator=g, dtype=torch.int32)
    tensors[ANSWER_LOGPROBS] = -torch.rand(n_answer, generator=g)
    tensors[ANSWER_ENTROPY] = torch.rand(n_answer, generator=g)
    meta = {"question_id": f"q{i // 2:03d}", "question": f"question {i // 2}?", "answers": ["yes", "right"],
            "category": ("science", "history")[(i // 2) % 2], "prompt": f"prompt {i}",
            "generation": "no" if label else "yes", "n_prompt_tokens": n_prompt, "n_answer_tokens": n_answer,
            "kept_start": 0, "exact_span": [0, n_answer - 1]}
    return tensors, meta


def planted_schema(layers: int, heads: int, d: int) -> dict:
    """A trace-store schema shaped like ``truthtrace extract``'s, for a fake model."""
    return {"kind": "truthtrace.traces", "model": "planted", "model_dtype": "float32", "n_layers": layers,
            "n_heads": heads, "d_model": d, "vocab_size": 1000, "hidden_layers": list(range(layers + 1)),
            "attn_layers": list(range(layers)), "keep": "all", "capture": "forward", "storage_dtype": "float16",
            "generation": {}}


def make_planted_store(path, n: int = 120, layers: int = 3, heads: int = 2, d: int = 16, n_tokens: int = 12,
                       planted_layer: int = 2, seed: int = 0, *, planted_attn_layer: int | None = None,
                       shift: float = 3.0, shard_max_traces: int = 32,
                       direction_seed: int | None = None) -> tuple[Path, Path]:
    """Write ``path/traces`` (a trace store) and ``path/labels.csv`` with planted labels.

    Args:
        path: directory to create them in.
        n: number of traces (two per question id; keep it even).
        layers, heads, d: fake model shape (hidden layers 0..layers, attention layers 0..layers-1).
        n_tokens: typical trace length (prompt ``n_tokens-4..n_tokens-2``, answer 2..4 tokens).
        planted_layer: hidden layer carrying the shift; ``planted_attn_layer`` the attention pattern.
        seed: everything is a function of it.
        shift: size of the planted hidden-state shift (noise std is 1).
        shard_max_traces: traces per store shard (small, so stores have several shards).
        direction_seed: seed of the planted direction (default ``seed``): two stores with different
            ``seed`` and the same ``direction_seed`` share the signal but no trace (cross-dataset tests).
    Returns:
        ``(store_dir, labels_csv)``.
    """
    if not 0 <= planted_layer <= layers:
        raise ValueError(f"planted_layer must be in 0..{layers}, got {planted_layer}")
    attn_layer = min(planted_layer, layers - 1) if planted_attn_layer is None else planted_attn_layer
    root = Path(path)
    store_dir, labels_csv = root / "traces", root / "labels.csv"
    labels, rows = planted_labels(n, seed), []
    with TraceWriter(store_dir, planted_schema(layers, heads, d), shard_max_traces=shard_max_traces,
                     overwrite=True) as w:
        for i, label in enumerate(labels):
            tensors, meta = planted_trace(i, label, layers=layers, heads=heads, d=d, n_tokens=n_tokens,
                                          planted_layer=planted_layer, planted_attn_layer=attn_layer,
                                          shift=shift, seed=seed, direction_seed=direction_seed)
            w.add(f"t{i:03d}", tensors, meta)
            rows.append({"trace_id": f"t{i:03d}", "question_id": meta["question_id"], "category": meta["category"],
                         "exact_match": 1 - label, "contains": 1 - label, "f1": float(1 - label),
                         "rougeL": float(1 - label), "correct": 1 - label, "hallucinated": label,
                         "generation": meta["generation"], "answers": "yes|right"})
    write_labels(rows, labels_csv)
    return store_dir, labels_csv
