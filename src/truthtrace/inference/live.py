"""Features of an answer held in memory, computed exactly as ``extract`` -> ``preprocess`` would store them.

The captured tensors go through the trace store's dtype policy (:func:`truthtrace.store.codec.storage_cast`),
then the one function ``preprocess`` uses (:func:`truthtrace.features.record.trace_record`), then the
feature store's cast (:func:`~truthtrace.features.record.feature_cast`) and the dataset's sample
(:func:`~truthtrace.features.dataset.record_sample`). Nothing is written; the values are those a
detector would read back from disk, which is what makes a live score equal an offline one.

Running risk: for detectors reading only ``seq.*`` and ``scalar.logprob_stats``, the answer is also
scored as if it ended after each of its tokens (prefix ``a`` of the answer: its last and mean hidden
state, its log-prob statistics), and once before it starts (the last prompt token, no answer tokens).
"""

from __future__ import annotations

import torch

from truthtrace.features.config import GRAPHS, SEQ_KEYS
from truthtrace.features.dataset import collate, record_sample
from truthtrace.features.record import feature_cast, stack_layers, trace_record
from truthtrace.features.scalars import logprob_stats
from truthtrace.features.sequences import layout_of, sequence_features
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS, SCALAR_LOGPROB_STATS
from truthtrace.store.codec import storage_cast

RUNNING_KEYS = frozenset(SEQ_KEYS) | {SCALAR_LOGPROB_STATS}


class MemoryTrace:
    """A trace held in memory, read like a stored one: ``trace[key]``, ``.id``, ``.meta``, ``tensors()``."""

    def __init__(self, trace_id: str, tensors: dict[str, torch.Tensor], meta: dict):
        self.id, self.meta, self._tensors = trace_id, meta, tensors

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._tensors[key]

    def __contains__(self, key: str) -> bool:
        return key in self._tensors

    def tensors(self) -> dict[str, torch.Tensor]:
        return dict(self._tensors)


def as_stored(tensors: dict[str, torch.Tensor], storage_dtype: str) -> dict[str, torch.Tensor]:
    """``tensors`` as the trace store hands them back: ``layers.*`` floats in ``storage_dtype`` (or wider)."""
    return {k: storage_cast(k, t, storage_dtype, "float32")[0] for k, t in tensors.items()}


def live_features(trace: MemoryTrace, feature_schema: dict, pca) -> dict[str, torch.Tensor]:
    """The feature record of ``trace`` as the feature store would hold it (``seq.*`` ``(Lh, d)``, ...)."""
    tensors, _ = trace_record(trace, feature_schema, pca)
    return {k: feature_cast(v) for k, v in tensors.items()}


def detector_batch(records: list[tuple[str, str, dict]], keys: tuple[str, ...], feature_schema: dict) -> dict:
    """One collated batch of ``(trace_id, question_id, features)`` records with ``keys`` (labels unknown)."""
    return collate([record_sample(tid, qid, feats, keys, feature_schema) for tid, qid, feats in records])


def runs_live(inputs) -> bool:
    """True when a detector reading ``inputs`` can be scored after every answer token (see the module docstring)."""
    return GRAPHS not in inputs and set(inputs) <= RUNNING_KEYS


def prefix_features(trace: MemoryTrace, feature_schema: dict, first: int = 0,
                    spans: list | None = None) -> list[dict[str, torch.Tensor] | None]:
    """Features of the answer prefixes ``first..A``, the empty one (0) first: records of ``seq.*`` and log-prob stats.

    The empty prefix stands for the last prompt token (what a trace without answer tokens uses); a prefix is
    None when none of it was kept (``keep="answer"`` for the empty one). Prefix ``A`` is the whole answer.
    ``spans[a]`` is prefix ``a``'s exact-answer span (``prefix_spans``); None: the meta's ``exact_span``, clamped.
    """
    hidden = stack_layers(trace, feature_schema["hidden_layers"], "hidden")  # (Lh, K, d)
    lp, ent = trace[ANSWER_LOGPROBS].float(), trace[ANSWER_ENTROPY].float()
    n_answer = int(trace.meta["n_answer_tokens"])
    out = []
    for a in range(first, n_answer + 1):
        cut = hidden[:, : hidden.shape[1] - (n_answer - a)]
        try:
            meta = dict(trace.meta, n_answer_tokens=a, **({} if spans is None else {"exact_span": spans[a]}))
            layout = layout_of(meta, cut.shape[1], f"trace {trace.id!r}")
        except ValueError:  # nothing of this prefix was kept
            out.append(None)
            continue
        seq = sequence_features(cut, layout)
        seq[SCALAR_LOGPROB_STATS] = logprob_stats(lp[:a], ent[:a])
        out.append({k: feature_cast(v) for k, v in seq.items()})
    return out


def running_scores(det, prefixes: list[dict | None], trace_id: str, feature_schema: dict) -> list[float | None] | None:
    """Raw scores of ``det`` over :func:`prefix_features` (pre-answer first), or None if it cannot run live."""
    if not runs_live(det.inputs):
        return None
    records = [(f"{trace_id}@{a}", trace_id, f) for a, f in enumerate(prefixes) if f is not None]
    scores = iter(det.score(iter([detector_batch(records, tuple(det.inputs), feature_schema)])))
    return [float(next(scores)) if f is not None else None for f in prefixes]
