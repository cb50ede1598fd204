"""Scoring rules and the label stage on hand-computed cases."""

from __future__ import annotations

import os

import pytest

from truthtrace.labels.score import LabelConfig, answer_span, label_metas, label_store, normalize, score_answer
from truthtrace.labels.io import COLUMNS, read_labels, write_labels


@pytest.mark.parametrize("text, expected", [
    ("The Eiffel Tower!", "eiffel tower"),
    ("Brasília", "brasilia"),
    ("São Paulo", "sao paulo"),
    ("U.S.A.", "usa"),
    ("Sana'a", "sanaa"),
    ("1,000,000 people", "1000000 people"),
    ("approximately 100.0 degrees", "approximately 100 degrees"),
    ("pi is 3.14", "pi is 3.14"),
    ("Rio-de-Janeiro", "rio de janeiro"),
    ("  An   apple,  a pear  ", "apple pear"),
    ("", ""),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_exact_answer_scores_one_everywhere():
    assert score_answer("Paris", ["Paris"]) == {"exact_match": 1, "contains": 1, "f1": 1.0,
                                               "rougeL": 1.0}


def test_sentence_answer_contains_alias():
    # tokens "capital of france is paris" (5) vs "paris" (1): P = 1/5, R = 1 -> F = 1/3
    s = score_answer("The capital of France is Paris.", ["Paris"])
    assert (s["exact_match"], s["contains"]) == (0, 1)
    assert s["f1"] == pytest.approx(1 / 3)
    assert s["rougeL"] == pytest.approx(1 / 3)


def test_contains_respects_token_boundaries():
    s = score_answer("Paris", ["Ra"])
    assert s == {"exact_match": 0, "contains": 0, "f1": 0.0, "rougeL": 0.0}
    assert score_answer("Jacksonville", ["Jackson"])["contains"] == 0
    assert score_answer("It is Jackson, Mississippi", ["Jackson"])["contains"] == 1


def test_partial_overlap_f1_and_rouge():
    # pred "new york city" vs "new york": overlap 2, P = 2/3, R = 1 -> 0.8
    s = score_answer("New York City", ["New York"])
    assert (s["exact_match"], s["contains"]) == (0, 1)
    assert s["f1"] == pytest.approx(0.8)
    assert s["rougeL"] == pytest.approx(0.8)


def test_rouge_uses_order_but_f1_does_not():
    s = score_answer("York New", ["New York"])
    assert s["f1"] == pytest.approx(1.0)       # same bag of tokens
    assert s["rougeL"] == pytest.approx(0.5)   # LCS 1 of 2
    assert s["contains"] == 0


def test_rouge_with_gaps():
    # LCS(john fitzgerald kennedy was president, john f kennedy) = 2: P = 2/5, R = 2/3 -> 0.5
    s = score_answer("John Fitzgerald Kennedy was president", ["John F. Kennedy"])
    assert s["rougeL"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(0.5)
    assert s["contains"] == 0


def test_best_alias_wins_per_metric():
    s = score_answer("the United States of America", ["USA", "United States"])
    assert s["contains"] == 1 and s["exact_match"] == 0
    assert s["f1"] == pytest.approx(2 / 3)  # overlap 2: P = 2/4, R = 1
    assert score_answer("USA", ["United States", "USA"])["exact_match"] == 1


@pytest.mark.parametrize("pred, alias", [
    ("four", "4"), ("4", "four"), ("Twenty-five", "25"), ("It has 8 legs.", "eight"),
    ("Bogotá", "Bogota"), ("1,000", "1000"), ("100.0", "100"),
])
def test_numbers_and_accents_match(pred, alias):
    assert score_answer(pred, [alias])["contains"] == 1


def test_twenty_five_is_not_twenty():
    assert score_answer("twenty-five", ["20"])["contains"] == 0


def test_empty_prediction_scores_zero():
    assert score_answer("", ["Paris"]) == {"exact_match": 0, "contains": 0, "f1": 0.0, "rougeL": 0.0}
    assert score_answer("...", ["Paris"])["f1"] == 0.0


def test_alias_that_normalizes_to_nothing_is_ignored():
    assert score_answer("the", ["The", "Paris"])["exact_match"] == 0


@pytest.mark.parametrize("aliases", [[], "Paris"])
def test_bad_aliases_raise(aliases):
    with pytest.raises(ValueError, match="aliases"):
        score_answer("Paris", aliases)


@pytest.mark.parametrize("generation, span, expected", [
    ("Paris.<|im_end|>\n<|im_start|>user", "sentence", "Paris."),
    ("The capital is Paris. It is also big.", "sentence", "The capital is Paris."),
    ("The capital is Paris. It is also big.", "line", "The capital is Paris. It is also big."),
    ("St. Louis hosted them. Later, Paris.", "sentence", "St. Louis hosted them."),
    ("J. K. Rowling wrote it.", "sentence", "J. K. Rowling wrote it."),
    ("Answer: Rome", "sentence", "Rome"),
    ("\n\nParis\nLondon", "sentence", "Paris"),
    ("\n\nParis\nLondon<|endoftext|>", "full", "Paris\nLondon"),
    ("<|im_end|>", "sentence", ""),
])
def test_answer_span(generation, span, expected):
    assert answer_span(generation, span) == expected


@pytest.mark.parametrize("rule, metric, threshold", [
    ("contains_or_exact", "contains_or_exact", 1.0), ("exact", "exact_match", 1.0),
    ("contains", "contains", 1.0), ("f1:0.5", "f1", 0.5), ("rougeL>=0.25", "rougeL", 0.25),
])
def test_label_config_parses_rules(rule, metric, threshold):
    config = LabelConfig(rule=rule)
    assert (config.metric, config.threshold) == (metric, threshold)


@pytest.mark.parametrize("kwargs, field", [
    ({"rule": "fuzzy"}, "rule"), ({"rule": "f1:1.5"}, "rule"), ({"rule": "bleu:0.5"}, "rule"),
    ({"span": "paragraph"}, "span"),
])
def test_label_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LabelConfig(**kwargs)


def test_threshold_rules():
    s = score_answer("New York City", ["New York"])  # f1 = 0.8
    assert LabelConfig("f1:0.8").is_correct(s)
    assert not LabelConfig("f1:0.9").is_correct(s)
    assert not LabelConfig("exact").is_correct(s)


def _metas():
    yield "t0", {"question_id": "geo-0001", "question": "Capital of France?", "answers": ["Paris"],
                 "category": "geography", "generation": "The capital of France is Paris.<|im_end|>"}
    yield "t1", {"question_id": "geo-0002", "question": "Capital of Peru?", "answers": ["Lima"],
                 "category": "geography", "generation": "Quito. Lima is in Peru."}
    yield "t2", {"question_id": "num-0001", "question": "2+2?", "answers": "4",
                 "category": "numbers", "generation": "four"}


def test_label_metas_rows():
    rows = label_metas(_metas(), LabelConfig())
    assert [r["correct"] for r in rows] == [1, 0, 1]
    assert [r["hallucinated"] for r in rows] == [0, 1, 0]
    assert rows[0]["generation"] == "The capital of France is Paris."
    assert rows[2]["answers"] == "4"
    assert set(rows[0]) == set(COLUMNS)


def test_full_span_credits_later_sentences():
    rows = label_metas(_metas(), LabelConfig(span="full"))
    assert rows[1]["correct"] == 1


def test_label_metas_errors():
    with pytest.raises(ValueError, match="'generation'"):
        label_metas([("t0", {"question_id": "q", "answers": ["a"]})], LabelConfig())
    with pytest.raises(ValueError, match="empty"):
        label_metas([("t0", {"question_id": "q", "answers": [], "generation": "x"})], LabelConfig())
    meta = {"question_id": "q", "answers": ["a"], "generation": "a"}
    with pytest.raises(ValueError, match="duplicate trace id 't0'"):
        label_metas([("t0", meta), ("t0", meta)], LabelConfig())


def test_category_defaults_to_unknown():
    rows = label_metas([("t", {"question_id": "q", "answers": ["a"], "generation": "a"})],
                       LabelConfig())
    assert rows[0]["category"] == "unknown"


def test_labels_csv_round_trip(tmp_path):
    rows = label_metas(_metas(), LabelConfig())
    rows[1]["generation"] = 'Quito, "maybe"\nsecond line'
    path = tmp_path / "labels.csv"
    write_labels(rows, path)
    back = read_labels(path)
    assert list(back) == ["t0", "t1", "t2"]
    assert back["t1"]["generation"] == rows[1]["generation"]
    assert back["t0"]["f1"] == pytest.approx(rows[0]["f1"], abs=1e-6)
    assert back["t2"]["correct"] == 1 and isinstance(back["t2"]["exact_match"], int)
    assert os.listdir(tmp_path) == ["labels.csv"]  # no temp file left behind


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


HEADER = ",".join(COLUMNS) + "\n"


def test_read_labels_rejects_bad_rows(tmp_path):
    good = "t0,q0,geo,1,1,1.0,1.0,1,0,Paris,Paris\n"
    with pytest.raises(ValueError, match=r"bad\.csv: line 3: column 'f1'"):
        read_labels(_write(tmp_path / "bad.csv", HEADER + good + "t1,q1,geo,1,1,high,1.0,1,0,x,x\n"))
    with pytest.raises(ValueError, match=r"line 3: duplicate trace_id 't0'"):
        read_labels(_write(tmp_path / "dup.csv", HEADER + good + good))
    with pytest.raises(ValueError, match="line 2: row has too few fields"):
        read_labels(_write(tmp_path / "short.csv", HEADER + "t0,q0,geo,1\n"))
    with pytest.raises(ValueError, match="missing columns"):
        read_labels(_write(tmp_path / "cols.csv", "trace_id,correct\nt0,1\n"))
    with pytest.raises(ValueError, match="opposite"):
        read_labels(_write(tmp_path / "flip.csv", HEADER + "t0,q0,geo,1,1,1.0,1.0,1,1,P,P\n"))


def test_label_store_with_injected_metas(tmp_path):
    out = tmp_path / "labels.csv"
    summary = label_store(tmp_path / "no-store", out, LabelConfig(), metas=lambda: _metas())
    assert (summary["n"], summary["correct"], summary["hallucinated"]) == (3, 2, 1)
    assert summary["rate_correct"] == pytest.approx(2 / 3)
    assert summary["per_category"]["geography"] == {"n": 2, "correct": 1, "hallucinated": 1,
                                                    "rate_correct": 0.5}
    assert summary["per_category"]["numbers"]["rate_correct"] == 1.0
    assert len(read_labels(out)) == 3


def test_label_store_accepts_plain_iterable(tmp_path):
    summary = label_store(tmp_path, tmp_path / "l.csv", LabelConfig("exact"), metas=list(_metas()))
    assert summary["correct"] == 1 and summary["rule"] == "exact"
