"""Hostile input ends in one line naming the file and what to do (exit 2; validate: findings, exit 1).

Each test feeds the CLI (or the loader behind it) one bad input: a directory as the question file, a full
or read-only disk, an index.json or shard document with fields of the wrong type, malformed detector files,
question files that are not UTF-8, lists or objects where text belongs; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from planted_store import make_planted_store
from safetensors.numpy import load_file, save_file
from synthetic_traces import make_trace

from truthtrace.cli import main
from truthtrace.data import load_questions
from truthtrace.detectors.train import TrainConfig, train
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.store import TraceWriter

SCHEMA = {"kind": "truthtrace.traces", "model": "synthetic", "model_dtype": "float32", "n_layers": 2, "n_heads": 2,
          "d_model": 16, "hidden_layers": [0, 1, 2], "attn_layers": [0, 1]}
META = {"n_prompt_tokens": 8, "n_answer_tokens": 4, "kept_start": 0}
GOOD = {"question": "Capital of France?", "answers": ["Paris"]}


def one_error_line(capsys, command: str) -> str:
    """The single stderr line of a failed command (asserts there is exactly one and no traceback)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith(f"truthtrace {command}: ")
    return lines[0]


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------- 7a: a directory as the question file

@pytest.mark.parametrize("name", ["questions", "questions.jsonl", "questions.json"])
@pytest.mark.parametrize("command", ["questions", "extract"])
def test_directory_as_question_file_is_one_line_naming_it(tmp_path, capsys, command, name):
    folder = tmp_path / name
    folder.mkdir()
    rc = main([command, "--questions", str(folder), "--out", str(tmp_path / "out")])
    line = one_error_line(capsys, command)
    assert rc == 2 and str(folder) in line and "is a directory" in line and ".jsonl" in line


# ---------------------------------------------------------------- 7b: full or read-only disk

@pytest.mark.parametrize("code, hint", [(errno.ENOSPC, "No space left on device; free some disk space"),
                                        (errno.EACCES, "Permission denied; check the permissions"),
                                        (errno.EROFS, "Read-only file system; write somewhere else")])
def test_write_error_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch, code, hint):
    out = tmp_path / "out" / "q.jsonl"

    def fail(path, text):  # what atomic_write raises when its temp file cannot be written
        raise OSError(code, os.strerror(code), str(out.parent / ".q.jsonl.k3j2x9.tmp"))

    monkeypatch.setattr("truthtrace.data.questions.write_text_atomic", fail)
    rc = main(["questions", "--n", "5", "--out", str(out)])
    line = one_error_line(capsys, "questions")
    assert rc == 2 and f"{out}: {hint}" in line and ".tmp" not in line


def test_output_below_a_file_is_one_line_naming_it(tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where a folder should be")
    rc = main(["questions", "--n", "5", "--out", str(blocker / "q.jsonl")])
    line = one_error_line(capsys, "questions")
    assert rc == 2 and str(blocker) in line and "choose another path" in line


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write into a read-only folder")
def test_read_only_output_folder_is_one_line(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        rc = main(["questions", "--n", "5", "--out", str(locked / "sub" / "q.jsonl")])
    finally:
        locked.chmod(0o700)
    line = one_error_line(capsys, "questions")
    assert rc == 2 and str(locked) in line and "Permission denied; check the permissions" in line


# ---------------------------------------------------------------- generic: internal errors, Ctrl-C, --debug

def test_unexpected_exception_is_one_internal_error_line(tmp_path, capsys, monkeypatch):
    def boom(questions, path):
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr("truthtrace.cli.traces.save_questions", boom)
    rc = main(["questions", "--n", "5", "--out", str(tmp_path / "q.jsonl")])
    line = one_error_line(capsys, "questions")
    assert rc == 2 and "internal error: RuntimeError: something nobody expected" in line and "--debug" in line


def test_interrupt_exits_130_without_traceback(tmp_path, capsys, monkeypatch):
    def interrupted(questions, path):
        raise KeyboardInterrupt

    monkeypatch.setattr("truthtrace.cli.traces.save_questions", interrupted)
    rc = main(["questions", "--n", "5", "--out", str(tmp_path / "q.jsonl")])
    assert rc == 130 and one_error_line(capsys, "questions") == "truthtrace questions: interrupted"


def test_debug_flag_before_the_command_shows_the_traceback(tmp_path):
    code = "import sys; from truthtrace.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["questions", "--questions", str(tmp_path), "--out", str(tmp_path / "q.jsonl")]
    plain = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    debug = subprocess.run([sys.executable, "-c", code, "--debug", *args], capture_output=True, text=True,
                           timeout=120)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr and len(plain.stderr.splitlines()) == 1
    assert debug.returncode == 2 and "Traceback (most recent call last)" in debug.stderr
    assert "is a directory" in debug.stderr


def test_debug_flag_after_the_command_shows_the_traceback(tmp_path, capsys):
    rc = main(["questions", "--questions", str(tmp_path), "--out", str(tmp_path / "q.jsonl"), "--debug"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback (most recent call last)" in err and "is a directory" in err


# ---------------------------------------------------------------- 8: question files that are not UTF-8

@pytest.mark.parametrize("name, content, where", [
    ("q.jsonl", b'{"question": "A?", "answers": ["a"]}\n\n{"question": "Caf\xe9?", "answers": ["b"]}\n',
     "line 3: not UTF-8 text (byte 0xe9 at column 18)"),
    ("q.json", b'[\n {"question": "A?", "answers": ["a"]},\n {"question": "B\xff?", "answers": ["b"]}\n]\n',
     "line 3: not UTF-8 text (byte 0xff at column 17)"),
    ("q.csv", b'question,answers\nA?,a\nB?,b\n"C\xfe?",c\n', "line 4: not UTF-8 text (byte 0xfe at column 3)"),
])
def test_non_utf8_question_file_names_file_line_and_column(tmp_path, capsys, name, content, where):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        load_questions(path)
    assert str(err.value).startswith(f"{path}: {where}")
    assert main(["questions", "--questions", str(path), "--out", str(tmp_path / "out.jsonl")]) == 2
    assert f"{path}: {where}" in one_error_line(capsys, "questions")


# ---------------------------------------------------------------- 11: lists or objects where text belongs

@pytest.mark.parametrize("record, where", [
    ({"question": ["What", "?"], "answers": ["a"]}, "field 'question' is a list (['What', '?'])"),
    ({"question": {"text": "What?"}, "answers": ["a"]}, "field 'question' is an object"),
    ({**GOOD, "id": ["q", 1]}, "field 'id' is a list"),
    ({**GOOD, "category": {"name": "geo"}}, "field 'category' is an object"),
    ({**GOOD, "context": ["a", "passage"]}, "field 'context' is a list"),
    ({"question": "Q?", "answers": ["a", ["b", "c"]]}, "field 'answers' must be a string or a list of strings; "
                                                       "answer 2 is a list"),
    ({"question": "Q?", "answers": ["a", {"b": 1}]}, "answer 2 is an object"),
])
def test_list_or_object_where_text_belongs_is_refused(tmp_path, capsys, record, where):
    path = write_jsonl(tmp_path / "q.jsonl", [GOOD, record])
    with pytest.raises(ValueError, match=r"q\.jsonl: line 2: ") as err:
        load_questions(path)
    assert where in str(err.value)
    assert main(["questions", "--questions", path, "--out", str(tmp_path / "out.jsonl")]) == 2
    assert where in one_error_line(capsys, "questions")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("name, content, where", [
    ("t.jsonl", {"question": "Q?", "question_id": ["x"], "answer": {"value": "a", "aliases": []}},
     "line 1: field 'question_id' is a list"),
    ("t.jsonl", {"question": "Q?", "answer": {"value": ["a"], "aliases": []}},
     "line 1: field 'answer.value' is a list"),
    ("s.json", {"data": [{"paragraphs": [{"context": "c", "qas": [
        {"id": {"n": 1}, "question": "Q?", "answers": [{"text": "a"}]}]}]}]}, "record 1 (data[0].paragraphs[0]"
                                                                             ".qas[0]): field 'id' is an object"),
    ("s.json", {"data": [{"paragraphs": [{"context": ["c"], "qas": [
        {"id": "1", "question": "Q?", "answers": [{"text": "a"}]}]}]}]}, "data[0].paragraphs[0]: field 'context'"),
    ("s.json", {"data": [{"paragraphs": "not a list"}]}, "data[0]: field 'paragraphs' is 'not a list', expected a"),
    ("q.csv", 'question,answers\nQ?,"[""a"", [""b""]]"\n', "line 2: field 'answers' must be a string or a list of "
                                                          "strings; answer 2 is a list"),
])
def test_named_formats_refuse_lists_and_objects_as_text(tmp_path, name, content, where):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif name.endswith(".jsonl"):
        write_jsonl(path, [content])
    else:
        path.write_text(json.dumps(content))
    with pytest.raises(ValueError) as err:
        load_questions(path)
    assert str(err.value).startswith(f"{path}: {where}")


# ---------------------------------------------------------------- 7c: validate with fields of the wrong type

@pytest.fixture
def store(tmp_path):
    """Four synthetic traces in two shards, and a labels CSV covering them."""
    with TraceWriter(tmp_path / "s", SCHEMA, shard_max_traces=2) as w:
        for i in range(4):
            w.add(f"q{i}", make_trace(i), dict(META, question_id=f"q{i}"))
    (tmp_path / "labels.csv").write_text("trace_id,hallucinated\n" + "".join(f"q{i},{i % 2}\n" for i in range(4)))
    return tmp_path / "s", tmp_path / "labels.csv"


def edit_json(path, edit) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


INDEX_EDITS = {
    "n_traces is text": (lambda d: d.update(n_traces="abc"), "field 'n_traces' is 'abc', expected an int"),
    "schema is a list": (lambda d: d.update(schema=[]), "field 'schema' is [], expected an object"),
    "shards hold numbers": (lambda d: d["shards"].insert(0, 7), "shards[0] is 7, expected an object"),
    "ids are not strings": (lambda d: d["shards"][0].update(ids=[1, ["q1"]]), "field 'shards[0].ids' holds ids"),
    "ids are an object": (lambda d: d["shards"][0].update(ids={}), "field 'shards[0].ids' is {}, expected a list"),
    "bin_bytes is text": (lambda d: d["shards"][0].update(bin_bytes="abc"), "field 'shards[0].bin_bytes' is 'abc'"),
    "file name leaves": (lambda d: d["shards"][0].update(json="../x.json"), "field 'shards[0].json' is '../x.json'"),
}


@pytest.mark.parametrize("case", sorted(INDEX_EDITS))
def test_validate_reports_index_fields_of_the_wrong_type_and_keeps_going(store, capsys, case):
    path, labels = store
    edit, message = INDEX_EDITS[case]
    edit_json(path / "index.json", edit)
    rc = main(["validate", str(path), "--labels", str(labels), "--json"])
    report = json.loads(capsys.readouterr().out)
    messages = [p["message"] for p in report["problems"] if p["check"] == "index"]
    assert rc == 1 and any(message in m for m in messages), report["problems"]
    assert report["counts"]["shards"] >= 1  # the sound shard was still checked


SHARD_DOC_EDITS = {
    "traces is an object": (lambda d: d.update(traces={}), "field 'traces' is {}, expected a list"),
    "meta is a list": (lambda d: d["traces"][0].update(meta=[]), "traces[0]: field 'meta' is [], expected an object"),
    "tensors is a list": (lambda d: d["traces"][1].update(tensors=[]), "traces[1]: field 'tensors' is []"),
    "entry is a number": (lambda d: d["traces"][0]["tensors"].update(token_ids=3), "entries that are not objects"),
}


@pytest.mark.parametrize("case", sorted(SHARD_DOC_EDITS))
def test_validate_reports_shard_records_of_the_wrong_type(store, capsys, case):
    path, labels = store
    edit, message = SHARD_DOC_EDITS[case]
    edit_json(path / "shard.00000.json", edit)
    rc = main(["validate", str(path), "--labels", str(labels), "--json"])
    report = json.loads(capsys.readouterr().out)
    messages = [p["message"] for p in report["problems"] if p["check"] == "shard_doc"]
    assert rc == 1 and any(message in m for m in messages), report["problems"]
    assert report["counts"]["traces"] >= 2 and not [p for p in report["problems"] if p["check"] == "internal"]


def test_validate_reports_meta_counts_and_entry_layouts_of_the_wrong_type(store, capsys):
    path, labels = store

    def edit(doc):
        doc["traces"][0]["meta"]["n_prompt_tokens"] = "eight"
        doc["traces"][1]["tensors"]["layers.0.attn"]["planes"] = "many"

    edit_json(path / "shard.00000.json", edit)
    assert main(["validate", str(path), "--labels", str(labels), "--json"]) == 1
    problems = {(p["check"], p["trace_id"], p["message"]) for p in json.loads(capsys.readouterr().out)["problems"]}
    assert ("tokens", "q0", "meta field 'n_prompt_tokens' is 'eight', expected an int >= 0") in problems
    assert ("shape", "q1", "entry planes 'many' is not a list of byte counts") in problems


def test_reading_a_store_with_a_malformed_index_is_one_line(store, capsys):
    path, _ = store
    edit_json(path / "index.json", lambda d: d["shards"][1].update(ids=["q2", ["q3"]]))
    assert main(["inspect", str(path), "--no-decode"]) == 2
    line = one_error_line(capsys, "inspect")
    assert f"{path / 'index.json'}: field 'shards[1].ids' holds ids that are not strings" in line
    assert "truthtrace validate" in line


# ---------------------------------------------------------------- 7d, 8: malformed detector files

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small feature store, its labels and a probe, an attn_logdet and an mlp trained on it."""
    root = tmp_path_factory.mktemp("hostile-detectors")
    store, labels = make_planted_store(root / "traces", n=48, layers=2, heads=2, d=8, seed=0)
    preprocess(store, root / "feats", PreprocessConfig(graphs=False), labels=labels, progress=False)
    cfg = TrainConfig(detectors=("probe", "attn_logdet", "mlp"), seeds=(0,),
                      detector_args={"mlp": {"max_epochs": 1, "sweep_epochs": 1, "hidden": [4], "log_dir": None}})
    train(root / "feats", labels, root / "det", cfg, progress=False)
    return root, labels


def _add_arg(run):
    edit_json(run / "config.json", lambda d: d["args"].update(bogus=1))


def _rank(key, shape):
    def corrupt(run):
        arrays = load_file(str(run / "model.safetensors"))
        arrays[key] = np.zeros(shape, dtype=arrays[key].dtype)
        save_file(arrays, str(run / "model.safetensors"))
    return corrupt


def _garbage(run):
    (run / "model.safetensors").write_bytes(b"\x00\xffnot safetensors at all" * 8)


DETECTOR_EDITS = {
    "probe extra argument": ("probe", _add_arg, "config.json: field 'args' has unknown arguments ['bogus']"),
    "probe wrong rank": ("probe", _rank("coef", (8, 2)), "model.safetensors: tensor 'coef' has shape (8, 2)"),
    "probe garbage": ("probe", _garbage, "model.safetensors: not a readable safetensors file"),
    "attn_logdet wrong rank": ("attn_logdet", _rank("layer_index", ()), "model.safetensors: tensor 'layer_index' "
                                                                         "has shape ()"),
    "attn_logdet extra argument": ("attn_logdet", _add_arg, "config.json: field 'args' has unknown arguments"),
    "mlp garbage": ("mlp", _garbage, "model.safetensors: not a readable safetensors file"),
    "mlp extra argument": ("mlp", _add_arg, "config.json: field 'args' does not fit detector 'mlp'"),
}


@pytest.mark.parametrize("case", sorted(DETECTOR_EDITS))
def test_malformed_detector_is_one_line_naming_file_and_field(trained, tmp_path, capsys, case):
    root, labels = trained
    name, corrupt, message = DETECTOR_EDITS[case]
    shutil.copytree(root / "det", tmp_path / "det")
    run = tmp_path / "det" / name / "seed-0"
    corrupt(run)
    rc = main(["evaluate", "--features", str(root / "feats"), "--labels", str(labels), "--detectors-dir",
               str(tmp_path / "det"), "--detectors", name, "--out", str(tmp_path / "report"), "--no-figures",
               "--n-bootstrap", "10"])
    line = one_error_line(capsys, "evaluate")
    assert rc == 2 and f"{run}/{message}" in line, line
    assert "train --overwrite" in line


# ---------------------------------------------------------------- 8: labels files that are not UTF-8 or not files

@pytest.mark.parametrize("content, where", [(b"trace_id,hallucinated\nt0,1\nt\xe91,0\n", "line 3: not UTF-8 text"),
                                            (None, "is a directory, not a labels CSV")])
def test_bad_labels_file_is_one_line_naming_it(trained, tmp_path, capsys, content, where):
    root, _ = trained
    labels = tmp_path / "labels.csv"
    labels.mkdir() if content is None else labels.write_bytes(content)
    rc = main(["train", "--features", str(root / "feats"), "--labels", str(labels), "--out", str(tmp_path / "det"),
               "--detectors", "probe"])
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]  # after the progress bar
    assert rc == 2 and "Traceback" not in err and line == f"truthtrace train: error: {labels}: {where}" + \
        ("" if content is None else " (byte 0xe9 at column 2); save the file as UTF-8") + \
        ("; pass the path of a labels CSV" if content is None else ""), line


def test_broken_pipe_stops_quietly(tmp_path):
    """``truthtrace ... | head -1`` closes the pipe early: no error line, no traceback, exit 141."""
    cli = ("import sys; import truthtrace.cli.look as look; from truthtrace.cli import main; "
           "look.cmd_inspect = lambda args: [print('x' * 99) for _ in range(100_000)]; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", cli, "inspect", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(1)
    proc.stdout.close()  # the reader goes away before the command has printed everything
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and "Traceback" not in err and "error" not in err, err
