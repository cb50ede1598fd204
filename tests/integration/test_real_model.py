"""The embedded default model end to end (slow: converts the GGUF once, then ~16 questions)."""

import json

import pytest
import torch

from truthtrace.data import load_bundled
from truthtrace.traces.extract import ExtractConfig
from truthtrace.naming import TOKEN_IDS, layer_key
from truthtrace.pipeline import RunConfig, run
from truthtrace.store import TraceStore
from truthtrace.detectors.train import DEFAULT_DETECTORS

pytestmark = pytest.mark.slow


def assert_equals_live(store, trace_id, model, tol_hidden, tol_attn, hidden=(0, 15, 30), attn=(0, 29)):
    """A stored trace equals an unbatched live forward pass over its tokens, layer by layer."""
    ids = store.read(trace_id, TOKEN_IDS).long()[None]
    with torch.no_grad():
        live = model(ids, output_hidden_states=True, output_attentions=True)
    for i in hidden:
        stored = store.read(trace_id, layer_key(i, "hidden")).float()
        torch.testing.assert_close(stored, live.hidden_states[i][0], rtol=tol_hidden, atol=tol_hidden)
    for i in attn:
        stored = store.read(trace_id, layer_key(i, "attn")).float()
        torch.testing.assert_close(stored, live.attentions[i][0], rtol=tol_hidden, atol=tol_attn)


@pytest.fixture(scope="module")
def default_model():
    from truthtrace.models import load_model

    return load_model(device="cpu")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, default_model):
    out = tmp_path_factory.mktemp("run")
    cfg = RunConfig(out_dir=str(out), n_questions=16, extract=ExtractConfig(batch_size=8, max_new_tokens=16))
    report = run(cfg, *default_model, progress=False, log=lambda *_: None)
    return out, report


def test_pipeline_writes_every_stage(run_dir):
    out, report = run_dir
    for name in ("questions.jsonl", "labels.csv", "traces/index.json", "features/index.json", "features/split.json",
                 "detectors/split.json", "report/report.json", "report/report.md", "report/roc.png"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "report/report.json").read_text())
    names = {r["detector"] for r in saved["results"]}
    assert set(DEFAULT_DETECTORS) | {"stack"} == names  # make run reports every detector, and the stack over them
    assert len(TraceStore(out / "traces")) == 16
    from truthtrace.traces.validate.stage import ValidateConfig, validate_store

    checked = validate_store(out / "traces", out / "labels.csv", ValidateConfig(progress=False))
    assert checked.ok, checked.problems
    assert 0 < report["labels_summary"]["n"] == 16


def test_default_model_answers_sensibly(run_dir):
    out, _ = run_dir
    store = TraceStore(out / "traces")
    assert store.schema["n_layers"] == 30 and store.schema["n_heads"] == 9 and store.schema["d_model"] == 576
    generations = [m["generation"] for _, m in store.metas()]
    assert sum(bool(g.strip()) for g in generations) >= 14


def test_stored_trace_equals_live_forward(run_dir, default_model):
    """fp16 traces equal a fresh unbatched forward pass within fp16 precision."""
    out, _ = run_dir
    model, _ = default_model
    store = TraceStore(out / "traces")
    for trace_id in store.ids()[:2]:
        assert_equals_live(store, trace_id, model, tol_hidden=4e-3, tol_attn=1e-3)


def test_bundled_questions_have_answers():
    qs = load_bundled(n=40, seed=0)
    assert len({q.category for q in qs}) >= 8 and all(q.answers for q in qs)


def test_capture_in_generation_equals_live_forward(tmp_path, default_model):
    """--capture generate (no second pass) stores what a fresh forward pass computes."""
    from truthtrace.traces.extract import extract

    model, tok = default_model
    cfg = ExtractConfig(batch_size=4, max_new_tokens=12, capture="generate", hidden_layers=[0, 15, 30],
                        attn_layers=[0, 29])
    extract(load_bundled(n=12, seed=5)[:4], tmp_path / "gen", cfg, model, tok, progress=False)
    store = TraceStore(tmp_path / "gen")
    for trace_id in store.ids():
        assert_equals_live(store, trace_id, model, tol_hidden=1e-2, tol_attn=2e-3)
