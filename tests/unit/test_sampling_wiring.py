"""``extract --samples K`` and ``run --samples K``: the samples store lands where the feature dataset looks for
it, judged against the greedy answers the labels judge."""

import pytest

from truthtrace.cli import main
from truthtrace.features.samples import samples_beside
from truthtrace.pipeline import SAMPLING_DETECTORS, RunConfig
from truthtrace.store import TraceStore


def greedy_of(store):
    s = TraceStore(store)
    return {str(m["question_id"]): str(m.get("generation", "")) for _, m in s.metas()}


def test_extract_features_with_samples_writes_them_beside_the_feature_store(tmp_path, tiny_model_dir, capsys):
    feats = tmp_path / "run" / "features"
    args = ["extract", "--n", "5", "--model", str(tiny_model_dir), "--device", "cpu", "--max-new-tokens", "4",
            "--out", str(tmp_path / "run" / "traces"), "--features", str(feats), "--no-graphs",
            "--samples", "3", "--sample-temperature", "0.8"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert '"samples"' in out and '"n_samples": 15' in out
    samples = TraceStore(samples_beside(feats))
    assert samples_beside(feats) == (tmp_path / "run" / "samples").resolve() and len(samples) == 5
    assert samples.schema["n_samples"] == 3 and samples.schema["generation"]["temperature"] == 0.8
    greedy = greedy_of(feats)
    assert {i: samples.meta(i)["greedy"] for i in samples.ids()} == greedy  # the answers the labels judge
    assert main(args) == 0  # a rerun resumes both stores
    assert '"n_skipped": 5' in capsys.readouterr().out


def test_extract_with_samples_and_an_explicit_out(tmp_path, tiny_model_dir, capsys):
    args = ["extract", "--n", "4", "--model", str(tiny_model_dir), "--device", "cpu", "--max-new-tokens", "3",
            "--out", str(tmp_path / "traces"), "--samples", "2", "--samples-out", str(tmp_path / "mine")]
    assert main(args) == 0
    assert len(TraceStore(tmp_path / "mine")) == 4
    assert {i: TraceStore(tmp_path / "mine").meta(i)["greedy"] for i in TraceStore(tmp_path / "mine").ids()} \
        == greedy_of(tmp_path / "traces")
    assert main([*args[:-4], "--samples", "1"]) == 2
    assert "samples must be" in capsys.readouterr().err


def test_run_samples_adds_the_sampling_detectors_and_checks_k():
    cfg = RunConfig(samples=10)
    assert all(d in cfg.detectors for d in SAMPLING_DETECTORS) and cfg.paths["samples"].name == "samples"
    assert not any(d in RunConfig().detectors for d in SAMPLING_DETECTORS)
    assert RunConfig(samples=10, detectors=["probe"]).detectors == ["probe"]  # named detectors are kept as given
    for bad in (1, -2):
        with pytest.raises(ValueError, match="samples"):
            RunConfig(samples=bad)
