"""``torch.compile`` side by side in one run: detector training steps/s and live-engine answers/s, eager vs compiled.

    TRUTHTRACE_CACHE=/tmp/ttcache .venv/bin/python bench/bench_compile.py [--threads 2] [--mode default]
        [--only train|engine|extract]

training  ``fit_module`` (the loop of ``truthtrace train``) on synthetic features of the embedded model's shape
          (1,600 train + 256 val traces, 31 layers x 576): the mlp detector's network on one layer
          (576 -> 256 -> 128 -> 1) and the lstm detector's (31 x 576, projection 128, bi-LSTM 64), batch 64,
          ``--epochs`` epochs. Epoch 1 holds the compilation; steps/s is over the other epochs (validation
          included). Rounds alternate eager and compiled; the median is kept.
engine    the live engine answering 8 bundled questions in one batch (embedded model, ``--dtype``, the sequence
          detectors of ``--run``; built like bench_inference.py when missing), eager vs ``compile``: the first
          compiled call (compilation) is timed alone, then rounds alternate eager and compiled on the same model
          (its forward swapped) and the median is kept; answers and scores are compared.
extract   ``extract`` of 16 bundled questions (``--dtype``, ``--capture generate``, 4 maps kept: hybrid attention),
          eager vs ``--compile``: a warm-up, the first compiled round (compilation) alone, then alternating rounds.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from truthtrace.data import load_bundled
from truthtrace.detectors.lstm import LayerLSTM
from truthtrace.detectors.mlp import MLPNet
from truthtrace.detectors.torch_base import TensorBatches
from truthtrace.fileio import write_json_atomic
from truthtrace.inference import Engine, EngineConfig
from truthtrace.machine import machine_info
from truthtrace.models import load_model
from truthtrace.pipeline import RunConfig, run
from truthtrace.traces.extract import ExtractConfig, extract
from truthtrace.training import LoopConfig, fit_module
from truthtrace.training.compile import restore_forward

SEQ = ["probe", "mlp", "perplexity", "max_entropy", "hidden_svd"]
N_TRAIN, N_VAL, LAYERS, D, BATCH = 1600, 256, 31, 576, 64


def features(n: int, seed: int, layer: int | None) -> TensorBatches:
    """Planted features ``(n, 31, 576)`` (or one layer ``(n, 576)``) and labels, in batches of 64."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.4).long()
    x = torch.randn(n, LAYERS, D, generator=g)
    x[:, 20, :8] += y[:, None].float()
    return TensorBatches({"x": x if layer is None else x[:, layer].contiguous()}, y, BATCH, shuffle=True, seed=seed)


def network(kind: str) -> torch.nn.Module:
    """The mlp or lstm detector's module at the embedded model's feature shape."""
    torch.manual_seed(0)
    if kind == "mlp":
        return MLPNet(D, (256, 128), 0.1)
    return LayerLSTM(LAYERS, D, 128, 64, True, 0.2)


def forward(module, batch, device):
    return module(batch["x"].to(device))


def train_round(kind: str, mode: str | None, epochs: int, data: tuple) -> dict:
    """One fit: seconds of epoch 1 and steps/s over the others."""
    stamps = [time.perf_counter()]
    cfg = LoopConfig(lr=1e-3, max_epochs=epochs, patience=epochs, tracking="none", quiet=True, compile=mode,
                     device="cpu")
    fit_module(network(kind), forward, *data, cfg, callback=lambda e, r: stamps.append(time.perf_counter()))
    epoch_s = np.diff(stamps)
    return {"first_epoch_s": float(epoch_s[0]),
            "steps_per_s": math.ceil(N_TRAIN / BATCH) / float(np.median(epoch_s[1:]))}


def train_bench(mode: str, epochs: int, rounds: int) -> dict:
    """Eager vs compiled training of both networks; rounds alternate."""
    out = {}
    for kind in ("mlp", "lstm"):
        layer = 20 if kind == "mlp" else None
        data = (features(N_TRAIN, 1, layer), features(N_VAL, 2, layer))
        runs = {"eager": [], "compiled": []}
        for _ in range(rounds):
            runs["eager"].append(train_round(kind, None, epochs, data))
            runs["compiled"].append(train_round(kind, mode, epochs, data))
        med = {k: statistics.median(r["steps_per_s"] for r in v) for k, v in runs.items()}
        out[kind] = {"eager_steps_per_s": round(med["eager"], 2), "compiled_steps_per_s": round(med["compiled"], 2),
                     "ratio": round(med["compiled"] / med["eager"], 3),
                     "first_epoch_s": {k: round(v[0]["first_epoch_s"], 2) for k, v in runs.items()}}
    return out


def detectors(run_dir: Path) -> list[Path]:
    """The sequence detectors of the bench_inference run (built when missing: 64 questions, ~10 min)."""
    det = run_dir / "detectors"
    if not all((det / d).is_dir() for d in SEQ):
        cfg = RunConfig(out_dir=str(run_dir), n_questions=64, detectors=SEQ + ["lookback", "attn_logdet"],
                        graphs=False, extract=ExtractConfig(batch_size=8, max_new_tokens=16, capture="generate"))
        run(cfg, progress=False, log=lambda *_: None)
    return [det / d for d in SEQ]


def timed(engine: Engine, questions: list[str]) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    results = engine.answer(questions)
    return time.perf_counter() - t0, results


def engine_bench(args) -> dict:
    """Answers/s of the engine eager vs compiled on the same model (forward swapped between rounds)."""
    questions = [q.question for q in load_bundled(n=64, seed=0)[:8]]
    model, tok = load_model(dtype=args.dtype, device="cpu")
    cfg = dict(detectors=detectors(Path(args.run)), cache=None, max_batch=8, max_new_tokens=args.max_new_tokens)
    eager = Engine(EngineConfig(**cfg), model, tok)
    _, reference = timed(eager, questions)  # warm-up
    compiled = Engine(EngineConfig(**cfg, compile=args.mode), model, tok)
    wrapper = model.__dict__["forward"]
    first_s, results = timed(compiled, questions)
    times = {"eager": [], "compiled": []}
    for _ in range(args.rounds):
        restore_forward(model)
        times["eager"].append(timed(eager, questions)[0])
        model.forward = wrapper
        seconds, results = timed(compiled, questions)
        times["compiled"].append(seconds)
    restore_forward(model)
    med = {k: statistics.median(v) for k, v in times.items()}
    same = sum(a["answer"] == b["answer"] for a, b in zip(reference, results))
    diff = max(abs(a["scores"][d]["score"] - b["scores"][d]["score"]) for a, b in zip(reference, results)
               for d in a["scores"])
    return {"eager_answers_per_s": round(8 / med["eager"], 3), "compiled_answers_per_s": round(8 / med["compiled"], 3),
            "ratio": round(med["eager"] / med["compiled"], 3), "first_compiled_call_s": round(first_s, 1),
            "fell_back": repr(wrapper.failed) if wrapper.failed else None, "same_answers": f"{same}/8",
            "max_score_diff": float(diff), "dtype": args.dtype}


def extract_round(questions, out: Path, model, tok, mode: str | None, dtype: str) -> float:
    """Seconds of one ``extract`` of ``questions`` into a fresh store (compiled forward when ``mode``)."""
    shutil.rmtree(out, ignore_errors=True)
    cfg = ExtractConfig(model_dtype=dtype, batch_size=8, max_new_tokens=16, capture="generate", compile=mode,
                        attn_layers=[0, 10, 20, 29])
    t0 = time.perf_counter()
    extract(questions, out, cfg, model, tok, progress=False)
    return time.perf_counter() - t0


def extract_bench(args) -> dict:
    """Questions/s of ``extract`` (16 bundled questions, bf16, --capture generate, hybrid with 4 maps), eager vs
    compiled, rounds alternating; the first compiled round (compilation) is reported alone."""
    questions = load_bundled(n=16, seed=1)
    model, tok = load_model(dtype=args.dtype, device="cpu")
    work = Path(tempfile.mkdtemp(prefix="bench_compile_"))
    try:
        extract_round(questions, work / "warm", model, tok, None, args.dtype)
        first = extract_round(questions, work / "first", model, tok, args.mode, args.dtype)
        times = {"eager": [], "compiled": []}
        for _ in range(args.rounds):
            times["eager"].append(extract_round(questions, work / "e", model, tok, None, args.dtype))
            times["compiled"].append(extract_round(questions, work / "c", model, tok, args.mode, args.dtype))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"eager_q_per_s": round(16 / med["eager"], 3), "compiled_q_per_s": round(16 / med["compiled"], 3),
            "ratio": round(med["eager"] / med["compiled"], 3), "first_compiled_round_s": round(first, 1),
            "dtype": args.dtype}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="default", choices=("default", "reduce-overhead", "max-autotune"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--run", default="runs/bench_inference")
    ap.add_argument("--only", choices=("train", "engine", "extract"), default=None)
    ap.add_argument("--out", default="runs/bench_compile.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {"settings": vars(args), "load_average_start": os.getloadavg()}
    if args.only in (None, "train"):
        out["train"] = train_bench(args.mode, args.epochs, args.rounds)
        print("train:", out["train"], flush=True)
    if args.only in (None, "engine"):
        out["engine"] = engine_bench(args)
        print("engine:", out["engine"], flush=True)
    if args.only in (None, "extract"):
        out["extract"] = extract_bench(args)
        print("extract:", out["extract"], flush=True)
    out.update(load_average_end=os.getloadavg(), machine=machine_info())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, out)
    print(f"machine: {out['machine']['cpu']}, threads {args.threads}, load {out['load_average_start']} -> "
          f"{out['load_average_end']}")


if __name__ == "__main__":
    main()
