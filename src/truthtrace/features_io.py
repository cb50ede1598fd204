"""Read and write the feature file that detectors train on, and cut it into batches.

A feature dir holds ``features.safetensors`` (the arrays) and ``features.json`` (the
index). The index is written last and checked on read, so a crash mid-write leaves a
dir without ``features.json`` rather than one that looks complete.

Tensors (N traces, L+1 stored hidden layers, d model width):

- ``hidden_last``  ``(N, L+1, d)`` float16: hidden state of the last answer token.
- ``mean_logprob`` ``(N,)`` float32: mean log-prob of the answer tokens.
- ``max_entropy``  ``(N,)`` float32: max token entropy over the answer tokens.

Unknown extra tensors are allowed and ignored.
"""

from __future__ import annotations

import csv
import json
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from safetensors.numpy import load_file

from truthtrace.fileio import save_tensors_atomic, write_json_atomic

FORMAT = "truthtrace.features"
VERSIONS = (1,)
TENSORS_FILE = "features.safetensors"
INDEX_FILE = "features.json"
REQUIRED_TENSORS = ("hidden_last", "mean_logprob", "max_entropy")

Batch = dict[str, Any]


@dataclass
class Features:
    """Per-trace features of one model, optionally joined with labels.

    ``layers[j]`` is the model hidden-layer index stored at ``hidden_last[:, j]``.
    ``labels`` is ``(N,)`` int64 (1 = hallucinated) once joined, else ``None``.
    """

    hidden_last: np.ndarray  # (N, L+1, d) float16
    mean_logprob: np.ndarray  # (N,) float32
    max_entropy: np.ndarray  # (N,) float32
    trace_ids: list[str]
    question_ids: list[str]
    layers: list[int]
    model: str = ""
    position: str = "last_answer"
    labels: np.ndarray | None = None  # (N,) int64

    @property
    def n(self) -> int:
        return len(self.trace_ids)

    def subset(self, indices: np.ndarray) -> "Features":
        """Return the traces at ``indices`` (any integer array) as a new ``Features``."""
        idx = np.asarray(indices, dtype=np.int64)
        return replace(
            self,
            hidden_last=self.hidden_last[idx],
            mean_logprob=self.mean_logprob[idx],
            max_entropy=self.max_entropy[idx],
            trace_ids=[self.trace_ids[i] for i in idx],
            question_ids=[self.question_ids[i] for i in idx],
            labels=None if self.labels is None else self.labels[idx],
        )


# ---------------------------------------------------------------- feature file


def write_features(out_dir: str | Path, features: Features, extra: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``features`` (labels are not stored) to ``out_dir``; the index goes last.

    Args:
        out_dir: feature dir, created if missing; existing feature files are replaced.
        features: arrays and ids; ``hidden_last`` is stored as float16.
        extra: optional additional tensors, each with N rows.
    Returns:
        ``out_dir`` as a Path.
    Raises:
        ValueError: if the arrays and ids disagree on N or on the number of layers.
    """
    out = Path(out_dir)
    tensors = {
        "hidden_last": np.asarray(features.hidden_last, dtype=np.float16),
        "mean_logprob": np.asarray(features.mean_logprob, dtype=np.float32),
        "max_entropy": np.asarray(features.max_entropy, dtype=np.float32),
        **(extra or {}),
    }
    index = {
        "format": FORMAT,
        "version": VERSIONS[-1],
        "trace_ids": [str(t) for t in features.trace_ids],
        "question_ids": [str(q) for q in features.question_ids],
        "layers": [int(i) for i in features.layers],
        "model": features.model,
        "position": features.position,
    }
    _check(tensors, index, out / INDEX_FILE)
    (out / INDEX_FILE).unlink(missing_ok=True)  # no stale index over new tensors mid-write
    save_tensors_atomic(out / TENSORS_FILE, tensors)
    write_json_atomic(out / INDEX_FILE, index)
    return out


def _check(tensors: dict[str, np.ndarray], index: dict, where: Path) -> None:
    """Raise ValueError naming ``where`` and the field if tensors and index disagree."""
    if index.get("format") != FORMAT:
        raise ValueError(f"{where}: field 'format' must be {FORMAT!r}, got {index.get('format')!r}")
    if index.get("version") not in VERSIONS:
        raise ValueError(f"{where}: field 'version' must be one of {VERSIONS}, got {index.get('version')!r}")
    n, n_layers = _check_tensors(tensors, where)
    for field in ("trace_ids", "question_ids"):
        ids = index.get(field)
        if not isinstance(ids, list) or len(ids) != n:
            got = f"{len(ids)} entries" if isinstance(ids, list) else repr(ids)
            raise ValueError(f"{where}: field {field!r} must list {n} ids (rows of hidden_last), got {got}")
    if len(set(index["trace_ids"])) != n:
        raise ValueError(f"{where}: field 'trace_ids' has duplicate ids")
    layers = index.get("layers")
    if not isinstance(layers, list) or len(layers) != n_layers:
        raise ValueError(f"{where}: field 'layers' must list {n_layers} layer indices (axis 1 of hidden_last)")


def _check_tensors(tensors: dict[str, np.ndarray], where: Path) -> tuple[int, int]:
    """Check required tensors and their shapes; return ``(N, L+1)``."""
    for name in REQUIRED_TENSORS:
        if name not in tensors:
            raise ValueError(f"{where}: field {name!r} is missing from {TENSORS_FILE}")
    hidden = tensors["hidden_last"]
    if hidden.ndim != 3:
        raise ValueError(f"{where}: field 'hidden_last' must be (N, L+1, d), got shape {hidden.shape}")
    n = hidden.shape[0]
    for name in ("mean_logprob", "max_entropy"):
        if tensors[name].shape != (n,):
            raise ValueError(f"{where}: field {name!r} must have shape ({n},), got {tensors[name].shape}")
    return n, hidden.shape[1]


def read_features(features_dir: str | Path) -> Features:
    """Read and validate a feature dir written by :func:`write_features`.

    Raises:
        FileNotFoundError: if ``features.json`` or ``features.safetensors`` is missing.
        ValueError: naming the file and field, if the index is malformed or disagrees
            with the tensor shapes.
    """
    d = Path(features_dir)
    index_path = d / INDEX_FILE
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{index_path}: not valid JSON ({e})") from e
    if not isinstance(index, dict):
        raise ValueError(f"{index_path}: field 'format' missing, file is not a JSON object")
    tensors = load_file(str(d / TENSORS_FILE))
    _check(tensors, index, index_path)
    return Features(
        hidden_last=tensors["hidden_last"],
        mean_logprob=tensors["mean_logprob"].astype(np.float32),
        max_entropy=tensors["max_entropy"].astype(np.float32),
        trace_ids=[str(t) for t in index["trace_ids"]],
        question_ids=[str(q) for q in index["question_ids"]],
        layers=[int(i) for i in index["layers"]],
        model=str(index.get("model", "")),
        position=str(index.get("position", "last_answer")),
    )


# ---------------------------------------------------------------- labels


def read_label_csv(path: str | Path) -> dict[str, int]:
    """Return ``{trace_id: hallucinated}`` from a labels CSV; blank labels are skipped.

    Raises:
        ValueError: naming the file and field for a missing column, a duplicate
            ``trace_id`` or a ``hallucinated`` value other than 0/1.
    """
    out: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for col in ("trace_id", "hallucinated"):
            if col not in (reader.fieldnames or []):
                raise ValueError(f"{path}: field {col!r} missing from the header")
        for line, row in enumerate(reader, start=2):
            tid, value = row["trace_id"], (row["hallucinated"] or "").strip()
            if value == "":
                continue
            if value not in ("0", "1"):
                raise ValueError(f"{path}:{line}: field 'hallucinated' must be 0 or 1, got {value!r}")
            if tid in out:
                raise ValueError(f"{path}:{line}: field 'trace_id' {tid!r} is duplicated")
            out[tid] = int(value)
    return out


def join_labels(features: Features, labels: dict[str, int]) -> Features:
    """Keep the labelled traces of ``features`` and attach their labels.

    Traces without a label are dropped with a warning giving the count; labels
    without features are ignored.
    """
    keep = np.array([i for i, t in enumerate(features.trace_ids) if t in labels], dtype=np.int64)
    dropped = features.n - len(keep)
    if dropped:
        warnings.warn(f"{dropped} of {features.n} traces have no label and were dropped", stacklevel=2)
    out = features.subset(keep)
    out.labels = np.array([labels[t] for t in out.trace_ids], dtype=np.int64)
    return out


def load_labeled(features_dir: str | Path, labels_csv: str | Path) -> Features:
    """Read a feature dir and join it with its labels CSV (see :func:`join_labels`)."""
    return join_labels(read_features(features_dir), read_label_csv(labels_csv))


# ---------------------------------------------------------------- batches


def iter_batches(features: Features, indices: np.ndarray, batch_size: int = 256) -> Iterator[Batch]:
    """Yield batches of the traces at ``indices``, in that order.

    Each batch has ``hidden_last`` ``(B, L+1, d)`` float32, ``mean_logprob`` and
    ``max_entropy`` ``(B,)`` float32, ``label`` ``(B,)`` int64 (only if labels are
    joined), ``trace_id`` (list of B str) and ``layer_ids`` ``(L+1,)`` int64, the model
    layer stored at each position of axis 1.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    idx = np.asarray(indices, dtype=np.int64)
    layer_ids = np.asarray(features.layers, dtype=np.int64)
    for start in range(0, len(idx), batch_size):
        b = idx[start : start + batch_size]
        batch: Batch = {
            "hidden_last": features.hidden_last[b].astype(np.float32),
            "mean_logprob": features.mean_logprob[b],
            "max_entropy": features.max_entropy[b],
            "trace_id": [features.trace_ids[i] for i in b],
            "layer_ids": layer_ids,
        }
        if features.labels is not None:
            batch["label"] = features.labels[b]
        yield batch
