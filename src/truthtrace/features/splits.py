"""Train/val/test splits grouped by question, so no question leaks across splits.

Several traces (samples) can answer the same question; a detector that saw one of
them in training would be graded on a near-copy. Splitting unique question ids
instead of traces rules that out.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

SPLITS = ("train", "val", "test")


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


def _assign(n: int, fr: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Split number of each of ``n`` items: a seeded permutation cut by ``fr``."""
    order = rng.permutation(n)
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

    Unique question ids are sorted, shuffled by a permutation seeded with ``seed`` and
    cut by ``fractions``; the result depends only on the set of ids and the seed. With
    ``strata`` (e.g. the hallucination label of each trace), questions are cut stratum by
    stratum, so every split gets both classes whenever each class has enough questions.

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
    rng = np.random.default_rng(seed)
    which = np.empty(len(unique), dtype=np.int64)  # split number of each unique question
    for value in np.unique(q_strata):
        members = np.flatnonzero(q_strata == value)
        which[members] = _assign(len(members), fr, rng)
    trace_split = which[np.searchsorted(unique, qids)]  # (N,)
    return {name: np.flatnonzero(trace_split == k).astype(np.int64) for k, name in enumerate(SPLITS)}
