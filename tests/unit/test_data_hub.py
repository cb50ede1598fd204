"""--questions hf:DATASET[:CONFIG][:SPLIT]: local save_to_disk and parquet folders through the datasets code path."""

from __future__ import annotations

import argparse

import pytest

datasets = pytest.importorskip("datasets")

from truthtrace.cli.args import add_question_args, questions_from  # noqa: E402
from truthtrace.data.hub import HubSpec, hub_format, load_hub_questions  # noqa: E402


def _triviaqa(n=5):
    return [{"question": f"Q{i}?", "question_id": f"tq{i}",
             "answer": {"value": f"A{i}", "aliases": [f"a{i}", f"A{i}"]}} for i in range(n)]


def _squad(n=6):
    return [{"id": f"s{i}", "title": "t", "context": f"ctx {i}", "question": f"Q{i}?",
             "answers": {"text": ["x"] if i % 2 else [], "answer_start": [0] if i % 2 else []}} for i in range(n)]


def _truthfulqa():
    return [{"type": "Adversarial", "category": "Misconceptions", "question": "Q?", "best_answer": "Best",
             "correct_answers": ["Best", "Also"], "incorrect_answers": ["No"], "source": "s"}]


def _save(tmp_path, name, rows):
    path = tmp_path / name
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


def _parquet(tmp_path, name, splits):
    folder = tmp_path / name
    folder.mkdir()
    for split, rows in splits.items():
        datasets.Dataset.from_list(rows).to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
    return folder


def test_spec_parsing():
    assert HubSpec.parse("hf:nq_open") == HubSpec("nq_open")
    assert HubSpec.parse("hf:nq_open:validation") == HubSpec("nq_open", None, "validation")
    assert HubSpec.parse("hf:trivia_qa:rc.nocontext") == HubSpec("trivia_qa", "rc.nocontext")
    assert HubSpec.parse("hf:trivia_qa:rc.nocontext:validation[:10]") == \
        HubSpec("trivia_qa", "rc.nocontext", "validation[:10]")
    assert HubSpec.parse("hf:squad:train[:5]").split == "train[:5]"
    for bad in ("nq_open", "hf:", "hf:a::b", "hf:a:b:c:d"):
        with pytest.raises(ValueError, match="hf:DATASET"):
            HubSpec.parse(bad)


def test_layouts_recognised():
    assert hub_format(_triviaqa()[0]) == "triviaqa"
    assert hub_format(_squad()[0]) == "squad"
    assert hub_format(_truthfulqa()[0]) == "truthfulqa"
    assert hub_format({"question": "q", "answer": ["a"]}) == "nq_open"
    assert hub_format({"question": "q", "answers": ["a"]}) == "generic"


def test_save_to_disk_triviaqa(tmp_path):
    path = _save(tmp_path, "tq", _triviaqa())
    qs = load_hub_questions(f"hf:{path}")
    assert [q.id for q in qs] == [f"tq{i}" for i in range(5)]
    assert qs[0].answers == ("A0", "a0") and qs[0].category == "triviaqa"
    assert load_hub_questions(f"hf:{path}", streaming=True) == qs
    assert load_hub_questions(f"hf:{path}", limit=2, streaming=True) == qs[:2]


def test_parquet_squad_nq_and_split_choice(tmp_path):
    folder = _parquet(tmp_path, "sq", {"train": _squad(4), "validation": _squad(6)})
    cache = str(tmp_path / "cache")
    with pytest.raises(ValueError, match=r"splits \['train', 'validation'\]; name one"):
        load_hub_questions(f"hf:{folder}", cache_dir=cache)
    qs = load_hub_questions(f"hf:{folder}:validation", cache_dir=cache)
    assert [q.id for q in qs] == ["s1", "s3", "s5"]  # unanswerable (v2) rows skipped
    assert qs[0].context == "ctx 1"
    assert load_hub_questions(f"hf:{folder}:validation", streaming=True) == qs
    with pytest.raises(ValueError, match="sq:test: .*split"):
        load_hub_questions(f"hf:{folder}:test", streaming=True)
    nq = _parquet(tmp_path, "nq", {"validation": [{"question": f"q{i}", "answer": [f"a{i}", "b"]} for i in range(3)]})
    qs = load_hub_questions(f"hf:{nq}", streaming=True)
    one_file = next(nq.glob("*.parquet"))
    assert load_hub_questions(f"hf:{one_file}", streaming=True) == qs  # a single parquet file
    assert [q.id for q in qs] == ["nq_open-00001", "nq_open-00002", "nq_open-00003"]
    assert qs[2].answers == ("a2", "b")


def test_truthfulqa_and_generic(tmp_path):
    qs = load_hub_questions(f"hf:{_save(tmp_path, 'tf', _truthfulqa())}")
    assert qs[0].answers == ("Best", "Also") and qs[0].category == "Misconceptions"
    rows = [{"prompt": "p?", "answers": ["x"], "qid": "g1"}]
    qs = load_hub_questions(f"hf:{_save(tmp_path, 'g', rows)}")
    assert (qs[0].id, qs[0].question, qs[0].answers) == ("g1", "p?", ("x",))


def test_bad_row_names_the_row_and_field(tmp_path):
    rows = _triviaqa(3)
    rows[2]["question"] = ""
    path = _save(tmp_path, "bad", rows)
    with pytest.raises(ValueError, match=r"row 3: missing field 'question'"):
        load_hub_questions(f"hf:{path}")
    with pytest.raises(ValueError, match="--format for a Hub dataset"):
        load_hub_questions(f"hf:{path}", fmt="xml")


def test_cli_questions_from(tmp_path):
    path = _save(tmp_path, "tq", _triviaqa())
    p = argparse.ArgumentParser()
    add_question_args(p)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(["--questions", f"hf:{path}", "--n", "3", "--streaming"])
    assert [q.id for q in questions_from(args)] == ["tq0", "tq1", "tq2"]
