"""truthtrace profile extract | train | ask on a tiny random model: the table, the Chrome trace, peak memory."""

import json

import pytest
from tiny_runs import tiny_trained_run

import truthtrace.inference.engine as engine_module
import truthtrace.profiling as profiling
from truthtrace.cli import main
from truthtrace.data import Question
from truthtrace.features import PreprocessConfig
from truthtrace.traces.extract import ExtractConfig

QUESTIONS = [Question(id=f"q{i:02d}", question=f"What is the capital of planet {i}?", answers=("x",),
                      category="test") for i in range(24)]


def tiny_run(root, model, tokenizer, detectors=("probe",)):
    """extract (generate capture) -> labels -> preprocess (no graphs) -> train ``detectors``; returns ``root``."""
    return tiny_trained_run(root, model, tokenizer, QUESTIONS, detectors, batch_size=8, max_new_tokens=4,
                            features=PreprocessConfig(graphs=False))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model, tiny_tokenizer):
    return tiny_run(tmp_path_factory.mktemp("profile"), tiny_model, tiny_tokenizer)


@pytest.fixture(autouse=True)
def tiny_loaders(monkeypatch, tiny_model, tiny_tokenizer):
    """Every model loader hands back the tiny model."""
    for module in (profiling, engine_module):
        monkeypatch.setattr(module, "load_model", lambda *a, **k: (tiny_model, tiny_tokenizer))
    monkeypatch.setenv("TQDM_DISABLE", "1")


def check_outputs(out, summary, stage):
    """The three files are written, the table lists ops, the trace is Chrome JSON, the peak memory is there."""
    table = (out / "profile.txt").read_text()
    assert "Self CPU" in table and "Input Shapes" in table and "aten::" in table
    assert table.strip() == summary["table"].strip()
    trace = json.loads((out / "trace.json").read_text())
    assert trace["traceEvents"] and any(e.get("name") == f"truthtrace.{stage}" for e in trace["traceEvents"])
    doc = json.loads((out / "profile.json").read_text())
    assert doc["stage"] == stage and doc["peak_memory_mb"] > 0 and doc["seconds"] > 0
    assert "table" not in doc and doc["machine"]["cores"] >= 1


def test_profile_extract_writes_table_trace_and_peak_memory(tmp_path, tiny_model, tiny_tokenizer):
    cfg = ExtractConfig(model="tiny", batch_size=4, max_new_tokens=3)
    summary = profiling.profile_extract(QUESTIONS[:8], tmp_path / "p", cfg, tiny_model, tiny_tokenizer, warmup=1)
    check_outputs(tmp_path / "p", summary, "extract")
    assert summary["questions"] == 8 and summary["batches"] == 2 and summary["model"] == "tiny-llama"
    assert "aten::mm" in summary["table"] or "aten::addmm" in summary["table"]


@pytest.mark.parametrize("capture", ["forward", "generate"])
def test_profile_extract_features_profiles_the_run_path(tmp_path, tiny_model, tiny_tokenizer, capture):
    """``features=``: extract_features (what run does) is profiled: its reductions run, no trace store is left."""
    cfg = ExtractConfig(model="tiny", batch_size=4, max_new_tokens=3, capture=capture)
    summary = profiling.profile_extract(QUESTIONS[:8], tmp_path / "p", cfg, tiny_model, tiny_tokenizer, warmup=1,
                                        features=PreprocessConfig(node_dim=4))
    check_outputs(tmp_path / "p", summary, "extract")
    assert summary["path"] == "features" and summary["questions"] == 8 and summary["batches"] == 2
    assert "aten::linalg_eigh" in summary["table"] or "aten::_linalg_eigh" in summary["table"]  # the graph PCA fit
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["profile.json", "profile.txt", "trace.json"]


def test_profile_train_fits_a_torch_detector_briefly(run_dir, tmp_path):
    summary = profiling.profile_train(run_dir / "feats", run_dir / "labels.csv", "lstm", tmp_path / "p", epochs=2,
                                      batch_size=8, detector_args={"proj": 8, "hidden": 4})
    check_outputs(tmp_path / "p", summary, "train")
    assert summary["fit"]["epochs"] == 2 and summary["detector"] == "lstm"
    assert "aten::lstm" in summary["table"] or "LSTM" in summary["table"]


def test_profile_train_refuses_compile_for_a_non_torch_detector(run_dir, tmp_path):
    with pytest.raises(ValueError, match="torch detectors"):
        profiling.profile_train(run_dir / "feats", run_dir / "labels.csv", "probe", tmp_path, compile="default")


def test_profile_ask_answers_every_question(run_dir, tmp_path, tiny_model, tiny_tokenizer):
    summary = profiling.profile_ask(QUESTIONS[:6], [run_dir / "det"], tmp_path / "p", tiny_model, tiny_tokenizer,
                                    warmup=1, dtype="float32", max_batch=4)
    check_outputs(tmp_path / "p", summary, "ask")
    assert summary["questions"] == 6 and summary["errors"] == 0 and summary["answers_per_s"] > 0


def test_profile_cli_prints_the_table_and_the_peak_memory(run_dir, tmp_path, capsys):
    assert main(["profile", "extract", "--n", "3", "--max-new-tokens", "2", "--out", str(tmp_path / "x")]) == 0
    out = capsys.readouterr().out
    assert "Self CPU" in out and "profiled extract: 3 questions" in out and "MB RSS" in out
    assert main(["profile", "extract", "--features", "--no-graphs", "--n", "6", "--max-new-tokens", "2",
                 "--out", str(tmp_path / "f")]) == 0
    assert "profiled extract: 6 questions" in capsys.readouterr().out
    assert json.loads((tmp_path / "f" / "profile.json").read_text())["path"] == "features"
    assert main(["profile", "ask", "--detector", str(run_dir / "det"), "--n", "2", "--dtype", "float32",
                 "--out", str(tmp_path / "a"), "--debug"]) == 0
    assert "profiled ask: 2 questions" in capsys.readouterr().out
    assert main(["profile", "train", "--features", str(run_dir / "feats"), "--labels", str(run_dir / "labels.csv"),
                 "--detector", "probe", "--out", str(tmp_path / "t")]) == 0
    assert json.loads((tmp_path / "t" / "profile.json").read_text())["detector"] == "probe"
