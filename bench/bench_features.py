"""Features in the forward pass vs full-trace capture on a 7B-shaped random Llama.

    .venv/bin/python bench/bench_features.py [--layers 4] [--tokens 512] [--batch 2] [--threads 2]

A random LlamaForCausalLM built from a config (d = 4096, 32 heads, 32 KV heads, MLP 11008, ``--layers``
blocks, vocab 1024, float32), the same ``--batch`` random sequences of ``--tokens`` tokens (the last 24 the
answer) through each path, each in a fresh subprocess so its peak RSS is its own:

  features   ``truthtrace.features.forward.forward_records``: every layer reduced while it runs (all hidden
             layers, all attention layers, graphs on every layer: 64 nodes, top-4 edges), SDPA outputs
  traces     ``truthtrace.traces.capture.forward_traces`` with every layer eager: all hidden states
             ``(L+1, T, d)`` and attention maps ``(L, H, T, T)``, what ``extract`` stores
  model      only building the model and its input (the floor both share)

Prints peak RSS, RSS above the model, wall time of the pass, and bytes per sample (float16 as the stores
keep them, before compression; graph node features projected to 64 dimensions by a random orthonormal
basis, as the PCA stores them), then the load average and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from truthtrace.features.direct import project_nodes
from truthtrace.features.passes import forward_records
from truthtrace.features.record import feature_cast
from truthtrace.machine import load_average, machine_info, peak_memory_mb
from truthtrace.models.attention import attention_implementation
from truthtrace.traces.capture import CaptureOptions, forward_traces

ANSWER = 24


def build(layers: int, tokens: int, batch: int):
    """The random 7B-shaped model and ``batch`` random sequences of ``tokens`` tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=1024, hidden_size=4096, intermediate_size=11008, num_hidden_layers=layers,
                      num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                      pad_token_id=0, attn_implementation="sdpa")
    model = LlamaForCausalLM(cfg).eval()
    seqs = torch.randint(4, 1024, (batch, tokens)).tolist()
    return model, seqs, [tokens - ANSWER] * batch


def rss_mb() -> float:
    """Current resident memory of this process in MB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def nbytes(records: list[dict]) -> int:
    """Float16 bytes (floats) or own-dtype bytes of every tensor of ``records``, per sample."""
    total = sum(feature_cast(t).numel() * feature_cast(t).element_size() for r in records for t in r.values())
    return total // len(records)


def child(mode: str, layers: int, tokens: int, batch: int) -> dict:
    """One measurement in this process: build, run ``mode`` once, report."""
    model, seqs, n_prompt = build(layers, tokens, batch)
    base = rss_mb()
    t0 = time.perf_counter()
    with torch.no_grad():
        if mode == "features":
            schema = {"hidden_layers": list(range(layers + 1)), "attn_layers": list(range(layers)), "n_heads": 32,
                      "graph": {"layers": list(range(layers)), "max_nodes": 64, "top_k": 4, "threshold": None}}
            records = forward_records(model, seqs, n_prompt, schema, "all", 0)
            pca = torch.zeros(layers, 4096), torch.linalg.qr(torch.randn(layers, 4096, 64)).Q.transpose(1, 2)
            per_sample = nbytes([project_nodes(r, schema, pca) for r in records])  # node_dim 64, as stored
        elif mode == "traces":
            with attention_implementation(model, "eager"):
                per_sample = nbytes(forward_traces(model, seqs, n_prompt, CaptureOptions(), 0))
        else:
            per_sample = 0
    return {"mode": mode, "seconds": round(time.perf_counter() - t0, 1), "model_rss_mb": round(base),
            "peak_rss_mb": round(peak_memory_mb()), "bytes_per_sample": per_sample}


def main() -> None:
    """Run each mode in a fresh subprocess and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(child(args.child, args.layers, args.tokens, args.batch)))
        return
    print(f"7B-shaped random Llama: d 4096, 32 heads, {args.layers} layers, vocab 1024, float32; "
          f"{args.batch} x {args.tokens} tokens; load {load_average()}")
    rows = []
    for mode in ("model", "features", "traces"):
        cmd = [sys.executable, __file__, "--child", mode] + [f"--{k}={getattr(args, k)}" for k in
                                                             ("layers", "tokens", "batch", "threads")]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=dict(os.environ))
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    floor = rows[0]["peak_rss_mb"]
    print("\n| path | peak RSS MB | above model MB | pass s | bytes / sample |\n|---|---|---|---|---|")
    for r in rows[1:]:
        print(f"| {r['mode']} | {r['peak_rss_mb']} | {r['peak_rss_mb'] - floor} | {r['seconds']} | "
              f"{r['bytes_per_sample']:,} |")
    print(f"\nmodel only: peak RSS {floor} MB; load average after {load_average()}")
    print(json.dumps(machine_info()))


if __name__ == "__main__":
    main()
