"""Every CLI stage on a tiny model saved as a local HF directory (the --model DIR path)."""

import csv
import json


from truthtrace.cli import main
from truthtrace.cli.args import int_list


def testint_list():
    assert int_list("0-3,7") == [0, 1, 2, 3, 7] and int_list(None) is None


def test_questions_command(tmp_path, capsys):
    assert main(["questions", "--n", "24", "--out", str(tmp_path / "q.jsonl")]) == 0
    lines = (tmp_path / "q.jsonl").read_text().splitlines()
    assert len(lines) == 24 and {"id", "question", "answers", "category"} <= set(json.loads(lines[0]))
    assert "wrote 24 questions" in capsys.readouterr().out


def test_stages_end_to_end(tmp_path, tiny_model_dir, capsys):
    run = tmp_path / "run"
    common = ["--model", str(tiny_model_dir), "--device", "cpu", "--batch-size", "8", "--max-new-tokens", "4"]
    assert main(["extract", "--n", "30", "--out", str(run / "traces"), *common]) == 0
    assert '"n_new": 30' in capsys.readouterr().out
    assert main(["extract", "--n", "30", "--out", str(run / "traces"), *common]) == 0
    assert '"n_skipped": 30' in capsys.readouterr().out
    assert main(["label", str(run / "traces"), "--out", str(run / "labels.csv")]) == 0
    # a random model is always wrong: plant alternating labels so detectors see both classes
    rows = list(csv.DictReader(open(run / "labels.csv")))
    for i, row in enumerate(rows):
        row["hallucinated"], row["correct"] = str(i % 2), str(1 - i % 2)
    with open(run / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["preprocess", str(run / "traces"), "--out", str(run / "features"), "--labels",
                 str(run / "labels.csv"), "--node-dim", "8", "--quiet"]) == 0
    assert main(["train", "--features", str(run / "features"), "--labels", str(run / "labels.csv"),
                 "--out", str(run / "detectors"), "--detectors", "probe,perplexity,max_entropy,gnn_layer",
                 "--detector-args", '{"gnn_layer": {"max_epochs": 2, "log_dir": null}}']) == 0
    assert main(["evaluate", "--features", str(run / "features"), "--labels", str(run / "labels.csv"),
                 "--detectors-dir", str(run / "detectors"), "--out", str(run / "report")]) == 0
    out = capsys.readouterr().out
    assert "probe" in out and "perplexity" in out and "max_entropy" in out
    assert (run / "report" / "report.md").is_file()


def test_bad_input_gives_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q?", "answers": ["a"]}\n{not json}\n')
    assert main(["questions", "--questions", str(bad), "--out", str(tmp_path / "q.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl" in err and "line 2" in err


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["extract", "--n", "10", "--out", str(tmp_path / "t"), "--model", str(tmp_path / "none")]) == 2
    assert "not found" in capsys.readouterr().err


def test_resume_with_other_settings_is_a_clear_error(tmp_path, tiny_model_dir, capsys):
    common = ["--model", str(tiny_model_dir), "--device", "cpu", "--batch-size", "4", "--n", "12"]
    assert main(["extract", "--out", str(tmp_path / "t"), "--max-new-tokens", "3", *common]) == 0
    assert main(["extract", "--out", str(tmp_path / "t"), "--max-new-tokens", "5", *common]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "max_new_tokens" in err and "--overwrite" in err
    assert main(["extract", "--out", str(tmp_path / "t"), "--max-new-tokens", "5", "--overwrite", *common]) == 0
