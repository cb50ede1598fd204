"""Build the per-trace feature file from a trace store (the features stage of the pipeline).

For every trace: the hidden state of the last answer token at every stored layer, the mean
answer-token log-prob and the max answer-token entropy. Only the chunks needed are read
(one per stored hidden layer plus two small vectors), never whole shards' attention maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .features_io import Features, write_features
from .naming import ANSWER_ENTROPY, ANSWER_LOGPROBS, layer_key

POSITIONS = ("last_answer",)


@dataclass
class FeatureConfig:
    """Options of the features stage; validated on construction."""

    position: str = "last_answer"
    layers: list[int] | None = None  # None: every hidden layer in the store

    def __post_init__(self):
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {self.position!r}")
        if self.layers is not None and (not self.layers or min(self.layers) < 0):
            raise ValueError("layers must be a non-empty list of indices >= 0")


def trace_features(store, trace_id: str, layers: list[int]) -> tuple[np.ndarray, float, float]:
    """Features of one trace: ``(len(layers), d)`` float32 last-answer-token states, mean log-prob, max entropy."""
    hidden = np.stack([store.read(trace_id, layer_key(i, "hidden"))[-1].float().numpy() for i in layers])
    logprobs = store.read(trace_id, ANSWER_LOGPROBS).float().numpy()
    entropy = store.read(trace_id, ANSWER_ENTROPY).float().numpy()
    return hidden, float(logprobs.mean()), float(entropy.max())


def build_features(store_path: str | Path, out_dir: str | Path, config: FeatureConfig | None = None,
                   progress: bool = True) -> Features:
    """Read every trace of ``store_path`` and write ``features.safetensors`` + ``features.json``.

    Returns:
        the :class:`Features` written: ``hidden_last`` ``(N, len(layers), d)``.
    Raises:
        ValueError: a requested layer is not in the store.
    """
    from .store import TraceStore

    config = config or FeatureConfig()
    store = TraceStore(store_path)
    stored = list(store.schema["hidden_layers"])
    layers = config.layers if config.layers is not None else stored
    missing = sorted(set(layers) - set(stored))
    if missing:
        raise ValueError(f"layers {missing} are not in the store {store_path} (it holds {stored})")
    ids = store.ids()
    hidden, mean_lp, max_ent, qids = [], [], [], []
    for trace_id in tqdm(ids, desc="features", unit="trace", disable=not progress):
        h, lp, ent = trace_features(store, trace_id, layers)
        hidden.append(h)
        mean_lp.append(lp)
        max_ent.append(ent)
        qids.append(store.meta(trace_id)["question_id"])
    feats = Features(hidden_last=np.stack(hidden) if hidden else np.zeros((0, len(layers), store.schema["d_model"])),
                     mean_logprob=np.asarray(mean_lp, np.float32), max_entropy=np.asarray(max_ent, np.float32),
                     trace_ids=ids, question_ids=qids, layers=list(layers), model=store.schema.get("model", ""),
                     position=config.position)
    write_features(out_dir, feats)
    return feats
