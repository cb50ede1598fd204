"""Capture and storage with answers that stop early and unevenly (a tiny model whose EOS logit is raised along a
hidden direction), and a bf16 model whose stored traces equal a live bf16 forward pass.

The shared tiny test model never emits EOS, so every answer runs to max_new_tokens and ragged batches,
early stopping and the stitching of generation steps into traces were never exercised.
"""

import pytest
import torch
from conftest import EOS_QUESTIONS, make_tiny_model

from truthtrace.data import Question
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS, TOKEN_IDS, layer_key
from truthtrace.store import TraceStore
from truthtrace.traces.capture import (CaptureOptions, forward_traces,
                                       generate_answers, generate_with_traces)
from truthtrace.traces.extract import ExtractConfig, extract

MAX_NEW = 8
EOS = 2


def test_answers_are_ragged_and_stop_at_eos(eos_model, tiny_tokenizer, eos_prompts):
    answers = generate_answers(eos_model, tiny_tokenizer, eos_prompts, max_new_tokens=MAX_NEW)
    lengths = [len(a) for a in answers]
    assert min(lengths) < MAX_NEW and max(lengths) == MAX_NEW and len(set(lengths)) >= 3, lengths
    for p, a in zip(eos_prompts, answers):  # each short answer is followed by EOS when run alone
        if len(a) < MAX_NEW:
            with torch.no_grad():
                nxt = eos_model(torch.tensor([p + a])).logits[0, -1].argmax()
            assert int(nxt) == EOS and EOS not in a


@pytest.mark.parametrize("keep", ["all", "answer", "last:3"])
def test_generation_capture_equals_forward_pass_on_ragged_answers(eos_model, tiny_tokenizer, eos_prompts, keep):
    opts = CaptureOptions(keep=keep)
    answers, gen = generate_with_traces(eos_model, tiny_tokenizer, eos_prompts, opts, max_new_tokens=MAX_NEW)
    assert answers == generate_answers(eos_model, tiny_tokenizer, eos_prompts, max_new_tokens=MAX_NEW)
    seqs = [p + a for p, a in zip(eos_prompts, answers)]
    fwd = forward_traces(eos_model, seqs, [len(p) for p in eos_prompts], opts, tiny_tokenizer.pad_token_id)
    for p, a, g, f in zip(eos_prompts, answers, gen, fwd):
        assert g[ANSWER_LOGPROBS].shape == (len(a),) == g[ANSWER_ENTROPY].shape  # no step after EOS kept
        assert g.keys() == f.keys()
        for key in f:
            torch.testing.assert_close(g[key], f[key], atol=1e-4, rtol=1e-4, msg=key)


def test_extract_stores_ragged_answers_identically_in_both_capture_modes(eos_model, tiny_tokenizer, tmp_path):
    qs = [Question(id=f"q{i}", question=q, answers=("x",), category="c") for i, q in enumerate(EOS_QUESTIONS)]
    for mode in ("forward", "generate"):
        cfg = ExtractConfig(model="tiny", batch_size=3, max_new_tokens=MAX_NEW, capture=mode, storage_dtype="float32")
        extract(qs, tmp_path / mode, cfg, eos_model, tiny_tokenizer, progress=False)
    fwd, gen = TraceStore(tmp_path / "forward"), TraceStore(tmp_path / "generate")
    n_answer = [fwd.meta(t)["n_answer_tokens"] for t in fwd.ids()]
    assert len(set(n_answer)) >= 3 and min(n_answer) < MAX_NEW
    for t in fwd.ids():
        assert fwd.meta(t) == gen.meta(t)
        for key in fwd.keys(t):
            torch.testing.assert_close(gen.read(t, key), fwd.read(t, key), atol=1e-4, rtol=1e-4, msg=key)


def test_bf16_stored_traces_equal_a_live_bf16_forward(eos_model, tiny_tokenizer, tmp_path):
    """What `make run` does: the model in bf16, traces stored as float16; each equals a live bf16 pass.

    Measured here: max |stored - live| 2.8e-9 (hidden), 0 (attention, log-probs). The tolerance 1e-3 is well
    below bf16's resolution (7.8e-3 relative), so traces computed in another dtype than the live model would fail.
    """
    model = make_tiny_model(len(tiny_tokenizer), seed=2).to(torch.bfloat16)
    with torch.no_grad():
        model.lm_head.weight.copy_(eos_model.lm_head.weight.to(torch.bfloat16))
    qs = [Question(id=f"q{i}", question=q, answers=("x",), category="c") for i, q in enumerate(EOS_QUESTIONS)]
    cfg = ExtractConfig(model="tiny", batch_size=4, max_new_tokens=MAX_NEW, model_dtype="bfloat16")
    extract(qs, tmp_path / "s", cfg, model, tiny_tokenizer, progress=False)
    store = TraceStore(tmp_path / "s")
    assert store.schema["model_dtype"] == "bfloat16" and store.schema["storage_dtype"] == "float16"
    for t in store.ids():
        ids = store.read(t, TOKEN_IDS).long()[None]
        n_answer = store.meta(t)["n_answer_tokens"]
        with torch.no_grad():
            out = model(ids, output_hidden_states=True, output_attentions=True)
        for i in range(3):
            live = out.hidden_states[i][0].float()
            torch.testing.assert_close(store.read(t, layer_key(i, "hidden")).float(), live, atol=1e-3, rtol=1e-3)
        for i in range(2):
            torch.testing.assert_close(store.read(t, layer_key(i, "attn")).float(), out.attentions[i][0].float(),
                                       atol=1e-3, rtol=1e-3)
        logp = torch.log_softmax(out.logits[0].float(), -1)
        seq = ids[0]
        manual = torch.stack([logp[j - 1, seq[j]] for j in range(len(seq) - n_answer, len(seq))])
        torch.testing.assert_close(store.read(t, ANSWER_LOGPROBS).float(), manual, atol=1e-3, rtol=1e-3)
