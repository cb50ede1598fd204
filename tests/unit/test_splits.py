"""Question-grouped splits: disjoint, complete, deterministic, validated."""

import numpy as np
import pytest

from truthtrace.features.splits import SPLITS, split_by_question


def _qids(n_questions=40, per_question=3):
    return [f"q{i}" for i in range(n_questions) for _ in range(per_question)]


def test_no_question_in_two_splits_and_all_traces_covered():
    qids = _qids()
    split = split_by_question(qids, seed=1)
    seen = [set(qids[i] for i in split[name]) for name in SPLITS]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    all_idx = np.sort(np.concatenate([split[name] for name in SPLITS]))
    np.testing.assert_array_equal(all_idx, np.arange(len(qids)))


def test_fraction_of_questions():
    split = split_by_question(_qids(100, 2), fractions=(0.7, 0.15, 0.15))
    assert [len(split[s]) // 2 for s in SPLITS] == [70, 15, 15]


def test_deterministic_and_seed_dependent_and_order_free():
    qids = _qids()
    a = split_by_question(qids, seed=3)
    b = split_by_question(qids, seed=3)
    c = split_by_question(qids, seed=4)
    for s in SPLITS:
        np.testing.assert_array_equal(a[s], b[s])
    assert any(not np.array_equal(a[s], c[s]) for s in SPLITS)
    # shuffling trace order does not change which questions go where
    perm = np.random.default_rng(0).permutation(len(qids))
    d = split_by_question([qids[i] for i in perm], seed=3)
    assert {qids[perm[i]] for i in d["test"]} == {qids[i] for i in a["test"]}


def test_small_dataset_keeps_every_split_nonempty():
    split = split_by_question(["a", "b", "c"], fractions=(0.8, 0.1, 0.1))
    assert all(len(split[s]) == 1 for s in SPLITS)


def test_zero_fraction_split_is_empty():
    split = split_by_question(_qids(10, 1), fractions=(0.8, 0.2, 0.0))
    assert len(split["test"]) == 0 and len(split["train"]) == 8


@pytest.mark.parametrize(
    "fractions, match",
    [((0.5, 0.5), "3 entries"), ((0.7, 0.2, 0.2), "sum to 1"), ((1.2, -0.1, -0.1), ">= 0"), ((0.0, 0.5, 0.5), "train")],
)
def test_bad_fractions_raise(fractions, match):
    with pytest.raises(ValueError, match=match):
        split_by_question(_qids(), fractions=fractions)


def test_empty_question_ids_raise():
    with pytest.raises(ValueError, match="empty"):
        split_by_question([])


def test_stratified_split_puts_both_classes_in_every_split():
    qids = [f"q{i}" for i in range(16)]
    labels = [1] * 12 + [0] * 4  # few correct answers, as with a small model
    for seed in range(20):
        split = split_by_question(qids, seed=seed, strata=labels)
        for name, idx in split.items():
            assert set(np.asarray(labels)[idx]) == {0, 1}, (seed, name)
        assert sorted(np.concatenate(list(split.values())).tolist()) == list(range(16))


def test_stratified_split_keeps_questions_together():
    qids = ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"]
    split = split_by_question(qids, seed=3, strata=[1, 0] * 5)
    seen = {}
    for name, idx in split.items():
        for i in idx:
            assert seen.setdefault(qids[i], name) == name
