"""Train/val/test splits grouped by question, and the one reader and writer of ``split.json``.

Several traces (samples) can answer the same question; a detector that saw one of
them in training would be graded on a near-copy. Splitting unique question ids
instead of traces rules that out.

The split depends only on the question ids and the seed, never on labels: each question is
ranked by a seeded hash of its id and the ranking is cut by the fractions. A changed answer
(or label rule) therefore cannot move any question to another split, and adding a question
moves at most the questions at the cut points. The label balance of each split is reported
instead (``preprocess`` summary, ``report.json``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from truthtrace.fileio import read_versioned_json, write_json_atomic

SPLITS = ("train", "val", "test")
SPLIT_FILE = "split.json"
SPLIT_FORMAT = "truthtrace.split"
SPLIT_VERSION = 2  # 2: ranked by a seeded hash of the question id (1: a seeded permutation, label-stratified)
SPLIT_VERSIONS = (1, 2)
SPLIT_METHOD = "question-hash"


def check_fractions(fractions: Sequence[float], field: str = "fractions") -> tuple[float, float, float]:
    """Return ``fractions`` as a float triple (train, val, test).

    Raises:
        ValueError: naming ``field`` unless there are three non-negative fractions
            summing to 1 with a positive train fraction.
    """
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3:
        raise ValueError(f"{field} must have 3 entries (train, val, test), got {len(fr)}")
    if any(not np.isfinite(f) or f < 0 for f in fr):
        raise ValueError(f"{field} must be finite and >= 0, got {fr}")
    if abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(f"{field} must sum to 1, got {sum(fr):.6g}")
    if fr[0] == 0:
        raise ValueError(f"{field}: the train fraction must be > 0")
    return fr  # type: ignore[return-value]


def _counts(n_unique: int, fractions: tuple[float, float, float]) -> list[int]:
    """Questions per split: rounded cumulative shares, at least one per positive fraction."""
    bounds = np.round(np.cumsum(fractions) * n_unique).astype(int)
    counts = np.diff(np.concatenate([[0], bounds])).tolist()
    counts[-1] = n_unique - sum(counts[:-1])
    # Small datasets: borrow a question from the largest split so no wanted split is empty.
    for i, f in enumerate(fractions):
        if f > 0 and counts[i] == 0 and n_unique >= sum(1 for g in fractions if g > 0):
            counts[int(np.argmax(counts))] -= 1
            counts[i] = 1
    return counts


def question_rank_key(question_id: str, seed: int) -> bytes:
    """The sort key of one question: sha256 of ``"<seed>:<question id>"`` (depends on nothing else)."""
    return hashlib.sha256(f"{seed}:{question_id}".encode("utf-8")).digest()


def _assign(qids: Sequence[str], fr: tuple[float, float, float], seed: int) -> np.ndarray:
    """Split number of each question id: the ids ranked by :func:`question_rank_key`, cut by ``fr``."""
    n = len(qids)
    order = np.asarray(sorted(range(n), key=lambda i: question_rank_key(qids[i], seed)), dtype=np.int64)
    which = np.empty(n, dtype=np.int64)
    start = 0
    for k, count in enumerate(_counts(n, fr)):
        which[order[start : start + count]] = k
        start += count
    return which


def split_by_question(
    question_ids: Sequence[str],
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    strata: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """Split traces into train/val/test so that each question falls in exactly one split.

    Unique question ids are ranked by a seeded hash of the id (:func:`question_rank_key`) and
    cut by ``fractions``; the result depends only on the set of ids and the seed, and a
    question's rank on nothing but its own id. With ``strata`` (a group of each trace, e.g. a
    category), questions are cut stratum by stratum. The stages pass no strata: labels must
    not decide the split (see the module docstring).

    Args:
        question_ids: question id of each trace, length N.
        fractions: shares of unique questions for (train, val, test).
        seed: permutation seed.
        strata: optional ``(N,)`` stratum of each trace; a question takes its first trace's.
    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, each a sorted int64 array of trace
        indices into ``question_ids``; together they cover ``range(N)`` exactly once.
    Raises:
        ValueError: for bad ``fractions``, an empty ``question_ids`` or mismatched ``strata``.
    """
    fr = check_fractions(fractions)
    qids = np.asarray([str(q) for q in question_ids])
    if len(qids) == 0:
        raise ValueError("question_ids is empty")
    unique, first = np.unique(qids, return_index=True)  # sorted, so input order does not matter
    if strata is not None and len(strata) != len(qids):
        raise ValueError(f"strata has {len(strata)} entries but question_ids has {len(qids)}")
    q_strata = np.zeros(len(unique), dtype=np.int64) if strata is None else np.asarray(strata)[first]
    which = np.empty(len(unique), dtype=np.int64)  # split number of each unique question
    for value in np.unique(q_strata):
        members = np.flatnonzero(q_strata == value)
        which[members] = _assign([str(q) for q in unique[members]], fr, seed)
    trace_split = which[np.searchsorted(unique, qids)]  # (N,)
    return {name: np.flatnonzero(trace_split == k).astype(np.int64) for k, name in enumerate(SPLITS)}


def make_split(trace_ids: Sequence[str], question_ids: Sequence[str], fractions: Sequence[float],
               seed: int) -> dict:
    """The ``split.json`` document: trace ids per split, split by question id (:func:`split_by_question`).

    Args:
        trace_ids: ``(N,)`` trace ids, in store order.
        question_ids: ``(N,)`` the question each trace answers.
        fractions, seed: as in :func:`split_by_question`.
    """
    parts = split_by_question(question_ids, fractions, seed)
    return {"format": SPLIT_FORMAT, "version": SPLIT_VERSION, "method": SPLIT_METHOD, "seed": seed,
            "fractions": list(check_fractions(fractions)),
            **{name: [str(trace_ids[i]) for i in parts[name]] for name in SPLITS}}


def write_split(directory: str | Path, doc: dict, **extra) -> Path:
    """Write ``doc`` (plus ``extra`` fields, e.g. ``features_dir``) as ``directory/split.json``, atomically."""
    path = Path(directory) / SPLIT_FILE
    write_json_atomic(path, {**doc, **extra})
    return path


def read_split(directory: str | Path) -> dict:
    """Read and check ``directory/split.json``.

    Returns:
        the document; each of ``train``, ``val``, ``test`` is a list of trace ids.
    Raises:
        FileNotFoundError: no ``split.json`` (names the command that writes it).
        ValueError: naming the file and field: another format or version, a split that is not a
            list of ids, or a trace id in two splits.
    """
    path = Path(directory) / SPLIT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no split file; run `truthtrace preprocess` to write it")
    doc = read_versioned_json(path, SPLIT_FORMAT, SPLIT_VERSIONS)
    seen: dict[str, str] = {}
    for name in SPLITS:
        ids = doc.get(name)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"{path}: field {name!r} must be a list of trace ids")
        for tid in ids:
            if tid in seen:
                raise ValueError(f"{path}: trace {tid!r} is in both {seen[tid]!r} and {name!r}")
            seen[tid] = name
    return doc


def split_balance(doc: dict, labels: dict[str, int]) -> dict:
    """``{"n": {split: labelled traces}, "hallucination_rate": {split: rate or None}}`` of a split document."""
    n, rate = {}, {}
    for name in SPLITS:
        ys = [labels[t] for t in doc[name] if t in labels]
        n[name], rate[name] = len(ys), round(float(np.mean(ys)), 3) if ys else None
    return {"n": n, "hallucination_rate": rate}


def group_split(trace_ids: Sequence[str], question_ids: Sequence[str], groups: Sequence[str],
                train_groups: Sequence[str], test_groups: Sequence[str], val_fraction: float = 0.15,
                test_fraction_in_train: float = 0.0, seed: int = 0) -> dict:
    """A ``split.json`` document for out-of-distribution tests: train and val from some groups, test from others.

    Questions of ``train_groups`` are cut by question hash (:func:`split_by_question`) into train / val /
    an optional held-in test share; every trace of ``test_groups`` goes to test. Leave-one-category-out is
    ``train_groups`` = all but one, ``test_groups`` = that one; a transfer matrix row trains on one category
    and tests on its own held-in share and on every other category.

    Args:
        trace_ids, question_ids, groups: ``(N,)`` per trace: its id, question and group (e.g. category).
        train_groups, test_groups: group names (a group may be in both only with ``test_fraction_in_train``).
        val_fraction: share of the train groups' questions used for validation.
        test_fraction_in_train: share of the train groups' questions tested too (the transfer diagonal).
        seed: the question-hash seed.
    Raises:
        ValueError: mismatched lengths, unknown groups, an empty train or test side.
    """
    if not len(trace_ids) == len(question_ids) == len(groups):
        raise ValueError(f"trace_ids, question_ids and groups differ in length: {len(trace_ids)}, "
                         f"{len(question_ids)}, {len(groups)}")
    known = set(map(str, groups))
    unknown = sorted((set(map(str, train_groups)) | set(map(str, test_groups))) - known)
    if unknown:
        raise ValueError(f"groups {unknown} have no traces; known: {sorted(known)}")
    fr = check_fractions((1 - val_fraction - test_fraction_in_train, val_fraction, test_fraction_in_train),
                         "val_fraction/test_fraction_in_train")
    train_set, test_set = set(map(str, train_groups)), set(map(str, test_groups))
    inside = [i for i, g in enumerate(groups) if str(g) in train_set]
    if not inside:
        raise ValueError("train_groups hold no traces")
    parts = split_by_question([question_ids[i] for i in inside], fr, seed)
    out = {name: [str(trace_ids[inside[j]]) for j in parts[name]] for name in SPLITS}
    out["test"] += [str(t) for t, g in zip(trace_ids, groups) if str(g) in test_set - train_set]
    if not out["test"]:
        raise ValueError("test_groups hold no traces")
    return {"format": SPLIT_FORMAT, "version": SPLIT_VERSION, "method": "group", "seed": seed, "fractions": list(fr),
            "train_groups": sorted(train_set), "test_groups": sorted(test_set), **out}
