"""Reference check: perplexity and max entropy equal a plain ``transformers`` recomputation.

The pipeline (capture -> ``scalar.logprob_stats`` -> detectors) is compared with ``model.generate(...,
return_dict_in_generate=True, output_logits=True, output_scores=True)`` run one prompt at a time. What
reproduces it: the RAW logits (``output_logits``), natural-log softmax over the full vocabulary at temperature 1,
the answer tokens only (every generated token before the first stop token; the stop token itself is not
counted unless the answer is that one token). What does not: the PROCESSED ``output_scores`` once any logits
processor is active (repetition penalty, or temperature/top-p when sampling), and counting the stop token.
"""

import numpy as np
import pytest
import torch

from truthtrace.detectors.baselines import STATS, MaxEntropyDetector, PerplexityDetector
from truthtrace.features.scalars import logprob_stats
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS
from truthtrace.traces.capture import (CaptureOptions, forward_traces,
                                       generate_answers, stop_ids)

MAX_NEW = 8
TOL = 1e-4


def pipeline_scores(model, tok, eos_prompts):
    """The pipeline's answers and (perplexity, max_entropy) scores ``(n,)`` each."""
    answers = generate_answers(model, tok, eos_prompts, max_new_tokens=MAX_NEW)
    seqs = [p + a for p, a in zip(eos_prompts, answers)]
    traces = forward_traces(model, seqs, [len(p) for p in eos_prompts], CaptureOptions(hidden_layers=(0,),
                                                                                   attentions=False),
                            tok.pad_token_id)
    stats = np.stack([logprob_stats(t[ANSWER_LOGPROBS], t[ANSWER_ENTROPY]).numpy() for t in traces])
    batch = [{STATS: stats}]
    return answers, PerplexityDetector().score(batch), MaxEntropyDetector().score(batch)


@torch.no_grad()
def plain_generate(model, tok, prompt, **gen):
    """One prompt through plain ``generate``: generated ids ``(N,)``, raw logits and processed scores ``(N, V)``."""
    ids = torch.tensor([prompt])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=MAX_NEW,
                         pad_token_id=tok.pad_token_id, return_dict_in_generate=True, output_logits=True,
                         output_scores=True, **gen)
    return out.sequences[0, ids.shape[1]:], torch.cat(out.logits).float(), torch.cat(out.scores).float()


def plain_scores(tokens, logits, stops, count_stop=False):
    """Perplexity (minus the mean log-prob) and max entropy of one answer from per-step logits ``(N, V)``.

    ``count_stop=False`` keeps the steps before the first stop token (one step when the answer starts with it);
    True also counts the step that produced the stop token.
    """
    cut = next((j for j, t in enumerate(tokens.tolist()) if t in stops), len(tokens))
    n = max(cut + int(count_stop and cut < len(tokens)), 1)
    logp = torch.log_softmax(logits[:n], dim=-1)  # (n, V), natural log, full vocabulary
    lp = logp.gather(1, tokens[:n, None]).squeeze(1)
    ent = -(logp.exp() * torch.where(logp.isinf(), 0.0, logp)).sum(-1)  # 0 log 0 = 0 under -inf scores
    return float(-lp.mean()), float(ent.max())


def test_raw_logits_at_the_answer_tokens_reproduce_the_pipeline(eos_model, tiny_tokenizer, eos_prompts):
    answers, ppl, maxent = pipeline_scores(eos_model, tiny_tokenizer, eos_prompts)
    assert len({len(a) for a in answers}) >= 3 and min(len(a) for a in answers) < MAX_NEW  # ragged, some stop
    stops = stop_ids(eos_model, tiny_tokenizer)
    for i, p in enumerate(eos_prompts):
        tokens, logits, scores = plain_generate(eos_model, tiny_tokenizer, p, do_sample=False)
        assert tokens[:len(answers[i])].tolist() == answers[i]
        ref_ppl, ref_ent = plain_scores(tokens, logits, stops)
        assert abs(ref_ppl - ppl[i]) < TOL and abs(ref_ent - maxent[i]) < TOL, (i, ref_ppl, ppl[i])
        # greedy with no processor configured: the processed scores are the raw logits
        assert torch.allclose(scores, logits, atol=1e-6)


def test_counting_the_stop_token_changes_the_scores(eos_model, tiny_tokenizer, eos_prompts):
    answers, ppl, maxent = pipeline_scores(eos_model, tiny_tokenizer, eos_prompts)
    stops = stop_ids(eos_model, tiny_tokenizer)
    diffs = []
    for i, p in enumerate(eos_prompts):
        tokens, logits, _ = plain_generate(eos_model, tiny_tokenizer, p, do_sample=False)
        ref_ppl, ref_ent = plain_scores(tokens, logits, stops, count_stop=True)
        diffs.append(max(abs(ref_ppl - ppl[i]), abs(ref_ent - maxent[i])))
    stopped = [d for d, a in zip(diffs, answers) if len(a) < MAX_NEW]
    assert stopped and all(d > 1e-3 for d in stopped)  # every answer that stopped early differs
    assert all(d < TOL for d, a in zip(diffs, answers) if len(a) == MAX_NEW)  # no stop token: the same


@pytest.mark.parametrize("gen", [dict(do_sample=False, repetition_penalty=3.0),
                                 dict(do_sample=True, temperature=0.5, top_p=1.0)])
def test_processed_scores_differ_from_raw_logits(eos_model, tiny_tokenizer, eos_prompts, gen):
    """``output_scores`` are the logits after the processors: a repetition penalty, or a temperature when
    sampling (a model's generation_config may set either), changes them, so scores read from them no longer
    match the raw-logit pipeline on the very same tokens."""
    stops = stop_ids(eos_model, tiny_tokenizer)
    torch.manual_seed(0)
    worst = 0.0
    for p in eos_prompts:
        tokens, logits, scores = plain_generate(eos_model, tiny_tokenizer, p, **gen)
        raw, processed = plain_scores(tokens, logits, stops), plain_scores(tokens, scores, stops)
        worst = max(worst, abs(raw[0] - processed[0]), abs(raw[1] - processed[1]))
    assert worst > 1e-2
