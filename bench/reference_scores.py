"""Reference check: the pipeline's perplexity / max entropy against plain ``transformers`` generate.

    TRUTHTRACE_CACHE=/tmp/ttcache OMP_NUM_THREADS=1 .venv/bin/python bench/reference_scores.py --n 60

The pipeline: greedy ``generate``, answers cut before the first stop token, one forward pass, log-softmax of the
raw logits (natural log, full vocabulary, temperature 1) at the answer tokens; perplexity = minus the mean
answer log-prob, max entropy = the largest answer-token entropy. The plain recomputation reads
``generate(return_dict_in_generate=True, output_logits=True, output_scores=True)`` one prompt at a time, under
three definitions: the pipeline's positions (raw logits), the stop token counted too, and every step of a
left-padded batch of 16 (the stop token and the padding steps after it) as a quick script does. Labels:
contains_or_exact on the answer's first sentence, as ``truthtrace label``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from truthtrace import metrics
from truthtrace.data.questions import load_bundled
from truthtrace.features.scalars import logprob_stats
from truthtrace.labels.rules import verdict
from truthtrace.labels.score import answer_span, score_answer
from truthtrace.machine import peak_memory
from truthtrace.models.load import load_model
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS
from truthtrace.traces.capture import (CaptureOptions, fitting_prompts, forward_traces, generate_answers,
                                       left_pad, stop_ids)
from truthtrace.traces.extract import ExtractConfig

BATCH = 16


def pipeline_scores(model, tok, prompts, max_new):
    """Answers and ``(n, 2)`` pipeline scores (perplexity, max entropy), in batches as extract runs."""
    answers, rows = [], []
    opts = CaptureOptions(hidden_layers=(0,), attentions=False)
    for i in range(0, len(prompts), BATCH):
        chunk = prompts[i:i + BATCH]
        ans = generate_answers(model, tok, chunk, max_new_tokens=max_new)
        traces = forward_traces(model, [p + a for p, a in zip(chunk, ans)], [len(p) for p in chunk], opts,
                                tok.pad_token_id)
        for t in traces:
            st = logprob_stats(t[ANSWER_LOGPROBS], t[ANSWER_ENTROPY])
            rows.append([-float(st[0]), float(st[5])])
        answers += ans
    return answers, np.array(rows)


def step_scores(tokens, logits):
    """(perplexity, max entropy) of ``tokens`` ``(n,)`` from per-step logits ``(n, V)``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    lp = logp.gather(1, tokens[:, None]).squeeze(1)
    ent = -(logp.exp() * torch.where(logp.isinf(), 0.0, logp)).sum(-1)
    return float(-lp.mean()), float(ent.max())


@torch.no_grad()
def plain_scores(model, tok, prompts, max_new):
    """``(n, 3, 2)`` plain scores: [pipeline positions, + stop token, processed scores] x (ppl, max entropy)."""
    stops, out = stop_ids(model, tok), []
    for p in prompts:
        ids = torch.tensor([p])
        g = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new,
                           do_sample=False, pad_token_id=tok.pad_token_id, return_dict_in_generate=True,
                           output_logits=True, output_scores=True)
        toks, logits, scores = g.sequences[0, len(p):], torch.cat(g.logits), torch.cat(g.scores)
        cut = next((j for j, t in enumerate(toks.tolist()) if t in stops), len(toks))
        n, n_stop = max(cut, 1), min(cut + 1, len(toks))
        out.append([step_scores(toks[:n], logits[:n]), step_scores(toks[:n_stop], logits[:n_stop]),
                    step_scores(toks[:n], scores[:n])])
    return np.array(out)


@torch.no_grad()
def padded_batch_scores(model, tok, prompts, max_new):
    """``(n, 2)`` scores over every generated step of left-padded batches (stop and padding steps included)."""
    rows = []
    for i in range(0, len(prompts), BATCH):
        ids, mask = left_pad(prompts[i:i + BATCH], tok.pad_token_id)
        g = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new, do_sample=False,
                           pad_token_id=tok.pad_token_id, return_dict_in_generate=True, output_logits=True)
        logits = torch.stack(g.logits, dim=1)  # (B, N, V)
        for b in range(ids.shape[0]):
            rows.append(step_scores(g.sequences[b, ids.shape[1]:], logits[b]))
    return np.array(rows)


def main() -> None:
    """Print both AUROCs per definition and the max |diff| per question against the pipeline."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--model", default=ExtractConfig().model)
    args = ap.parse_args()
    t0 = time.perf_counter()
    cfg = ExtractConfig(model=args.model)
    model, tok = load_model(cfg.model, attn_implementation="sdpa")
    print("generation_config:", {k: v for k, v in model.generation_config.to_diff_dict().items()
                                 if k not in ("transformers_version",)})
    questions, prompts, _ = fitting_prompts(load_bundled(args.n), tok, cfg, model.config)
    answers, pipe = pipeline_scores(model, tok, prompts, cfg.max_new_tokens)
    texts = [tok.decode(a, skip_special_tokens=True).strip() for a in answers]
    y = np.array([1 - verdict("contains_or_exact", score_answer(answer_span(t, "sentence"), q.answers))
                  for t, q in zip(texts, questions)])
    plain, padded = plain_scores(model, tok, prompts, cfg.max_new_tokens), padded_batch_scores(
        model, tok, prompts, cfg.max_new_tokens)
    stopped = sum(len(a) < cfg.max_new_tokens for a in answers)
    print(f"{len(y)} questions, {int(y.sum())} hallucinated, {stopped} answers stopped before "
          f"max_new_tokens {cfg.max_new_tokens}")
    print(f"{'definition':44s} {'AUROC ppl':>9s} {'AUROC maxent':>12s} {'max|d| ppl':>10s} {'max|d| ent':>10s}")
    rows = [("pipeline (forward pass, store path)", pipe), ("plain: raw logits, answer tokens", plain[:, 0]),
            ("plain: raw logits + stop token", plain[:, 1]), ("plain: output_scores, answer tokens", plain[:, 2]),
            ("plain: padded batch, every step", padded)]
    for name, s in rows:
        d = np.abs(s - pipe).max(axis=0)
        print(f"{name:44s} {metrics.auroc(s[:, 0], y):9.3f} {metrics.auroc(s[:, 1], y):12.3f} "
              f"{d[0]:10.2e} {d[1]:10.2e}")
    print(f"{time.perf_counter() - t0:.1f} s, peak memory {peak_memory()}")


if __name__ == "__main__":
    main()
