"""--attn-backend: hybrid attention (eager where maps are kept, SDPA elsewhere) on a 4-layer random Llama."""

import json

import pytest
import torch
from conftest import make_tiny_model

from truthtrace.cli import build_parser
from truthtrace.cli.args import extract_config
from truthtrace.data import Question
from truthtrace.models import load_model
from truthtrace.models.attention import (
    attention_by_layer,
    attention_implementation,
    check_backend,
    hybrid_implementation,
    resolve_backend,
)
from truthtrace.naming import ANSWER_LOGPROBS, TOKEN_IDS, layer_key
from truthtrace.store import StoreError, TraceStore
from truthtrace.traces.capture import CaptureOptions, build_prompt_ids, forward_traces, generate_with_traces
from truthtrace.traces.extract import ExtractConfig, extract

KEPT = (1, 3)  # of layers 0..3
TOL = dict(atol=1e-4, rtol=1e-4)  # hybrid vs eager: SDPA sums in another order (~1e-7 here, ~6e-5 on SmolLM2)
QUESTIONS = [Question(id=f"q{i}", question=f"What is {i} plus {i}?", answers=(str(2 * i),), category="numbers")
             for i in range(5)]


@pytest.fixture(scope="module")
def model4(tiny_tokenizer):
    return make_tiny_model(len(tiny_tokenizer), seed=3, layers=4)


def _prompts(tok, n=3):
    return [build_prompt_ids(tok, q.question, "Q: {question}") for q in QUESTIONS[:n]]


def _config(**kw):
    return ExtractConfig(model="tiny", batch_size=2, max_new_tokens=4, storage_dtype="float32", **kw)


def _padded_batch(tok):
    """Two right-padded sequences of different lengths: ``(ids (2, T), mask (2, T))``."""
    seqs = [p + [5, 6, 7] for p in _prompts(tok, 2)] + [[4, 9, 11]]
    width = max(map(len, seqs))
    ids = torch.tensor([s + [0] * (width - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    return ids, mask


def _no_mask_attention(module, query, key, value, attention_mask, **kwargs):
    from transformers.models.llama.modeling_llama import eager_attention_forward

    return eager_attention_forward(module, query, key, value, None, **kwargs)


def _run(model, implementation, ids, mask):
    """The model's output under ``implementation``, with its maps by layer in ``out.maps``."""
    with attention_implementation(model, implementation), torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        out.maps = attention_by_layer(model, out.attentions)  # while the implementation is in force
    return out


def test_hybrid_equals_eager_and_keeps_the_causal_mask(model4, tiny_tokenizer):
    from transformers import AttentionInterface

    ids, mask = _padded_batch(tiny_tokenizer)
    eager, hybrid = _run(model4, "eager", ids, mask), _run(model4, hybrid_implementation(KEPT), ids, mask)
    AttentionInterface.register("tt_test_no_mask", _no_mask_attention)  # a name with no mask function: no mask
    unmasked = _run(model4, "tt_test_no_mask", ids, mask)
    valid = mask.bool()
    torch.testing.assert_close(hybrid.logits[valid], eager.logits[valid], **TOL)
    for h, e in zip(hybrid.hidden_states, eager.hidden_states):
        torch.testing.assert_close(h[valid], e[valid], **TOL)
    assert (unmasked.logits[valid] - eager.logits[valid]).abs().max() > 1e-2  # the mask matters here
    assert len(hybrid.attentions) == len(KEPT) and len(eager.attentions) == 4
    assert sorted(hybrid.maps) == list(KEPT) and sorted(eager.maps) == [0, 1, 2, 3]
    assert model4.config._attn_implementation == "eager"  # switched back
    for i in KEPT:
        torch.testing.assert_close(hybrid.maps[i], eager.attentions[i], **TOL)


def test_only_kept_layers_run_eager_and_only_when_maps_are_asked_for(model4, tiny_tokenizer, monkeypatch):
    import truthtrace.models.attention as attention

    ran, eager_of = [], attention.eager_forward_of
    monkeypatch.setattr(attention, "eager_forward_of", lambda module: ran.append(module.layer_idx) or eager_of(module))
    ids, mask = _padded_batch(tiny_tokenizer)
    with attention_implementation(model4, hybrid_implementation(KEPT)), torch.no_grad():
        assert model4(input_ids=ids, attention_mask=mask).attentions is None and ran == []  # e.g. generation
        model4(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert ran == list(KEPT)


@pytest.mark.parametrize("mode", ["forward", "generate"])
def test_kept_layers_maps_equal_eager_in_both_capture_modes(model4, tiny_tokenizer, mode):
    prompts, opts = _prompts(tiny_tokenizer), CaptureOptions(attn_layers=KEPT)
    traces = {}
    for name in ("eager", hybrid_implementation(KEPT)):
        with attention_implementation(model4, name):
            if mode == "generate":
                answers, traces[name] = generate_with_traces(model4, tiny_tokenizer, prompts, opts, 5)
            else:
                answers = [[5, 6, 7, 8]] * len(prompts)
                traces[name] = forward_traces(model4, [p + a for p, a in zip(prompts, answers)],
                                              [len(p) for p in prompts], opts, tiny_tokenizer.pad_token_id)
    for eager, hybrid in zip(traces["eager"], traces[hybrid_implementation(KEPT)]):
        assert set(hybrid) == set(eager)
        assert layer_key(0, "attn") not in hybrid and layer_key(2, "attn") not in hybrid
        assert torch.equal(hybrid[TOKEN_IDS], eager[TOKEN_IDS])
        for key in hybrid:
            torch.testing.assert_close(hybrid[key], eager[key], **TOL)
        assert hybrid[layer_key(3, "attn")].shape[0] == 2  # (H, T, T) of its own layer


def test_a_kept_layer_without_a_map_is_a_clear_error(model4, tiny_tokenizer):
    prompts = _prompts(tiny_tokenizer, 1)
    with attention_implementation(model4, hybrid_implementation([1])), pytest.raises(ValueError, match=r"\[3\]"):
        forward_traces(model4, prompts, [len(prompts[0]) - 1], CaptureOptions(attn_layers=KEPT), 0)


def test_extract_records_the_backend_and_refuses_another_on_resume(tmp_path, model4, tiny_tokenizer):
    extract(QUESTIONS[:2], tmp_path / "s", _config(attn_layers=list(KEPT)), model4, tiny_tokenizer, progress=False)
    store = TraceStore(tmp_path / "s")
    assert store.schema["attn_backend"] == "hybrid" and store.schema["attn_layers"] == list(KEPT)
    assert layer_key(1, "attn") in store.keys("q0") and layer_key(0, "attn") not in store.keys("q0")
    assert model4.config._attn_implementation == "eager"  # a passed model is switched back
    with pytest.raises(StoreError, match="attn_backend: stored 'hybrid', given 'eager'"):
        extract(QUESTIONS, tmp_path / "s", _config(attn_layers=list(KEPT), attn_backend="eager"), model4,
                tiny_tokenizer, progress=False)
    summary = extract(QUESTIONS, tmp_path / "s", _config(attn_layers=list(KEPT), attn_backend="hybrid"), model4,
                      tiny_tokenizer, progress=False)  # "auto" resolved to "hybrid": the same kernels
    assert summary["n_skipped"] == 2 and summary["n_new"] == 3


def test_stored_hybrid_traces_equal_a_live_eager_pass(tmp_path, model4, tiny_tokenizer):
    extract(QUESTIONS[:3], tmp_path / "s", _config(attn_layers=[2], capture="generate"), model4, tiny_tokenizer,
            progress=False)
    store = TraceStore(tmp_path / "s")
    for trace_id in store.ids():
        ids = store.read(trace_id, TOKEN_IDS).long()[None]
        out = _run(model4, "eager", ids, torch.ones_like(ids))
        torch.testing.assert_close(store.read(trace_id, layer_key(2, "attn")), out.attentions[2][0], **TOL)
        torch.testing.assert_close(store.read(trace_id, layer_key(4, "hidden")), out.hidden_states[4][0], **TOL)
        n = store.meta(trace_id)["n_prompt_tokens"]
        logp = torch.log_softmax(out.logits[0, n - 1:-1], -1).gather(1, ids[0, n:, None]).squeeze(1)
        torch.testing.assert_close(store.read(trace_id, ANSWER_LOGPROBS), logp, **TOL)


def test_a_store_from_before_backends_resumes_with_eager_only(tmp_path, model4, tiny_tokenizer):
    extract(QUESTIONS[:2], tmp_path / "s", _config(), model4, tiny_tokenizer, progress=False)
    index_path = tmp_path / "s" / "index.json"
    index = json.loads(index_path.read_text())
    assert index["schema"].pop("attn_backend") == "eager"  # as written before the backend was recorded
    index_path.write_text(json.dumps(index))
    with pytest.raises(StoreError, match="records no attention backend.*'hybrid'.*--attn-backend eager"):
        extract(QUESTIONS, tmp_path / "s", _config(attn_layers=[1]), model4, tiny_tokenizer, progress=False)
    summary = extract(QUESTIONS, tmp_path / "s", _config(), model4, tiny_tokenizer, progress=False)
    assert summary["n_new"] == 3 and "attn_backend" not in TraceStore(tmp_path / "s").schema


@pytest.mark.parametrize("attn_layers, attentions, expected", [
    (None, True, "eager"), ([0, 1, 2, 3], True, "eager"), ([3, 0, 2, 1, 1], True, "eager"),
    ([1], True, "hybrid"), ([0, 2, 3], True, "hybrid"), (None, False, "sdpa"), ([1], False, "sdpa"),
])
def test_auto_picks_the_cheapest_backend_returning_the_kept_maps(attn_layers, attentions, expected):
    config = ExtractConfig(attn_layers=attn_layers, attentions=attentions)
    assert config.attention_backend(4)[0] == expected
    name = {"hybrid": "truthtrace_hybrid_" + "_".join(map(str, attn_layers or ()))}.get(expected, expected)
    assert config.attention_backend(4)[1] == name
    assert resolve_backend("eager", (1,), 4) == "eager" and resolve_backend("hybrid", (), 4) == "hybrid"


def test_backend_validation():
    check_backend("hybrid", False)
    with pytest.raises(ValueError, match="attn_backend must be one of auto, eager, sdpa, hybrid"):
        ExtractConfig(attn_backend="flash")
    with pytest.raises(ValueError, match="'sdpa' returns no attention maps"):
        ExtractConfig(attn_backend="sdpa")
    assert ExtractConfig(attn_backend="sdpa", attentions=False).attention_backend(4) == ("sdpa", "sdpa")


@pytest.mark.parametrize("command", ["extract", "run"])
def test_cli_flag_parses(command):
    parser = build_parser()
    args = parser.parse_args([command, "--out", "x", "--attn-backend", "hybrid", "--attn-layers", "1,3"])
    config = extract_config(args)
    assert config.attn_backend == "hybrid" and config.attn_layers == [1, 3]
    assert extract_config(parser.parse_args([command, "--out", "x"])).attn_backend == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args([command, "--out", "x", "--attn-backend", "flash"])


def test_load_model_with_the_hybrid_backend(tmp_path, model4, tiny_tokenizer):
    model4.save_pretrained(tmp_path / "m")
    tiny_tokenizer.save_pretrained(tmp_path / "m")
    model, _ = load_model(str(tmp_path / "m"), device="cpu", attn_implementation="hybrid", attn_layers=[2])
    ids, mask = _padded_batch(tiny_tokenizer)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert model.config._attn_implementation == "truthtrace_hybrid_2" and len(out.attentions) == 1
    torch.testing.assert_close(out.logits, _run(model4, "eager", ids, mask).logits, **TOL)
    with pytest.raises(ValueError, match="needs attn_layers"):
        load_model(str(tmp_path / "m"), device="cpu", attn_implementation="hybrid")
