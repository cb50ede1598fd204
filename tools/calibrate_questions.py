"""Measure how often the default model answers a stratified sample of bundled questions.

    .venv/bin/python tools/calibrate_questions.py --n 150 --seed 0 --model /tmp/smol_st \
        --out /tmp/calibration.jsonl

Prompting matches the extract stage's default: the chat template with the user message
"Answer with a few words only.\\nQuestion: {question}", generation prompt added, greedy
decoding, ``max_new_tokens=24``, batches of 16 with left padding. Answers are scored with
``truthtrace.labels.score`` (default rule ``contains_or_exact``). The goal for the bundled set is
an overall rate correct between 30% and 70%.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import torch

from truthtrace.data import load_bundled
from truthtrace.labels.score import LabelConfig, answer_span, score_answer

PROMPT = "Answer with a few words only.\nQuestion: {question}"


def generate(model, tok, questions: list[str], batch_size: int, max_new_tokens: int) -> list[str]:
    """Greedy answers for ``questions`` (raw decoded text, special tokens kept)."""
    tok.padding_side = "left"
    out = []
    for i in range(0, len(questions), batch_size):
        prompts = [tok.apply_chat_template([{"role": "user", "content": PROMPT.format(question=q)}],
                                           tokenize=False, add_generation_prompt=True)
                   for q in questions[i:i + batch_size]]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)  # (b, prompt + new)
        new = ids[:, enc["input_ids"].shape[1]:]
        out += tok.batch_decode(new, skip_special_tokens=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="/tmp/smol_st")
    parser.add_argument("--n", type=int, default=150, help="sample size; 0 = every question")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rule", default="contains_or_exact")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--out", default=None, help="write one JSON line per question here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = LabelConfig(rule=args.rule)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    questions = load_bundled(n=args.n or None, seed=args.seed)
    start = time.time()
    gens = generate(model, tok, [q.question for q in questions], args.batch_size, args.max_new_tokens)
    per_cat: dict[str, list[int]] = defaultdict(list)
    rows = []
    for q, gen in zip(questions, gens):
        scores = score_answer(answer_span(gen, config.span), q.answers)
        correct = int(config.is_correct(scores))
        per_cat[q.category].append(correct)
        rows.append({"id": q.id, "category": q.category, "question": q.question,
                     "answers": list(q.answers), "generation": answer_span(gen, "full"),
                     **scores, "correct": correct})
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    print(f"{'category':14s} {'n':>4s} {'correct':>8s} {'rate':>6s}")
    for cat in sorted(per_cat):
        v = per_cat[cat]
        print(f"{cat:14s} {len(v):4d} {sum(v):8d} {sum(v) / len(v):6.2f}")
    total = [c for v in per_cat.values() for c in v]
    print(f"{'overall':14s} {len(total):4d} {sum(total):8d} {sum(total) / len(total):6.2f}"
          f"   ({time.time() - start:.0f}s, rule={args.rule})")


if __name__ == "__main__":
    main()
