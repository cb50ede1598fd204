"""Compression methods on the embedded default model, side by side in one run.

    TRUTHTRACE_CACHE=/tmp/ttcache .venv/bin/python bench/bench_compress.py [--threads 2] [--out runs/bench_compress]

Variants (each written by `truthtrace compress`, reloaded with `load_any`):
  fp32        the source model (baseline)
  fp16        --dtype fp16
  bf16-fast   --preset fast
  int8-torchao  --backend torchao --quant int8-weight (linear layers, kept quantized)
  small       --preset small (our int8 incl. embeddings, dequantized to fp32 on load)
  prune30-zstd  --prune 0.3 (global L1, zstd-compressed safetensors)
Prints disk MB, ratio vs fp32, perplexity on the bundled text sample, top-1 next-token agreement
with fp32, and latency (median of 5 after warm-up, batch 8 x 64 tokens, interleaved across
models); writes the table as JSON. Run on a quiet machine: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from truthtrace.compress import CompressConfig, compress
from truthtrace.models import load_any
from truthtrace.fileio import write_json_atomic
from truthtrace.models import DEFAULT_MODEL, resolve_model

VARIANTS = {
    "fp16": {"dtype": "fp16"},
    "bf16-fast": {"preset": "fast"},
    "int8-torchao": {"backend": "torchao", "quant": "int8-weight"},
    "small": {"preset": "small"},
    "prune30-zstd": {"prune": 0.3},
}
FALLBACK_TEXT = 20 * ("The river rises in the hills and runs west for two hundred miles before it reaches the sea. "
                      "Along its banks farmers grow wheat and barley, and in spring the water floods the fields. ")


def sample_text() -> str:
    """The bundled perplexity sample, else a built-in paragraph."""
    path = Path(__file__).resolve().parents[1] / "src/truthtrace/data/bundled/ppl_sample.txt"
    return path.read_text() if path.is_file() else FALLBACK_TEXT


@torch.inference_mode()
def text_logits(model, ids: torch.Tensor, window: int = 512) -> torch.Tensor:
    """Next-token logits over ``ids`` (N,) in non-overlapping windows -> (N - n_windows, vocab) float32 + targets."""
    logits, targets = [], []
    for i in range(0, ids.numel() - 1, window):
        chunk = ids[i:i + window + 1]
        out = model(chunk[:-1][None], use_cache=False).logits[0].float()
        logits.append(out)
        targets.append(chunk[1:])
    return torch.cat(logits), torch.cat(targets)


@torch.inference_mode()
def latency_once(model, batch) -> float:
    t0 = time.perf_counter()
    model(**batch, use_cache=False)
    return time.perf_counter() - t0


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", default="runs/bench_compress")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    print(f"load average at start: {load_avg()}; cpu capability {torch.backends.cpu.get_cpu_capability()}")
    dirs = {"fp32": resolve_model(args.model).path}
    info = {"fp32": {"disk_bytes": sum(f.stat().st_size for f in Path(dirs["fp32"]).glob("*.safetensors"))}}
    for name, kw in VARIANTS.items():
        t0 = time.perf_counter()
        s = compress(CompressConfig(model=args.model, out=str(out / name), force=True, **kw))
        dirs[name] = str(out / name)
        info[name] = {"disk_bytes": s["bytes_on_disk"]["weights"], "compress_s": round(time.perf_counter() - t0, 1),
                      "sparsity": s["sparsity"]["before_quantization"]["global"], "reload_max_abs_diff": s["verification"]["max_abs_diff"]}
        print(f"compressed {name} in {info[name]['compress_s']} s")
    models = {name: load_any(d, device="cpu") for name, d in dirs.items()}
    tok = models["fp32"].tokenizer
    ids = tok(sample_text(), return_tensors="pt")["input_ids"][0]
    ref_logits, targets = text_logits(models["fp32"].model, ids)
    for name, lm in models.items():
        logits, _ = text_logits(lm.model, ids)
        nll = torch.nn.functional.cross_entropy(logits, targets)
        info[name].update(perplexity=float(nll.exp()), top1_agreement=float((logits.argmax(-1) ==
                                                                           ref_logits.argmax(-1)).float().mean()),
                          n_tokens=int(targets.numel()))
    gen = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(100, tok.vocab_size, (8, 64), generator=gen),
             "attention_mask": torch.ones(8, 64, dtype=torch.long)}
    times = {name: [] for name in models}
    for lm in models.values():
        latency_once(lm.model, batch), latency_once(lm.model, batch)  # warm-up
    for _ in range(args.runs):  # interleaved so machine load hits every model alike
        for name, lm in models.items():
            times[name].append(latency_once(lm.model, batch))
    report(info, times, out, args)


def report(info: dict, times: dict, out: Path, args) -> None:
    base_b, base_t = info["fp32"]["disk_bytes"], statistics.median(times["fp32"])
    print(f"\nload average at end: {load_avg()}; {args.threads} threads, batch 8 x 64, median of {args.runs}")
    print("| method | disk MB | ratio vs fp32 | perplexity | top-1 agree | latency ms | x fp32 |")
    print("|---|---|---|---|---|---|---|")
    for name, row in info.items():
        med = statistics.median(times[name])
        row.update(latency_ms=med * 1000, latency_vs_fp32=med / base_t, ratio=base_b / row["disk_bytes"],
                   latencies_ms=[t * 1000 for t in times[name]])
        print(f"| {name} | {row['disk_bytes'] / 1e6:.0f} | {row['ratio']:.2f}x | {row['perplexity']:.2f} | "
              f"{row['top1_agreement']:.3f} | {row['latency_ms']:.0f} | {row['latency_vs_fp32']:.2f} |")
    write_json_atomic(out / "bench.json", {"threads": args.threads, "load_avg_end": os.getloadavg(), "rows": info})
    print(f"-> {out / 'bench.json'}")
    print(json.dumps({k: round(v["perplexity"], 3) for k, v in info.items()}))


if __name__ == "__main__":
    main()
