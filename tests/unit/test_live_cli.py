"""truthtrace ask / score / cache on detectors trained on a tiny random model (the model passed in memory)."""

import csv
import json

import pytest
from tiny_runs import tiny_trained_run

import truthtrace.inference.engine as engine_module
from truthtrace.cli import main
from truthtrace.data import Question
from truthtrace.inference import Engine, EngineConfig
from truthtrace.inference.answers_io import read_answers, read_done
from truthtrace.inference.render import answer_text, risk_color

WORDS = ["France", "Mars", "Hamlet", "gold", "spider", "planet", "capital", "red", "legs", "symbol"]
QUESTIONS = [Question(id=f"q{i:02d}", question=f"What is the {WORDS[i % 10]} of {WORDS[(i * 3) % 10]} {i}?",
                      answers=("x",), category="test") for i in range(24)]
DETECTORS = ("probe", "perplexity", "max_entropy", "attn_logdet")
LONG = "word " * 400  # over the tiny model's context of 256


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_model, tiny_tokenizer):
    """extract (generate capture) -> labels -> preprocess -> train on a tiny random model."""
    return tiny_trained_run(tmp_path_factory.mktemp("live-cli"), tiny_model, tiny_tokenizer, QUESTIONS, DETECTORS)


@pytest.fixture(autouse=True)
def in_memory_model(monkeypatch, tiny_model, tiny_tokenizer, tmp_path):
    """The engine's model loader hands back the tiny model; the default cache lives in tmp_path."""
    monkeypatch.setattr(engine_module, "load_model", lambda *a, **k: (tiny_model, tiny_tokenizer))
    monkeypatch.setenv("TRUTHTRACE_CACHE", str(tmp_path / "user-cache"))
    monkeypatch.setenv("TQDM_DISABLE", "1")


def ask(pipeline, *argv):
    return main(["ask", "--detector", str(pipeline / "det"), "--dtype", "float32", *argv])


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_ask_prints_the_coloured_answer_and_every_detector(pipeline, capsys):
    assert ask(pipeline, "--no-cache", "--json", QUESTIONS[0].question) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["error"] is None and set(result["scores"]) == set(DETECTORS)
    assert 0 <= result["risk"] <= 1 and result["risk_detector"] in DETECTORS
    assert ask(pipeline, "--no-cache", QUESTIONS[0].question) == 0
    out = capsys.readouterr().out
    assert result["answer"] in out and all(name in out for name in DETECTORS)
    assert f"risk {result['risk']:.3f} ({result['risk_detector']})" in out
    assert "prefill" in out and "tokens/s" in out and "cached no" in out


def test_ask_without_a_question_or_with_abstain_alone_is_one_line(pipeline, capsys):
    assert ask(pipeline, "--no-cache") == 2
    assert ask(pipeline, "--no-cache", "--abstain", "hello?") == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "give a question" in err[0] and "--abstain needs --guard" in err[1]


def test_guard_abstain_withholds_the_answer(pipeline, capsys):
    assert ask(pipeline, "--no-cache", "--guard", "1e-9", "--abstain", "--json", QUESTIONS[1].question) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["abstained"] and result["answer"] is None and result["reason"]
    assert ask(pipeline, "--no-cache", "--guard", "1e-9", "--abstain", QUESTIONS[1].question) == 0
    out = capsys.readouterr().out
    assert "answer withheld" in out and "abstained:" in out


def test_ask_a_file_resumes_and_recovers_a_truncated_line(pipeline, tmp_path, capsys):
    records = [{"id": q.id, "question": q.question, "answers": ["x"]} for q in QUESTIONS[:6]]
    qfile = write_jsonl(tmp_path / "q.jsonl", records + [{"id": "long", "question": LONG, "answers": ["x"]}])
    out = tmp_path / "answers.jsonl"
    argv = ["--questions", str(qfile), "--out", str(out), "--batch-size", "4", "--no-cache"]
    assert ask(pipeline, *argv) == 0
    assert "answered 6, skipped 0 (already done), errors 1" in capsys.readouterr().out
    got = {r["id"]: r for r in lines(out)}
    assert set(got) == {q.id for q in QUESTIONS[:6]} | {"long"}
    assert "over the limit" in got["long"]["error"] and all(got[q.id]["error"] is None for q in QUESTIONS[:6])
    assert ask(pipeline, *argv) == 0
    assert "answered 0, skipped 7" in capsys.readouterr().out
    data = out.read_bytes()
    out.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 20])  # a kill in the middle of the last line
    assert ask(pipeline, *argv) == 0
    captured = capsys.readouterr()
    assert "answered" in captured.out and "skipped 6" in captured.out and "truncated" in captured.err
    assert sorted(r["id"] for r in lines(out)) == sorted(got)


def test_read_done_keeps_a_whole_last_record_without_its_newline(tmp_path):
    out = tmp_path / "a.jsonl"
    out.write_text('{"id": "a"}\n{"id": "b"}')
    assert read_done(out) == ({"a", "b"}, False) and out.read_text() == '{"id": "a"}\n{"id": "b"}\n'
    out.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(ValueError, match=r"a.jsonl: line 2: not valid JSON .*choose another --out"):
        read_done(out)


def answer_pairs(pipeline):
    return [(q.id, q.question, a) for q, a in zip(QUESTIONS[:5], ["Paris", "Mars", " Shakespeare", "gold", "8"])]


def check_equal(results, pipeline, tiny_model, tiny_tokenizer):
    rows = answer_pairs(pipeline)
    engine = Engine(EngineConfig(detectors=[pipeline / "det"], dtype="float32", cache=None), tiny_model,
                    tiny_tokenizer)
    want = engine.score([(q, a) for _, q, a in rows], ids=[i for i, _, _ in rows])
    assert [r["id"] for r in results] == [i for i, _, _ in rows]
    for got, ref in zip(results, want):
        for name in DETECTORS:
            assert got["scores"][name]["score"] == pytest.approx(ref["scores"][name]["score"], rel=1e-5, abs=1e-7)
            assert got["scores"][name]["probability"] == pytest.approx(ref["scores"][name]["probability"], rel=1e-5)


def test_score_jsonl_equals_engine_score(pipeline, tmp_path, capsys, tiny_model, tiny_tokenizer):
    rows = answer_pairs(pipeline)
    path = write_jsonl(tmp_path / "a.jsonl", [{"id": i, "question": q, "generation": a} for i, q, a in rows])
    assert main(["score", "--detector", str(pipeline / "det"), "--dtype", "float32", "--no-cache",
                 "--answers", str(path), "--json"]) == 0
    check_equal(json.loads(capsys.readouterr().out), pipeline, tiny_model, tiny_tokenizer)


def test_score_csv_to_jsonl_equals_engine_score(pipeline, tmp_path, capsys, tiny_model, tiny_tokenizer):
    path = tmp_path / "a.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "question", "response"])
        w.writerows(answer_pairs(pipeline))
    out = tmp_path / "scored.jsonl"
    assert main(["score", "--detector", str(pipeline / "det"), "--dtype", "float32", "--no-cache",
                 "--answers", str(path), "--out", str(out)]) == 0
    assert "answered 5, skipped 0 (already done), errors 0" in capsys.readouterr().out
    check_equal(lines(out), pipeline, tiny_model, tiny_tokenizer)


def test_score_prints_a_table_and_a_refused_request_is_an_error_row(pipeline, tmp_path, capsys):
    path = write_jsonl(tmp_path / "a.jsonl", [{"question": QUESTIONS[0].question, "answer": "Paris"},
                                              {"question": LONG, "output": "x"}])
    assert main(["score", "--detector", str(pipeline / "det"), "--dtype", "float32", "--no-cache",
                 "--answers", str(path)]) == 0
    out = capsys.readouterr().out
    assert "answer-00001" in out and "answer-00002" in out and "error" in out and "errors 1" in out


@pytest.mark.parametrize("name, content, match", [
    ("bad.jsonl", '{"question": "q", "answer": "a"}\n{"question": "q2", "answer": \n', "bad.jsonl: line 2: not valid"),
    ("bad.jsonl", '{"question": "q", "answer": "a"}\n{"question": ["q"], "answer": "a"}\n',
     "bad.jsonl: line 2: field 'question' is a list"),
    ("bad.csv", "question,answer\nq,a\nq2\n", "bad.csv: line 3: row has 1 fields"),
    ("bad.csv", "question,label\nq,a\n", "bad.csv: line 2: missing field 'answer' or 'generation'"),
    ("bad.json", '[{"question": "q", "answer": "a"}, 3]', "bad.json: record 2: expected a JSON object"),
    ("dup.jsonl", '{"id": 1, "question": "q", "answer": "a"}\n{"id": 1, "question": "q", "answer": "b"}\n',
     "dup.jsonl: line 2: duplicate id '1'"),
])
def test_a_malformed_answers_file_is_one_line_naming_file_and_line(pipeline, tmp_path, capsys, name, content, match):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        read_answers(path)
    assert main(["score", "--detector", str(pipeline / "det"), "--no-cache", "--answers", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and match in err[0] and err[0].startswith("truthtrace score: error:")


def test_cache_stats_and_clear(pipeline, tmp_path, capsys):
    cache = tmp_path / "c.sqlite"
    assert ask(pipeline, "--cache", str(cache), "--json", QUESTIONS[2].question) == 0
    assert ask(pipeline, "--cache", str(cache), "--json", QUESTIONS[2].question) == 0
    assert json.loads(capsys.readouterr().out.split("\n}\n")[1] + "\n}")["cached"]
    assert main(["cache", "stats", "--cache", str(cache), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["rows"] == 1 and stats["hits"] >= 1 and stats["misses"] >= 1 and stats["path"] == str(cache)
    assert main(["cache", "stats", "--cache", str(cache)]) == 0
    assert "rows       1" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache", str(cache)]) == 0
    assert f"deleted 1 rows from {cache}" in capsys.readouterr().out
    assert main(["cache", "stats", "--cache", str(cache), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 0


def test_cache_stats_never_creates_the_default_cache(tmp_path, capsys):
    assert main(["cache", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["path"] == str(tmp_path / "user-cache" / "results.sqlite") and stats["rows"] == 0
    assert not (tmp_path / "user-cache").exists()


def test_tokens_are_coloured_by_the_primary_running_risk():
    tokens = [{"id": 1, "text": "Par", "risk": {"probe": 0.0}}, {"id": 2, "text": "is", "risk": {"probe": 1.0}},
              {"id": 3, "text": "!", "risk": {}}]
    result = {"answer": "Paris!", "tokens": tokens, "risk_detector": "probe", "error": None}
    text = answer_text(result)
    assert text.plain == "Paris!"
    assert [(s.start, s.end, str(s.style)) for s in text.spans] == [(0, 3, "bold rgb(0,200,0)"),
                                                                    (3, 5, "bold rgb(255,0,0)")]
    assert risk_color(0.5) == "rgb(255,200,0)" and risk_color(7) == risk_color(1)
    split = dict(result, answer="Paris?")  # tokens that do not spell the answer: the answer, one colour
    assert answer_text(split).plain == "Paris?"


def test_streamed_answer_is_coloured_in_a_terminal(pipeline, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert ask(pipeline, "--no-cache", "--primary", "probe", QUESTIONS[4].question) == 0
    out = capsys.readouterr().out
    assert out.split("\n")[0].count("\x1b[1;3") >= 2 and "probe *" in out  # bold, a colour per token
