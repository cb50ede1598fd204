"""The samples store (``truthtrace sample``): K sampled answers per question, and the ``sample.*`` keys it joins.

Its writer is :mod:`truthtrace.traces.sampling`; this module owns the format (kind, record keys) and reads it.

A samples store is an ordinary trace store (``truthtrace.store``) whose schema has ``kind`` =
:data:`SAMPLES_KIND`. It holds one record per question, named by the question id, with what the
sampling baselines need and nothing more (``docs/FORMAT.md``, "Samples store"):

- ``logprobs``, ``entropy`` ``(K, A)`` float32: each sample's answer-token log-probs and entropies,
  zero-padded to the longest of the K answers (``A``);
- ``n_tokens`` ``(K,)`` int32: each sample's answer length in tokens;
- ``embedding`` ``(K, d)`` float32: the hidden state of each sample's last answer token at the schema's
  ``embedding_layer`` (the middle layer by default, as EigenScore uses);
- ``cluster_ids`` ``(K,)`` int32: each sample's semantic cluster (:mod:`truthtrace.traces.clusters`);
- ``p_true`` ``(1,)`` float32: the model's P("True") that the greedy answer is correct.

Meta: ``question_id``, ``question``, ``greedy`` (the judged answer), ``samples`` (K texts),
``sample_ids`` (``<question id>#s<k>``), ``seed`` (this question's sampling seed).

:func:`join_sample` turns a record into the ``sample.*`` keys (:func:`truthtrace.naming.sample_key`) the feature
dataset yields, joined by question id.
"""

from __future__ import annotations

from pathlib import Path

import torch

from truthtrace.naming import (
    SAMPLE_CLUSTER_IDS,
    SAMPLE_EMBEDDINGS,
    SAMPLE_FIELDS,
    SAMPLE_GREEDY,
    SAMPLE_LOGPROB_MEAN,
    SAMPLE_N_TOKENS,
    SAMPLE_P_TRUE,
    SAMPLE_PREFIX,
    SAMPLE_TEXTS,
    sample_key,
)
from truthtrace.store import StoreError, TraceStore
from truthtrace.store.index import INDEX_NAME

SAMPLES_KIND = "truthtrace.samples"
SAMPLES_DIR = "samples"  # the samples store beside a feature store: <run>/features -> <run>/samples
LOGPROBS, ENTROPY, N_TOKENS, EMBEDDING, CLUSTER_IDS, P_TRUE = (
    "logprobs", "entropy", "n_tokens", "embedding", "cluster_ids", "p_true")
RECORD_KEYS = (LOGPROBS, ENTROPY, N_TOKENS, EMBEDDING, CLUSTER_IDS, P_TRUE)

SAMPLE_KEYS = tuple(sample_key(n) for n in SAMPLE_FIELDS)  # joined into feature batches (shapes: docs/FORMAT.md)
SAMPLE_HINT = "run `truthtrace sample --model ... --questions ... --out RUN/samples` first"


class MissingSamplesError(ValueError):
    """A ``sample.*`` key was asked for and no samples store (or no record of a question) is there."""


def sample_id(question_id: str, k: int) -> str:
    """Id of the ``k``-th sampled answer of a question: ``<question id>#s<k>``."""
    return f"{question_id}#s{k}"


def is_sample_key(key: str) -> bool:
    """True for a ``sample.*`` batch key (joined from a samples store)."""
    return key.startswith(SAMPLE_PREFIX)


def open_samples(path: str | Path) -> TraceStore:
    """The samples store at ``path``.

    Raises:
        MissingSamplesError: nothing is there, or it is not a samples store (the message says how to make one).
    """
    root = Path(path)
    try:
        store = TraceStore(root)
    except (StoreError, FileNotFoundError, OSError):
        raise MissingSamplesError(f"{root}: no samples store; {SAMPLE_HINT}") from None
    if store.schema.get("kind") != SAMPLES_KIND:
        raise MissingSamplesError(f"{root}: not a samples store (kind {store.schema.get('kind')!r}); {SAMPLE_HINT}")
    return store


def samples_beside(feature_dir: str | Path, samples: str | Path | None = None) -> Path:
    """Where the samples of a feature store are: ``samples`` if given, else ``<feature store>/../samples``.

    The feature store is where its ``index.json`` really is, so a folder of links to it (evaluate's per-category
    views) finds the same samples.
    """
    if samples is not None:
        return Path(samples)
    return (Path(feature_dir) / INDEX_NAME).resolve().parent.parent / SAMPLES_DIR


def check_sample_keys(keys, store: TraceStore) -> None:
    """Every ``sample.*`` key in ``keys`` is one this store can join; ValueError naming the others."""
    bad = [k for k in keys if is_sample_key(k) and k not in SAMPLE_KEYS]
    if bad:
        raise ValueError(f"unknown sample keys {bad}; choose from {list(SAMPLE_KEYS)} ({store.root})")


def join_sample(store: TraceStore, question_id: str, keys) -> dict:
    """The ``sample.*`` values of one question for a feature batch.

    Args:
        store: a samples store (:func:`open_samples`).
        question_id: the question whose record to read.
        keys: the batch keys; only ``sample.*`` ones are filled.

    Returns:
        ``{key: value}``: tensors ``(K,)``, ``(K, d)`` or ``()`` float32 (see the ``SAMPLE_*`` constants);
        ``sample.texts`` a list of K strings, ``sample.greedy`` a string.

    Raises:
        MissingSamplesError: the store has no record of ``question_id``.
    """
    if question_id not in store:
        raise MissingSamplesError(f"{store.root}: no samples of question {question_id!r}; "
                                  "sample every question of the feature store (truthtrace sample resumes)")
    trace = store.get(question_id)
    out: dict = {}
    for key in keys:
        if key == SAMPLE_TEXTS:
            out[key] = list(trace.meta["samples"])
        elif key == SAMPLE_GREEDY:
            out[key] = str(trace.meta["greedy"])
        elif key == SAMPLE_LOGPROB_MEAN:
            n = trace[N_TOKENS].float().clamp(min=1)  # (K,)
            out[key] = trace[LOGPROBS].float().sum(dim=1) / n
        elif key == SAMPLE_N_TOKENS:
            out[key] = trace[N_TOKENS].float()
        elif key == SAMPLE_EMBEDDINGS:
            out[key] = trace[EMBEDDING].float()
        elif key == SAMPLE_CLUSTER_IDS:
            out[key] = trace[CLUSTER_IDS].float()
        elif key == SAMPLE_P_TRUE:
            out[key] = trace[P_TRUE].float().reshape(())
    return out


def pad_rows(rows: list[torch.Tensor]) -> torch.Tensor:
    """Stack 1-d float tensors of different lengths into ``(K, max length)``, zero-padded."""
    width = max(len(r) for r in rows)
    out = torch.zeros((len(rows), width), dtype=torch.float32)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r.float()
    return out
