"""The extract stage on a tiny random Llama: store contents, resume, config checks."""

import pytest
import torch

from truthtrace.data import Question
from truthtrace.traces.extract import ExtractConfig, extract
from truthtrace.naming import ANSWER_LOGPROBS, TOKEN_IDS, layer_key
from truthtrace.store import TraceStore

QUESTIONS = [Question(id=f"q{i}", question=f"What is {i} plus {i}?", answers=(str(2 * i),), category="numbers")
             for i in range(7)]


def _config(**kw):
    return ExtractConfig(model="tiny", batch_size=3, max_new_tokens=5, shard_max_traces=2, **kw)


def test_extract_writes_every_question(tmp_path, tiny_model, tiny_tokenizer):
    summary = extract(QUESTIONS, tmp_path / "s", _config(), tiny_model, tiny_tokenizer, progress=False)
    assert summary["n_new"] == 7 and summary["n_skipped"] == 0
    store = TraceStore(tmp_path / "s")
    assert store.ids() == [q.id for q in QUESTIONS]
    assert store.schema["n_layers"] == 2 and store.schema["hidden_layers"] == [0, 1, 2]
    meta = store.meta("q3")
    assert meta["answers"] == ["6"] and meta["question"] == QUESTIONS[3].question
    t = store.read("q3", TOKEN_IDS)
    assert store.read("q3", layer_key(2, "hidden")).shape == (len(t), 32)
    assert store.read("q3", layer_key(1, "attn")).shape == (2, len(t), len(t))
    assert store.read("q3", ANSWER_LOGPROBS).shape == (meta["n_answer_tokens"],)
    assert store.verify() == []


def test_resume_skips_stored_questions(tmp_path, tiny_model, tiny_tokenizer):
    extract(QUESTIONS[:4], tmp_path / "s", _config(), tiny_model, tiny_tokenizer, progress=False)
    summary = extract(QUESTIONS, tmp_path / "s", _config(), tiny_model, tiny_tokenizer, progress=False)
    assert summary["n_skipped"] == 4 and summary["n_new"] == 3
    assert TraceStore(tmp_path / "s").ids() == [q.id for q in QUESTIONS]


def test_resume_with_other_options_is_refused(tmp_path, tiny_model, tiny_tokenizer):
    extract(QUESTIONS[:2], tmp_path / "s", _config(), tiny_model, tiny_tokenizer, progress=False)
    with pytest.raises(Exception, match="max_new_tokens|schema"):
        extract(QUESTIONS, tmp_path / "s", ExtractConfig(model="tiny", max_new_tokens=9), tiny_model, tiny_tokenizer,
                progress=False)


def test_stored_trace_equals_live_forward(tmp_path, tiny_model, tiny_tokenizer):
    extract(QUESTIONS[:3], tmp_path / "s", _config(storage_dtype="float32"), tiny_model, tiny_tokenizer,
            progress=False)
    store = TraceStore(tmp_path / "s")
    for trace_id in store.ids():
        ids = store.read(trace_id, TOKEN_IDS).long()[None]
        with torch.no_grad():
            out = tiny_model(ids, output_hidden_states=True, output_attentions=True)
        for i in range(3):
            torch.testing.assert_close(store.read(trace_id, layer_key(i, "hidden")), out.hidden_states[i][0],
                                       atol=1e-5, rtol=1e-5)
        for i in range(2):
            torch.testing.assert_close(store.read(trace_id, layer_key(i, "attn")), out.attentions[i][0],
                                       atol=1e-5, rtol=1e-5)


def test_layer_subset_and_answer_only(tmp_path, tiny_model, tiny_tokenizer):
    cfg = _config(hidden_layers=[2], attn_layers=[1], keep="answer", storage_dtype="bfloat16")
    extract(QUESTIONS[:2], tmp_path / "s", cfg, tiny_model, tiny_tokenizer, progress=False)
    store = TraceStore(tmp_path / "s")
    meta = store.meta("q0")
    assert set(store.keys("q0")) >= {"layers.2.hidden", "layers.1.attn"}
    assert "layers.0.hidden" not in store.keys("q0")
    assert store.read("q0", "layers.2.hidden").shape[0] == meta["n_answer_tokens"]
    assert store.read("q0", "layers.2.hidden").dtype == torch.bfloat16


@pytest.mark.parametrize("field, value", [("keep", "first:3"), ("batch_size", 0), ("storage_dtype", "int8"),
                                          ("prompt_template", "no placeholder"), ("hidden_layers", []),
                                          ("capture", "beam"), ("threads", 0)])
def test_config_validation(field, value):
    with pytest.raises(ValueError, match=field):
        ExtractConfig(**{field: value})


def test_layer_beyond_model_is_refused(tmp_path, tiny_model, tiny_tokenizer):
    with pytest.raises(ValueError, match="hidden_layers"):
        extract(QUESTIONS[:1], tmp_path / "s", _config(hidden_layers=[7]), tiny_model, tiny_tokenizer,
                progress=False)


def test_capture_in_generation_stores_the_same_traces(tmp_path, tiny_model, tiny_tokenizer):
    for mode in ("forward", "generate"):
        extract(QUESTIONS[:4], tmp_path / mode, _config(capture=mode, storage_dtype="float32"), tiny_model,
                tiny_tokenizer, progress=False)
    fwd, gen = TraceStore(tmp_path / "forward"), TraceStore(tmp_path / "generate")
    assert gen.schema["capture"] == "generate"
    for trace_id in fwd.ids():
        assert fwd.meta(trace_id) == gen.meta(trace_id)
        for key in fwd.keys(trace_id):
            torch.testing.assert_close(gen.read(trace_id, key), fwd.read(trace_id, key), atol=1e-4, rtol=1e-4)
