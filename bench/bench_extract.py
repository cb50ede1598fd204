"""Extraction throughput on the embedded default model, variants side by side in one run.

    .venv/bin/python bench/bench_extract.py [--n 64] [--batch-size 16] [--threads 2] [--only all|backends]

Variants (same questions, same batch size, greedy, 24 new tokens):
  generate-only         generation alone, no capture (the floor)
  generate+forward      generation, then one forward pass with hidden states and attentions
                        (what `truthtrace extract` does)
  capture-in-generate   hidden states and attentions taken from the generation steps and
                        stitched into the same tensors (`--capture generate`): no second pass
  extract ...           the full stage, including writing the fp16 trace store
Prints questions/s and ratios to generate+forward. Run on a quiet machine.

Then the attention backends side by side (``--only backends`` runs just these), for both capture modes, on
one loaded model, taking turns round by round (rates over all rounds): the extract stage with every layer
eager and all 30 maps stored (the default), every layer eager keeping 4 maps (``--attn-layers 0,10,20,29
--attn-backend eager``), and hybrid keeping the same 4 (those eager, 26 SDPA: what ``auto`` picks); then one
capture pass over 4 x 512 random tokens, eager vs hybrid (attention's share grows with T^2); then max
|hybrid - eager| of the logits, hidden states and kept maps of one padded batch, and the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time

import torch

from truthtrace.data import load_bundled
from truthtrace.machine import machine_info
from truthtrace.models import load_model
from truthtrace.models.attention import attention_by_layer, attention_implementation, hybrid_implementation
from truthtrace.traces.capture import (
    DEFAULT_TEMPLATE,
    CaptureOptions,
    build_prompt_ids,
    forward_traces,
    generate_answers,
    generate_with_traces,
)
from truthtrace.traces.extract import ExtractConfig, extract

KEPT_LAYERS = [0, 10, 20, 29]  # attention maps kept for 4 of SmolLM2's 30 layers


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


BACKEND_VARIANTS = {  # name -> ExtractConfig fields
    "eager, maps of all 30 layers (the default)": dict(attn_backend="eager"),
    "eager, maps of 4 layers (--attn-backend eager)": dict(attn_layers=KEPT_LAYERS, attn_backend="eager"),
    "hybrid, maps of 4 layers (auto)": dict(attn_layers=KEPT_LAYERS, attn_backend="auto"),
}


def run_backends(model, tok, questions, batch_size, rounds: int) -> dict[tuple[str, str], float]:
    """Seconds of the extract stage per (capture, variant of :data:`BACKEND_VARIANTS`); the variants take turns
    in a rotating order, round by round."""
    totals: dict[tuple[str, str], float] = {}
    names = list(BACKEND_VARIANTS)
    for capture in ("forward", "generate"):
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                out = tempfile.mkdtemp(prefix="tt-bench-")
                try:
                    cfg = ExtractConfig(batch_size=batch_size, overwrite=True, capture=capture,
                                        **BACKEND_VARIANTS[name])
                    seconds = extract(questions, out, cfg, model, tok, progress=False)["seconds"]
                finally:
                    shutil.rmtree(out, ignore_errors=True)
                totals[capture, name] = totals.get((capture, name), 0.0) + seconds
    return totals


def run_long(model, rounds: int, batch: int = 4, length: int = 512) -> dict[str, float]:
    """Seconds of :func:`forward_traces` (maps of 4 layers, every hidden state) over ``batch`` random sequences
    of ``length`` tokens (the last 24 the answer), eager vs hybrid taking turns."""
    gen = torch.Generator().manual_seed(0)
    seqs = torch.randint(100, 40000, (batch, length), generator=gen).tolist()
    opts, totals = CaptureOptions(attn_layers=tuple(KEPT_LAYERS)), {"eager": 0.0, "hybrid": 0.0}
    for r in range(rounds):
        for name in (("eager", "hybrid") if r % 2 == 0 else ("hybrid", "eager")):
            impl = name if name == "eager" else hybrid_implementation(KEPT_LAYERS)
            with attention_implementation(model, impl):
                t0 = time.perf_counter()
                forward_traces(model, seqs, [length - 24] * batch, opts, 0)
                totals[name] += time.perf_counter() - t0
    return totals


@torch.no_grad()
def backend_differences(model, tok, questions) -> dict[str, float]:
    """max |hybrid - eager| over the real tokens of one right-padded batch of prompts (+ answers)."""
    prompts = [build_prompt_ids(tok, q.question, DEFAULT_TEMPLATE) for q in questions]
    seqs = [p + a for p, a in zip(prompts, generate_answers(model, tok, prompts, 24))]
    width = max(map(len, seqs))
    ids = torch.tensor([s + [tok.pad_token_id] * (width - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    runs = {}
    for name in ("eager", hybrid_implementation(KEPT_LAYERS)):
        with attention_implementation(model, name):
            out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
            runs[name] = (out, attention_by_layer(model, out.attentions))
    (e, e_maps), (h, h_maps) = runs.values()
    valid = mask.bool()
    return {"logits": (h.logits[valid] - e.logits[valid]).abs().max().item(),
            "hidden states (31)": max((a[valid] - b[valid]).abs().max().item()
                                      for a, b in zip(h.hidden_states, e.hidden_states)),
            "attention maps (4 kept)": max((h_maps[i] - e_maps[i]).abs().max().item() for i in KEPT_LAYERS),
            "largest |logit|": e.logits[valid].abs().max().item(),
            "largest |hidden|": max(h[valid].abs().max().item() for h in e.hidden_states)}


def print_backends(model, tok, questions, args) -> None:
    """The eager vs hybrid tables and the equality numbers."""
    load_start, info = os.getloadavg(), machine_info()
    secs = run_backends(model, tok, questions, args.batch_size, args.rounds)
    long = run_long(model, args.rounds)
    diffs = backend_differences(model, tok, questions[: args.batch_size])
    n = len(questions) * args.rounds
    print(f"\nattention backends: {len(questions)} questions x {args.rounds} rounds per row, batch {args.batch_size}, "
          f"fp32 model, fp16 store; {info['cpu']}, {info['cores']} cores, {info['torch_threads']} torch threads, "
          f"torch {info['torch']}; load average {' '.join(f'{x:.2f}' for x in load_start)} before, "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} after")
    print("| extract | questions/s | vs eager, 4 maps | vs eager, 30 maps |\n|---|---|---|---|")
    for capture in ("forward", "generate"):
        rate = {name: n / secs[capture, name] for name in BACKEND_VARIANTS}
        every, four, _ = rate.values()
        for name, qps in rate.items():
            print(f"| --capture {capture}, {name} | {qps:.2f} | {qps / four:.2f}x | {qps / every:.2f}x |")
    print(f"| forward_traces, 4 x 512 random tokens, maps of 4 layers: eager | {args.rounds * 4 / long['eager']:.2f} "
          f"seq/s | | |\n| same, hybrid | {args.rounds * 4 / long['hybrid']:.2f} seq/s | "
          f"{long['eager'] / long['hybrid']:.2f}x | |")
    print("max |hybrid - eager| (fp32, one batch): " + ", ".join(f"{k} {v:.3g}" for k, v in diffs.items()))


def print_variants(model, tok, questions, args) -> None:
    """The capture variants and the extract stage, ratios to generate+forward."""
    run_capture(model, tok, questions[: args.batch_size], args.batch_size, "generate+forward")  # warm-up
    rows = {}
    for mode in ("generate-only", "generate+forward", "capture-in-generate"):
        rows[mode] = run_capture(model, tok, questions, args.batch_size, mode)
    bf16, _ = load_model(device="cpu", dtype="bfloat16")
    rows["generate+forward bf16 model"] = run_capture(bf16, tok, questions, args.batch_size, "generate+forward")
    rows["extract fp32 (with store)"] = run_extract(questions, args.batch_size, "float32")
    rows["extract fp32 --capture generate (with store)"] = run_extract(
        questions, args.batch_size, "float32", "generate")
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="rounds per backend in the side by side")
    ap.add_argument("--only", choices=("all", "backends"), default="all")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    questions = load_bundled(n=args.n, seed=1)
    model, tok = load_model(device="cpu")
    if args.only == "all":
        print_variants(model, tok, questions, args)
    else:
        run_capture(model, tok, questions[: args.batch_size], args.batch_size, "generate+forward")  # warm-up
    print_backends(model, tok, questions, args)


if __name__ == "__main__":
    main()
