"""The label-rule table, labels under several rules from stored answers, ROUGE-L by hand, and the judge's plumbing
(a tiny random model: its verdicts mean nothing, only that they flow)."""

import numpy as np
import pytest

from truthtrace.labels import score as score_mod
from truthtrace.labels.judge import Judge, JudgeConfig
from truthtrace.labels.relabel import rule_labels
from truthtrace.labels.rules import LABEL_RULE_HELP, LABEL_RULES, parse_rule, parse_rules, verdict
from truthtrace.labels.score import LabelConfig, score_answer


def test_rule_table_parses_and_refuses():
    assert parse_rule("f1:0.5")[0] is LABEL_RULES["f1"] and parse_rule("rougeL>=0.25")[1] == 0.25
    assert parse_rule("exact") == (LABEL_RULES["exact"], 1.0) and parse_rule("judge")[0].needs_judge
    assert parse_rules("contains_or_exact, exact,f1:0.5,exact") == ("contains_or_exact", "exact", "f1:0.5")
    for bad in ("f1", "exact:0.5", "bleu:0.5", "rougeL:1.5", ""):
        with pytest.raises(ValueError, match="rule"):
            parse_rules(bad) if bad == "" else parse_rule(bad)
    assert all(name in LABEL_RULE_HELP for name in LABEL_RULES)
    with pytest.raises(ValueError, match="judge-model"):
        verdict("judge", {})
    with pytest.raises(ValueError, match="--judge-model"):
        LabelConfig(rule="judge")


def test_rouge_l_hand_worked():
    # pred "cat sat on mat" vs ref "cat is on mat": LCS "cat on mat" = 3; P = 3/4, R = 3/4 -> F = 0.75
    assert score_answer("cat sat on mat", ["cat is on mat"])["rougeL"] == pytest.approx(0.75)
    # pred "a b c d e" (articles dropped: "b c d e") ... use plain letters that are not articles
    # pred "x y z w" vs ref "y w": LCS "y w" = 2; P = 2/4, R = 2/2 -> F = 2 * 0.5 * 1 / 1.5 = 2/3
    assert score_answer("x y z w", ["y w"])["rougeL"] == pytest.approx(2 / 3)
    # order matters for ROUGE-L but not for F1: "w y" vs "y w": LCS 1 -> 0.5; F1 = 1
    s = score_answer("w y", ["y w"])
    assert s["rougeL"] == pytest.approx(0.5) and s["f1"] == pytest.approx(1.0)
    assert score_mod._lcs(list("ABCBDAB"), list("BDCABA")) == 4  # CLRS's worked example


def _rows():
    rows = {
        "t0": ("The capital is Paris.", "Paris"),              # "capital is paris": contains; F1 = ROUGE-L = 0.5
        "t1": ("Paris", "Paris|City of Paris"),                # exact
        "t2": ("Lyon", "Paris"),                               # wrong under every rule
        "t3": ("New York City", "New York"),                   # f1 0.8, rougeL 0.8, contains
    }
    return {t: {"trace_id": t, "generation": g, "answers": a} for t, (g, a) in rows.items()}


def test_rule_labels_recompute_each_rule_from_stored_answers():
    out = rule_labels(_rows(), "contains_or_exact,exact,f1:0.5,f1:0.6,rougeL:0.9")
    assert out["contains_or_exact"] == {"t0": 0, "t1": 0, "t2": 1, "t3": 0}
    assert out["exact"] == {"t0": 1, "t1": 0, "t2": 1, "t3": 1}
    # t0: P = 1/3, R = 1 -> F1 = 0.5 exactly: correct at t = 0.5, hallucinated at 0.6
    assert out["f1:0.5"] == {"t0": 0, "t1": 0, "t2": 1, "t3": 0}
    assert out["f1:0.6"] == {"t0": 1, "t1": 0, "t2": 1, "t3": 0}
    assert out["rougeL:0.9"] == {"t0": 1, "t1": 0, "t2": 1, "t3": 1}
    with pytest.raises(ValueError, match="judge-model"):
        rule_labels(_rows(), "judge")
    with pytest.raises(ValueError, match="answers"):
        rule_labels({"t9": {"trace_id": "t9", "generation": "x", "answers": ""}}, "exact")


def test_judge_plumbing_on_a_tiny_random_model(tiny_model, tiny_tokenizer, tmp_path):
    judge = Judge(JudgeConfig(model="tiny", batch_size=3), tiny_model, tiny_tokenizer)
    assert "Reference answers: Paris; City of Paris" in judge.prompt("Paris", ["Paris", "City of Paris"])
    p = judge.p_correct(["Paris", "Lyon", "", "New York City"], [["Paris"], ["Paris"], ["Paris"], ["New York"]])
    assert p.shape == (4,) and np.all((p > 0) & (p < 1))
    again = judge.p_correct(["Lyon"], [["Paris"]])  # batch composition does not change a verdict
    assert again[0] == pytest.approx(p[1], abs=1e-5)
    out = rule_labels(_rows(), "exact,judge", judge=judge)
    assert set(out["judge"]) == set(_rows()) and set(out["judge"].values()) <= {0, 1}
    # from a local directory, as --judge-model DIR loads it
    tiny_model.save_pretrained(tmp_path / "judge")
    tiny_tokenizer.save_pretrained(tmp_path / "judge")
    loaded = Judge(JudgeConfig(model=str(tmp_path / "judge"), batch_size=4))
    assert loaded.p_correct(["Lyon"], [["Paris"]])[0] == pytest.approx(p[1], abs=1e-5)
    with pytest.raises(ValueError, match="model"):
        JudgeConfig(model="")
