"""The Question record, the bundled set and the JSONL writer."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from truthtrace.data import Question, bundled_categories, load_bundled, load_questions, save_questions
from truthtrace.labels.score import normalize


def test_question_converts_list_and_round_trips():
    q = Question("q1", "Capital of France?", ["Paris"], "geography")
    assert q.answers == ("Paris",)
    assert Question.from_dict(q.to_dict()) == q
    assert "context" not in q.to_dict()
    assert Question.from_dict({**q.to_dict(), "context": "ctx"}).context == "ctx"


@pytest.mark.parametrize("kwargs, field", [
    ({"answers": ()}, "answers"), ({"answers": ("",)}, "answers"), ({"answers": "Paris"}, "answers"),
    ({"question": " "}, "question"), ({"id": ""}, "id"), ({"category": ""}, "category"),
])
def test_question_validation(kwargs, field):
    args = {"id": "q1", "question": "Q?", "answers": ("A",), "category": "c", **kwargs}
    with pytest.raises(ValueError, match=field):
        Question(**args)


def test_bundled_set_shape():
    qs = load_bundled()
    assert len(qs) >= 1000
    cats = Counter(q.category for q in qs)
    assert len(cats) >= 8 and min(cats.values()) >= 50
    assert len({q.id for q in qs}) == len(qs)
    assert len({q.question for q in qs}) == len(qs)
    assert all(re.fullmatch(r"[a-z]{3}-\d{4}", q.id) for q in qs)
    assert all(q.answers and all(normalize(a) for a in q.answers) for q in qs)
    assert bundled_categories() == sorted(cats)


def test_bundled_known_facts():
    by_question = {q.question: q for q in load_bundled()}
    assert "Paris" in by_question["What is the capital of France?"].answers
    assert "Au" in by_question["What is the chemical symbol for gold?"].answers
    assert set(by_question["How many legs does a spider have?"].answers) >= {"8", "eight"}


def test_bundled_answers_are_not_in_their_questions():
    for q in load_bundled():
        text = f" {normalize(q.question)} "
        assert not any(f" {normalize(a)} " in text for a in q.answers), q.id


def test_load_bundled_subset_is_deterministic_and_stratified():
    a, b = load_bundled(n=120, seed=0), load_bundled(n=120, seed=0)
    assert [q.id for q in a] == [q.id for q in b]
    assert len(a) == 120
    assert [q.id for q in load_bundled(n=120, seed=1)] != [q.id for q in a]
    full = Counter(q.category for q in load_bundled())
    got = Counter(q.category for q in a)
    assert set(got) == set(full)
    total = sum(full.values())
    for cat, k in got.items():
        assert abs(k - 120 * full[cat] / total) <= 1.5, cat


def test_load_bundled_keeps_file_order():
    ids = [q.id for q in load_bundled()]
    sub = [q.id for q in load_bundled(n=50, seed=3)]
    assert sub == sorted(sub, key=ids.index)


def test_load_bundled_small_n_and_categories():
    few = load_bundled(n=3, seed=0)
    assert len(few) == 3 and len({q.category for q in few}) == 3
    geo = load_bundled(categories=["geography", "science"])
    assert {q.category for q in geo} == {"geography", "science"}
    assert len(load_bundled(n=10, categories=["numbers"])) == 10


@pytest.mark.parametrize("kwargs, match", [
    ({"categories": ["astrology"]}, "unknown"), ({"n": 0}, "n must be"), ({"n": 10**6}, "n must be"),
])
def test_load_bundled_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_bundled(**kwargs)


def test_save_questions_round_trip(tmp_path):
    qs = [Question("a", "Q1?", ("x", "y"), "c1"), Question("b", "Q2?", ("Zürich",), "c2", "ctx")]
    path = tmp_path / "sub" / "qs.jsonl"
    save_questions(qs, path)
    assert load_questions(path) == qs
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[1])["answers"] == ["Zürich"]
    assert os.listdir(path.parent) == ["qs.jsonl"]


def test_save_questions_rejects_duplicates_and_keeps_old_file(tmp_path):
    path = tmp_path / "qs.jsonl"
    save_questions([Question("a", "Q?", ("x",), "c")], path)
    with pytest.raises(ValueError, match="duplicate question id 'a'"):
        save_questions([Question("a", "Q?", ("x",), "c")] * 2, path)
    assert len(load_questions(path)) == 1


def test_bundled_file_matches_generator():
    script = Path(__file__).resolve().parents[2] / "tools" / "make_questions.py"
    if not script.exists():
        pytest.skip("generator script not present")
    spec = importlib.util.spec_from_file_location("make_questions", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == load_bundled(), "re-run tools/make_questions.py"
