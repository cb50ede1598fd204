"""The ``inspect`` stage: a readable overview of a trace store, or of one trace.

The overview reads only the index and shard documents, except for per-layer statistics
(hidden-state norms, attention entropy), which decode a fixed-seed sample of traces so a
store of thousands of traces is summarised in seconds. Rendering with ``rich`` is kept
apart from the numbers (:func:`inspect_store`, :func:`inspect_trace` return plain dicts).
"""

from __future__ import annotations

import random
import statistics

import torch

from truthtrace.labels.io import labels_beside, read_label_csv
from truthtrace.models import offline_decoder
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS, TOKEN_IDS, parse_key
from truthtrace.store import TraceStore


def _spread(values: list[int]) -> dict:
    if not values:
        return {"min": None, "median": None, "max": None}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _label_balance(path, ids: list[str]) -> dict:
    """Counts of a labels CSV against the store's ids; ``error`` instead when it cannot be read."""
    try:
        labels = read_label_csv(path)
    except (OSError, ValueError) as err:
        return {"path": str(path), "error": str(err)}
    known = set(ids)
    held = [labels[i] for i in ids if i in labels]
    return {"path": str(path), "labelled": len(held), "hallucinated": sum(held),
            "correct": len(held) - sum(held), "rate_hallucinated": sum(held) / len(held) if held else None,
            "unlabelled": len(ids) - len(held), "orphans": sum(1 for i in labels if i not in known)}


def layer_stats(traces) -> dict:
    """Per-layer statistics over an iterable of :class:`~truthtrace.store.Trace`.

    Returns:
        ``{"hidden": [{layer, norm_mean, norm_std, n_tokens}], "attn": [{layer, entropy_mean, n_rows}]}``:
        mean/std of the per-token L2 norm of ``layers.{i}.hidden`` ``(T, d)``, and the mean
        per-row entropy (nats) of ``layers.{i}.attn`` ``(H, T, T)`` over heads and rows.
    """
    hidden: dict[int, list[float]] = {}  # layer -> [sum, sum of squares, count]
    attn: dict[int, list[float]] = {}  # layer -> [sum of row entropies, rows]
    for trace in traces:
        for key, t in trace.tensors().items():
            parsed = parse_key(key)
            if parsed is None:
                continue
            x = t.float()
            if parsed[1] == "hidden":
                norms = x.norm(dim=-1).double()  # (T,)
                acc = hidden.setdefault(parsed[0], [0.0, 0.0, 0])
                acc[0] += float(norms.sum())
                acc[1] += float((norms * norms).sum())
                acc[2] += norms.numel()
            else:
                rows = -torch.special.xlogy(x, x).sum(-1)  # (H, T): 0 log 0 counts as 0
                acc = attn.setdefault(parsed[0], [0.0, 0])
                acc[0] += float(rows.double().sum())
                acc[1] += rows.numel()
    out_h = []
    for layer, (s, s2, n) in sorted(hidden.items()):
        mean = s / n if n else float("nan")
        out_h.append({"layer": layer, "norm_mean": mean, "norm_std": max(s2 / n - mean * mean, 0.0) ** 0.5 if n
                      else float("nan"), "n_tokens": n})
    out_a = [{"layer": layer, "entropy_mean": s / n if n else float("nan"), "n_rows": n}
             for layer, (s, n) in sorted(attn.items())]
    return {"hidden": out_h, "attn": out_a}


def inspect_store(path, labels=None, sample: int = 64, seed: int = 0) -> dict:
    """Overview of the store at ``path``.

    Args:
        path: store directory.
        labels: labels CSV; None looks for ``labels.csv`` beside the store
            (:func:`truthtrace.labels.io.labels_beside`).
        sample: traces decoded for the per-layer statistics (0 skips them).
        seed: seed of the sample.

    Returns:
        dict with model, n_traces, n_shards, n_layers, n_heads, d_model, storage_dtype,
        model_dtype, tokens and answer_tokens (min/median/max), bytes_per_trace_disk,
        bytes_per_trace_raw, compression_ratio, overflow_fallbacks, labels (or None),
        sample (ids used) and layers (:func:`layer_stats`).

    Raises:
        StoreError: not a readable store. ValueError: ``sample`` < 0.
    """
    if sample < 0:
        raise ValueError(f"sample must be >= 0, got {sample}")
    store = TraceStore(path)
    schema, info, ids = store.schema, store.info(), store.ids()
    chosen = set(random.Random(seed).sample(ids, min(sample, len(ids))))
    tokens, answers, picked = [], [], []

    def walk():  # one pass in storage order: each shard document is parsed once, sampled bins mapped once
        for traces in store.iter_shards():
            for trace in traces:
                n_p, n_a = trace.meta.get("n_prompt_tokens"), trace.meta.get("n_answer_tokens")
                if isinstance(n_p, int) and isinstance(n_a, int):
                    tokens.append(n_p + n_a)
                    answers.append(n_a)
                if trace.id in chosen:
                    picked.append(trace.id)
                    yield trace

    layers = layer_stats(walk())
    labels = labels if labels is not None else labels_beside(path)
    n = max(len(ids), 1)
    return {"path": str(path), "model": schema.get("model"), "n_traces": len(ids), "n_shards": info["n_shards"],
            "n_layers": schema.get("n_layers"), "n_heads": schema.get("n_heads"), "d_model": schema.get("d_model"),
            "storage_dtype": store.storage.get("dtype"), "model_dtype": schema.get("model_dtype"),
            "keep": schema.get("keep"), "tokens": _spread(tokens), "answer_tokens": _spread(answers),
            "bytes_on_disk": info["bytes_on_disk"], "bytes_per_trace_disk": info["bytes_on_disk"] / n,
            "bytes_per_trace_raw": info["raw_bytes"] / n, "compression_ratio": info["compression_ratio"],
            "overflow_fallbacks": len(info["overflow_fallbacks"]),
            "labels": _label_balance(labels, ids) if labels is not None else None,
            "sample": {"n": len(picked), "seed": seed}, "layers": layers}


def inspect_trace(path, trace_id: str, labels=None, decode_tokens: bool = True) -> dict:
    """One trace: question, accepted answers, generation, label, and its answer tokens.

    Args:
        path: store directory.
        trace_id: the trace.
        labels: labels CSV (None: :func:`truthtrace.labels.io.labels_beside`).
        decode_tokens: turn token ids into text with the model's tokenizer when it loads offline.

    Returns:
        dict with id, meta fields (question, answers, generation, category, token counts),
        label (1 = hallucinated, or None), keys (n hidden / attention layers), and
        answer_tokens: ``[{position, id, text, logprob, entropy}]`` (text None without a tokenizer).

    Raises:
        StoreError: not a readable store. ValueError: ``trace_id`` is not in it.
    """
    store = TraceStore(path)
    if trace_id not in store:
        some = ", ".join(repr(i) for i in store.ids()[:5])
        raise ValueError(f"trace {trace_id!r} is not in {path} (ids look like {some})")
    meta, trace = store.meta(trace_id), store.get(trace_id)
    ids = trace[TOKEN_IDS].tolist() if TOKEN_IDS in trace else []
    logp = trace[ANSWER_LOGPROBS].tolist() if ANSWER_LOGPROBS in trace else []
    ent = trace[ANSWER_ENTROPY].tolist() if ANSWER_ENTROPY in trace else []
    n_answer = meta.get("n_answer_tokens", len(logp))
    first = len(ids) - n_answer  # token_ids holds the prompt then the answer
    tok = offline_decoder(store.schema.get("model")) if decode_tokens and ids else None
    answer = [{"position": first + j, "id": ids[first + j] if 0 <= first + j < len(ids) else None,
               "text": tok.decode([ids[first + j]]) if tok is not None and 0 <= first + j < len(ids) else None,
               "logprob": logp[j] if j < len(logp) else None, "entropy": ent[j] if j < len(ent) else None}
              for j in range(n_answer)]
    label, labels_path = None, labels if labels is not None else labels_beside(path)
    if labels_path is not None:
        try:
            label = read_label_csv(labels_path).get(trace_id)
        except ValueError:
            if labels is not None:  # a file the user named must be readable; a guessed one may be anything
                raise
    keys = trace.keys()
    return {"id": trace_id, "question": meta.get("question"), "answers": meta.get("answers"),
            "generation": meta.get("generation"), "category": meta.get("category"),
            "question_id": meta.get("question_id"), "n_prompt_tokens": meta.get("n_prompt_tokens"),
            "n_answer_tokens": n_answer, "kept_start": meta.get("kept_start"), "label": label,
            "n_hidden_layers": sum(k.endswith(".hidden") for k in keys),
            "n_attn_layers": sum(k.endswith(".attn") for k in keys), "tokenizer": tok is not None,
            "mean_logprob": sum(logp) / len(logp) if logp else None, "answer_tokens": answer}


def _mb(n: float) -> str:
    """Human size: ``2.61 MB``, ``8.1 kB``."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"


def render_overview(info: dict) -> list:
    """``rich`` tables for an :func:`inspect_store` dict: the store, its labels, per-layer statistics."""
    from rich.table import Table

    store = Table(title=f"trace store {info['path']}", show_header=False)
    tok, ans = info["tokens"], info["answer_tokens"]
    rows = [("model", info["model"]), ("traces", f"{info['n_traces']} in {info['n_shards']} shards"),
            ("layers / heads / hidden size", f"{info['n_layers']} / {info['n_heads']} / {info['d_model']}"),
            ("storage dtype (model dtype)", f"{info['storage_dtype']} ({info['model_dtype']})"),
            ("tokens per trace min / median / max", f"{tok['min']} / {tok['median']} / {tok['max']}"),
            ("answer tokens min / median / max", f"{ans['min']} / {ans['median']} / {ans['max']}"),
            ("bytes per trace on disk / raw", f"{_mb(info['bytes_per_trace_disk'])} / "
             f"{_mb(info['bytes_per_trace_raw'])} (ratio {info['compression_ratio'] or 0:.3f})"),
            ("overflow fallbacks", str(info["overflow_fallbacks"]))]
    labels = info["labels"]
    if labels is None:
        rows.append(("labels", "none found (pass --labels)"))
    elif "error" in labels:
        rows.append(("labels", f"{labels['path']}: {labels['error']}"))
    else:
        rate = labels["rate_hallucinated"]
        rows.append(("labels", f"{labels['hallucinated']} hallucinated / {labels['correct']} correct"
                     f" ({rate:.1%} hallucinated)" if rate is not None else "no trace labelled"))
        rows.append(("unlabelled traces / orphan labels", f"{labels['unlabelled']} / {labels['orphans']}"))
    for name, value in rows:
        store.add_row(name, str(value))
    layers = Table(title=f"per layer, on {info['sample']['n']} sampled traces (seed {info['sample']['seed']})")
    for col in ("layer", "hidden norm mean", "hidden norm std", "attn entropy (nats)"):
        layers.add_column(col, justify="right")
    attn = {a["layer"]: a["entropy_mean"] for a in info["layers"]["attn"]}
    hidden = {h["layer"]: h for h in info["layers"]["hidden"]}
    for layer in sorted(set(attn) | set(hidden)):
        h = hidden.get(layer)
        layers.add_row(str(layer), f"{h['norm_mean']:.2f}" if h else "", f"{h['norm_std']:.2f}" if h else "",
                       f"{attn[layer]:.3f}" if layer in attn else "")
    return [store, layers] if hidden or attn else [store]


def render_trace(info: dict) -> list:
    """``rich`` tables for an :func:`inspect_trace` dict: the texts, then the answer tokens."""
    from rich.table import Table

    head = Table(title=f"trace {info['id']}", show_header=False)
    label = {None: "unknown", 0: "0 (correct)", 1: "1 (hallucinated)"}[info["label"]]
    for name, value in (("question", info["question"]), ("accepted answers", " | ".join(info["answers"] or [])),
                        ("generated answer", info["generation"]), ("label", label),
                        ("category", info["category"]),
                        ("tokens", f"{info['n_prompt_tokens']} prompt + {info['n_answer_tokens']} answer"),
                        ("layers stored", f"{info['n_hidden_layers']} hidden, {info['n_attn_layers']} attention"),
                        ("mean answer log-prob", f"{info['mean_logprob']:.4f}" if info["mean_logprob"] is not None
                         else "n/a")):
        head.add_row(name, str(value))
    tokens = Table(title="answer tokens" + ("" if info["tokenizer"] else " (tokenizer not available: ids only)"))
    for col in ("pos", "id", "token", "log-prob", "entropy"):
        tokens.add_column(col, justify="left" if col == "token" else "right")
    for t in info["answer_tokens"]:
        tokens.add_row(str(t["position"]), str(t["id"]), repr(t["text"]) if t["text"] is not None else "",
                       f"{t['logprob']:.4f}" if t["logprob"] is not None else "",
                       f"{t['entropy']:.4f}" if t["entropy"] is not None else "")
    return [head, tokens]
