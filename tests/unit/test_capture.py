"""Capture on a tiny random Llama: shapes, keep rules, log-probs and padding invariance."""

import pytest
import torch

from truthtrace.traces.capture import DEFAULT_TEMPLATE, CaptureOptions, build_prompt_ids, forward_traces, generate_answers
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS, TOKEN_IDS, layer_key

QUESTIONS = ["What is the capital of France?", "Who wrote Hamlet?", "How many legs does a spider have?"]


@pytest.fixture(scope="module")
def batch(tiny_model, tiny_tokenizer):
    prompts = [build_prompt_ids(tiny_tokenizer, q, DEFAULT_TEMPLATE) for q in QUESTIONS]
    answers = generate_answers(tiny_model, tiny_tokenizer, prompts, max_new_tokens=6)
    return prompts, answers


def test_prompt_uses_chat_template(tiny_tokenizer):
    ids = build_prompt_ids(tiny_tokenizer, "Who wrote Hamlet?", DEFAULT_TEMPLATE)
    text = tiny_tokenizer.decode(ids)
    assert text.startswith("<|im_start|>user\n") and text.endswith("<|im_start|>assistant\n")
    plain = build_prompt_ids(tiny_tokenizer, "Who wrote Hamlet?", DEFAULT_TEMPLATE, use_chat_template=False)
    assert "<|im_start|>" not in tiny_tokenizer.decode(plain)


def test_answers_stop_before_eos(tiny_model, tiny_tokenizer, batch):
    _, answers = batch
    for a in answers:
        assert 1 <= len(a) <= 6
        assert tiny_tokenizer.eos_token_id not in a[1:]


def test_shapes_for_all_tokens(tiny_model, tiny_tokenizer, batch):
    prompts, answers = batch
    seqs = [p + a for p, a in zip(prompts, answers)]
    traces = forward_traces(tiny_model, seqs, [len(p) for p in prompts], CaptureOptions(), tiny_tokenizer.pad_token_id)
    for seq, p, tr in zip(seqs, prompts, traces):
        t, a = len(seq), len(seq) - len(p)
        assert tr[TOKEN_IDS].tolist() == seq
        assert tr[layer_key(0, "hidden")].shape == (t, 32)
        assert tr[layer_key(2, "hidden")].shape == (t, 32)
        assert tr[layer_key(1, "attn")].shape == (2, t, t)
        assert torch.allclose(tr[layer_key(1, "attn")].sum(-1), torch.ones(2, t), atol=1e-5)
        assert torch.all(torch.triu(tr[layer_key(0, "attn")], diagonal=1) == 0)
        assert tr[ANSWER_LOGPROBS].shape == (a,) and tr[ANSWER_ENTROPY].shape == (a,)
        assert torch.all(tr[ANSWER_LOGPROBS] <= 0) and torch.all(tr[ANSWER_ENTROPY] >= 0)


@pytest.mark.parametrize("keep, expect", [("answer", "A"), ("last:3", 3)])
def test_keep_rules(tiny_model, tiny_tokenizer, batch, keep, expect):
    prompts, answers = batch
    seqs = [p + a for p, a in zip(prompts, answers)]
    opts = CaptureOptions(hidden_layers=(1,), attn_layers=(0,), keep=keep)
    traces = forward_traces(tiny_model, seqs, [len(p) for p in prompts], opts, tiny_tokenizer.pad_token_id)
    for seq, p, tr in zip(seqs, prompts, traces):
        k = len(seq) - len(p) if expect == "A" else expect
        assert set(tr) == {TOKEN_IDS, ANSWER_LOGPROBS, ANSWER_ENTROPY, "layers.1.hidden", "layers.0.attn"}
        assert tr["layers.1.hidden"].shape == (k, 32)
        assert tr["layers.0.attn"].shape == (2, k, len(seq))


def test_logprobs_match_manual_and_batch_is_padding_invariant(tiny_model, tiny_tokenizer, batch):
    prompts, answers = batch
    seqs = [p + a for p, a in zip(prompts, answers)]
    batched = forward_traces(tiny_model, seqs, [len(p) for p in prompts], CaptureOptions(), tiny_tokenizer.pad_token_id)
    for seq, p, tr in zip(seqs, prompts, batched):
        with torch.no_grad():
            out = tiny_model(torch.tensor([seq]), output_hidden_states=True, output_attentions=True)
        logp = torch.log_softmax(out.logits[0].float(), -1)
        manual = torch.stack([logp[j - 1, seq[j]] for j in range(len(p), len(seq))])
        torch.testing.assert_close(tr[ANSWER_LOGPROBS], manual, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(tr["layers.2.hidden"], out.hidden_states[2][0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(tr["layers.1.attn"], out.attentions[1][0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("keep", ["all", "answer", "last:2"])
def test_capture_in_generation_equals_forward_pass(tiny_model, tiny_tokenizer, batch, keep):
    from truthtrace.traces.capture import generate_with_traces

    prompts, answers = batch
    opts = CaptureOptions(keep=keep)
    gen_answers, gen = generate_with_traces(tiny_model, tiny_tokenizer, prompts, opts, max_new_tokens=6)
    assert gen_answers == answers
    seqs = [p + a for p, a in zip(prompts, answers)]
    fwd = forward_traces(tiny_model, seqs, [len(p) for p in prompts], opts, tiny_tokenizer.pad_token_id)
    for g, f in zip(gen, fwd):
        assert g.keys() == f.keys()
        for key in f:
            torch.testing.assert_close(g[key], f[key], atol=1e-4, rtol=1e-4, msg=key)
