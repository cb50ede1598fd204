"""Quality of a model against a reference model: perplexity, top-1 agreement and KL for causal LMs;
cosine similarity of pooled outputs and accuracy for encoders (a detector's AUROC: ``detect.py``).

All functions take loaded models (no loading here) and run under ``torch.no_grad`` (not
``inference_mode``: optimum-quanto models only run under ``no_grad``).
"""

from __future__ import annotations

import csv
import math
import re
from importlib import resources
from pathlib import Path

import torch
from tqdm.auto import tqdm

SAMPLE_FILE = "ppl_sample.txt"


def load_text(path: str | Path | None = None) -> str:
    """The text sample: ``path`` or the bundled ~2,200-token English sample.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the text is empty.
    """
    if path is None:
        text = resources.files("truthtrace.data").joinpath("bundled", SAMPLE_FILE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"text sample {path or SAMPLE_FILE} is empty")
    return text


def same_vocab(tok_a, tok_b) -> bool:
    """True when two tokenizers map every token string to the same id (so logits line up)."""
    return tok_a is tok_b or tok_a.get_vocab() == tok_b.get_vocab()


def windows(n_tokens: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """Sliding windows ``(begin, end, n_scored)`` over ``n_tokens`` tokens.

    Each window holds at most ``max_length`` tokens and scores its last ``n_scored`` next-token
    predictions. Every token after the first is scored exactly once; the first window scores
    ``max_length - 1`` tokens, later ones ``min(stride, max_length - 1)``, each with at least
    ``max_length - stride`` tokens of context.
    """
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2, got {max_length}")
    step = min(stride, max_length - 1)
    out, start, end = [], 1, min(max_length, n_tokens)
    while start < n_tokens:
        out.append((max(0, end - max_length), end, end - start))
        start, end = end, min(end + step, n_tokens)
    return out


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


def _window_logprobs(model, ids: torch.Tensor, n_scored: int) -> torch.Tensor:
    """Log-probs ``(n_scored, V)`` float32 of the last ``n_scored`` next-token predictions of ``ids`` ``(T,)``."""
    logits = model(input_ids=ids[None].to(_model_device(model)), use_cache=False).logits[0]  # (T, V)
    return torch.log_softmax(logits[-n_scored - 1:-1].float().cpu(), dim=-1)


def causal_quality(models: list, ids: torch.Tensor, max_length: int = 512, stride: int = 256) -> list[dict]:
    """Perplexity of each model on ``ids``; top-1 agreement and mean KL(first || model) per token.

    Args:
        models: causal LMs sharing one vocabulary; ``models[0]`` is the reference.
        ids: ``(N,)`` token ids of the text sample.
        max_length, stride: sliding-window size and step (see :func:`windows`).
    Returns:
        one dict per model: perplexity, mean_nll, n_tokens, top1_agreement, kl_mean.
    Raises:
        ValueError: fewer than 2 tokens, or vocab sizes of the logits differ.
    """
    if ids.numel() < 2:
        raise ValueError("the text sample must have at least 2 tokens")
    nll = [0.0] * len(models)
    agree = [0] * len(models)
    kl = [0.0] * len(models)
    n = 0
    with torch.no_grad():
        spans = windows(ids.numel(), max_length, stride)
        for begin, end, n_scored in tqdm(spans, desc="perplexity windows", unit="window", leave=False):
            window = ids[begin:end]
            targets = window[-n_scored:]  # (n_scored,)
            ref = None
            for i, model in enumerate(models):
                logp = _window_logprobs(model, window, n_scored)  # (n_scored, V)
                nll[i] -= logp.gather(1, targets[:, None]).sum().item()
                if ref is None:
                    ref, ref_top = logp, logp.argmax(-1)
                elif logp.shape != ref.shape:
                    raise ValueError(f"model {i} has {logp.shape[-1]} logits, the first model {ref.shape[-1]}")
                agree[i] += int((logp.argmax(-1) == ref_top).sum())
                kl[i] += (ref.exp() * (ref - logp)).sum().item()
            n += n_scored
    return [{"perplexity": math.exp(nll[i] / n), "mean_nll": nll[i] / n, "n_tokens": n,
             "top1_agreement": agree[i] / n, "kl_mean": max(kl[i] / n, 0.0)} for i in range(len(models))]


def perplexity(model, ids: torch.Tensor, max_length: int = 512, stride: int = 256) -> dict:
    """Perplexity of one model on ``ids`` ``(N,)`` (for a model whose vocabulary differs from the first)."""
    row = causal_quality([model], ids, max_length, stride)[0]
    return {k: row[k] for k in ("perplexity", "mean_nll", "n_tokens")}


def sentences(text: str, limit: int = 64) -> list[str]:
    """Split ``text`` into at most ``limit`` sentences (on ``. ! ?`` followed by a space)."""
    parts = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    return parts[:limit]


def is_classifier(model) -> bool:
    """True for sequence classifiers (their outputs are class logits rather than hidden states)."""
    return type(model).__name__.endswith("ForSequenceClassification")


def encoder_outputs(model, tokenizer, texts: list[str], batch_size: int = 16, max_length: int = 128) -> torch.Tensor:
    """Pooled outputs ``(n, k)`` float32: class probabilities for classifiers, else the
    attention-masked mean of the last hidden state (k = d)."""
    rows = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt").to(_model_device(model))
            out = model(**enc)
            if is_classifier(model):
                rows.append(torch.softmax(out.logits.float(), dim=-1).cpu())
                continue
            hidden = out.last_hidden_state.float()  # (B, T, d)
            mask = enc["attention_mask"][..., None].float()  # (B, T, 1)
            rows.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu())
    return torch.cat(rows)


def read_text_labels(path: str | Path) -> tuple[list[str], list[str]]:
    """Read a CSV with ``text`` and ``label`` columns.

    Raises:
        ValueError: naming the file and line for a missing column or an empty cell.
    """
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for col in ("text", "label"):
            if col not in (reader.fieldnames or []):
                raise ValueError(f"{path}: column {col!r} missing from the header")
        for line, row in enumerate(reader, start=2):
            if not (row["text"] or "").strip() or not (row["label"] or "").strip():
                raise ValueError(f"{path}:{line}: empty 'text' or 'label'")
            texts.append(row["text"])
            labels.append(row["label"].strip())
    if not texts:
        raise ValueError(f"{path}: no rows")
    return texts, labels


def label_ids(model, labels: list[str], where: str) -> torch.Tensor:
    """Class indices ``(n,)`` of ``labels``: integers as given, names through ``config.label2id``.

    Raises:
        ValueError: a label is neither an index of the model's classes nor one of its label names.
    """
    names = {str(k).lower(): int(v) for k, v in (getattr(model.config, "label2id", None) or {}).items()}
    n_classes = int(getattr(model.config, "num_labels", len(names)))
    out = []
    for value in labels:
        idx = int(value) if value.lstrip("-").isdigit() else names.get(value.lower())
        if idx is None or not 0 <= idx < n_classes:
            raise ValueError(f"{where}: label {value!r} is not a class of the model (known: {sorted(names)})")
        out.append(idx)
    return torch.tensor(out)


def encoder_quality(loaded: list, texts: list[str], labels: list[str] | None = None,
                    labels_file: str = "labels") -> list[dict]:
    """Mean cosine similarity of each encoder's pooled outputs with the first's, and accuracy.

    Args:
        loaded: ``(model, tokenizer)`` pairs; the first is the reference.
        texts: the inputs.
        labels: optional gold labels (indices or label names) for accuracy; classifiers only.
    Returns:
        one dict per model: cosine (None when output widths differ), accuracy (None without
        labels or for a model that is not a classifier), note.
    """
    outs = [encoder_outputs(m, t, texts) for m, t in loaded]  # each (n, k)
    rows = []
    for (model, _), out in zip(loaded, outs):
        row: dict = {"cosine": None, "accuracy": None, "note": ""}
        if out.shape == outs[0].shape:
            row["cosine"] = float(torch.nn.functional.cosine_similarity(out, outs[0], dim=-1).mean())
        else:
            row["note"] = f"output width {out.shape[-1]} differs from the first model's {outs[0].shape[-1]}"
        if labels is not None and is_classifier(model):
            gold = label_ids(model, labels, labels_file)
            row["accuracy"] = float((out.argmax(-1) == gold).float().mean())
        elif labels is not None:
            row["note"] = "not a classifier: no accuracy"
        rows.append(row)
    return rows
