"""Extraction throughput on the embedded default model, variants side by side in one run.

    .venv/bin/python bench/bench_extract.py [--n 64] [--batch-size 16] [--threads 2]

Variants (same questions, same batch size, greedy, 24 new tokens):
  generate-only         generation alone, no capture (the floor)
  generate+forward      generation, then one forward pass with hidden states and attentions
                        (what `truthtrace extract` does)
  capture-in-generate   hidden states and attentions taken from the generation steps and
                        stitched into the same tensors (`--capture generate`): no second pass
  extract ...           the full stage, including writing the fp16 trace store
Prints questions/s and ratios to generate+forward. Run on a quiet machine.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time

import torch

from truthtrace.traces.capture import (DEFAULT_TEMPLATE, CaptureOptions, build_prompt_ids, forward_traces, generate_answers,
                                generate_with_traces)
from truthtrace.data import load_bundled
from truthtrace.traces.extract import ExtractConfig, extract
from truthtrace.models import load_model


def _batches(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def run_capture(model, tok, questions, batch_size, mode) -> float:
    """Seconds to process ``questions`` in ``mode`` (no storage)."""
    t0 = time.perf_counter()
    for qs in _batches(questions, batch_size):
        prompts = [build_prompt_ids(tok, q.question, DEFAULT_TEMPLATE) for q in qs]
        if mode == "capture-in-generate":
            generate_with_traces(model, tok, prompts, CaptureOptions(), 24)
            continue
        answers = generate_answers(model, tok, prompts, 24)
        if mode == "generate+forward":
            seqs = [p + a for p, a in zip(prompts, answers)]
            forward_traces(model, seqs, [len(p) for p in prompts], CaptureOptions(), tok.pad_token_id)
    return time.perf_counter() - t0


def run_extract(questions, batch_size, dtype, capture="forward") -> float:
    out = tempfile.mkdtemp(prefix="tt-bench-")
    try:
        cfg = ExtractConfig(model_dtype=dtype, batch_size=batch_size, overwrite=True, capture=capture)
        t0 = time.perf_counter()
        extract(questions, out, cfg, progress=False)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    questions = load_bundled(n=args.n, seed=1)
    model, tok = load_model(device="cpu")
    run_capture(model, tok, questions[: args.batch_size], args.batch_size, "generate+forward")  # warm-up
    rows = {}
    for mode in ("generate-only", "generate+forward", "capture-in-generate"):
        rows[mode] = run_capture(model, tok, questions, args.batch_size, mode)
    bf16, _ = load_model(device="cpu", dtype="bfloat16")
    rows["generate+forward bf16 model"] = run_capture(bf16, tok, questions, args.batch_size, "generate+forward")
    rows["extract fp32 (with store)"] = run_extract(questions, args.batch_size, "float32")
    rows["extract fp32 --capture generate (with store)"] = run_extract(questions, args.batch_size, "float32", "generate")
    rows["extract bf16 model (with store)"] = run_extract(questions, args.batch_size, "bfloat16")
    rows["extract bf16 model --capture generate (with store)"] = run_extract(
        questions, args.batch_size, "bfloat16", "generate")
    base = len(questions) / rows["generate+forward"]
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, {len(questions)} questions, batch {args.batch_size}")
    print("| variant | questions/s | vs generate+forward |\n|---|---|---|")
    for name, secs in rows.items():
        qps = len(questions) / secs
        print(f"| {name} | {qps:.2f} | {qps / base:.2f}x |")


if __name__ == "__main__":
    main()
