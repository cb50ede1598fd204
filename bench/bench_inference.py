"""The live engine against plain ``model.generate`` on the embedded model, side by side in one run.

    TRUTHTRACE_CACHE=/tmp/ttcache .venv/bin/python bench/bench_inference.py [--threads 2] [--dtype bfloat16]

Builds (once, resumable) a small run in ``--run`` (64 bundled questions, captured from the generation
steps, detectors without attention graphs), then on the same 32 questions, batch ``--batch``:
  plain        ``model.generate`` (greedy, same batch size and max_new_tokens, no capture)
  engine-seq   the engine with the sequence detectors (probe, mlp, perplexity, max_entropy, hidden_svd)
  engine-all   the engine with those plus the attention ones (lookback, attn_logdet: eager attention maps)
Every variant is warmed up once; rounds are interleaved and the median of ``--rounds`` is kept.
Also measured: the detectors' share of the engine's time, cache hit latency (median over the
questions, from the SQLite file with a cold memory LRU, and from memory), and the equality of
live and stored scores. Run on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from truthtrace.data import load_bundled
from truthtrace.detectors import load_detector
from truthtrace.features.dataset import FeatureDataset, make_loader
from truthtrace.fileio import write_json_atomic
from truthtrace.inference import Engine, EngineConfig
from truthtrace.inference.cache import ResultCache
from truthtrace.machine import machine_info
from truthtrace.models import load_model
from truthtrace.pipeline import RunConfig, run
from truthtrace.traces.capture import generate_answers
from truthtrace.traces.extract import ExtractConfig

SEQ = ["probe", "mlp", "perplexity", "max_entropy", "hidden_svd"]
ATTN = ["lookback", "attn_logdet"]


def build(run_dir: Path, model, tok, max_new: int) -> Path:
    """The bench's run: extract -> label -> preprocess -> train (resumes when it exists)."""
    cfg = RunConfig(out_dir=str(run_dir), n_questions=64, detectors=SEQ + ATTN, graphs=False,
                    extract=ExtractConfig(batch_size=8, max_new_tokens=max_new, capture="generate"))
    run(cfg, model, tok, progress=False, log=lambda *_: None)
    return run_dir / "detectors"


def plain_generate(model, tok, prompts: list[list[int]], batch: int, max_new: int) -> float:
    """Seconds for plain greedy generation over ``prompts`` in batches sorted by length, as the engine batches.

    :func:`truthtrace.traces.capture.generate_answers` is ``model.generate`` with the same left padding and
    stop tokens as the engine's, and no capture; it gets the engine's one extra token.
    """
    order = sorted(prompts, key=len)
    t0 = time.perf_counter()
    for i in range(0, len(order), batch):
        generate_answers(model, tok, order[i:i + batch], max_new + 1)
    return time.perf_counter() - t0


def engine_round(engine: Engine, questions: list[str]) -> tuple[float, float]:
    """``(wall seconds, detector seconds)`` of the engine answering ``questions`` (no cache)."""
    t0 = time.perf_counter()
    results = engine.answer(questions)
    wall = time.perf_counter() - t0
    per_batch = {(r["timing"]["detectors_s"], r["timing"]["batch_size"]) for r in results}
    return wall, sum(s for s, _ in per_batch)


def cache_latency(cfg: EngineConfig, model, tok, questions: list[str], path: Path) -> dict:
    """Median ms of a cache hit from the SQLite file (fresh engine, empty memory) and from memory."""
    path.unlink(missing_ok=True)
    warm = Engine(EngineConfig(**{**cfg.__dict__, "cache": path}), model, tok)
    warm.answer(questions)
    cold = Engine(EngineConfig(**{**cfg.__dict__, "cache": path}), model, tok)
    disk, memory = [], []
    for q in questions:
        t0 = time.perf_counter()
        assert cold.answer([q])[0]["cached"]
        disk.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        cold.answer([q])
        memory.append(time.perf_counter() - t0)
    return {"disk_ms": 1e3 * statistics.median(disk), "memory_ms": 1e3 * statistics.median(memory),
            "rows": ResultCache(path).stats()["rows"]}


def equality(engine: Engine, det_dir: Path, features: Path, qs) -> dict:
    """Worst relative difference of live vs stored scores per detector (one question per batch)."""
    results = engine.answer([q.question for q in qs], ids=[q.id for q in qs])
    worst = {}
    for d in engine.detectors.detectors:
        det = load_detector(d.path)
        ds = FeatureDataset(features, split=None, keys=det.inputs)
        stored = dict(zip([i for s in ds.shards for i in s], det.score(iter(make_loader(ds, 64, num_workers=0)))))
        live = np.array([r["scores"][d.name]["score"] for r in results])
        ref = np.array([stored[q.id] for q in qs])
        worst[d.name] = float(np.max(np.abs(live - ref) / (1 + np.abs(ref))))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/bench_inference")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run_dir = Path(args.run)
    det_dir = build(run_dir, *load_model(dtype="float32", device="cpu"), args.max_new_tokens)
    qs = load_bundled(n=64, seed=0)[: args.n]
    questions = [q.question for q in qs]
    engines, models = {}, {}
    for name, dets, attn in (("engine-seq", SEQ, "sdpa"), ("engine-all", SEQ + ATTN, "eager")):
        models[name] = load_model(dtype=args.dtype, device="cpu", attn_implementation=attn)
        cfg = EngineConfig(detectors=[det_dir / d for d in dets], cache=None, max_batch=args.batch,
                           max_new_tokens=args.max_new_tokens)
        engines[name] = Engine(cfg, *models[name])
    plain_model, tok = models["engine-seq"]
    prompts = [engines["engine-seq"].request(i, q).prompt for i, q in enumerate(questions)]
    times = {"plain": [], "engine-seq": [], "engine-all": []}
    det_s = {"engine-seq": [], "engine-all": []}
    plain_generate(plain_model, tok, prompts[: args.batch], args.batch, 2)  # warm-up
    for engine in engines.values():
        engine.answer(questions[: args.batch])
    for _ in range(args.rounds):
        times["plain"].append(plain_generate(plain_model, tok, prompts, args.batch, args.max_new_tokens))
        for name, engine in engines.items():
            wall, det = engine_round(engine, questions)
            times[name].append(wall)
            det_s[name].append(det)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = {k: {"seconds": round(v, 3), "ratio_vs_plain": round(med["plain"] / v, 3)} for k, v in med.items()}
    for name in det_s:
        rows[name]["detector_share"] = round(statistics.median(det_s[name]) / med[name], 4)
    cfg32 = EngineConfig(detectors=[det_dir / d for d in SEQ + ATTN], dtype="float32", cache=None, max_batch=1,
                         max_new_tokens=args.max_new_tokens)
    model32 = load_model(dtype="float32", device="cpu", attn_implementation="eager")
    out = {"rows": rows, "cache": cache_latency(EngineConfig(**{**cfg32.__dict__, "max_batch": args.batch}),
                                                *models["engine-all"], questions, run_dir / "bench_cache.sqlite"),
           "equality_worst_rel_diff": equality(Engine(cfg32, *model32), det_dir, run_dir / "features", qs),
           "settings": vars(args), "load_average": os.getloadavg(), "machine": machine_info()}
    write_json_atomic(run_dir / "bench_inference.json", out)
    print(f"{'variant':<12} {'seconds':>8} {'x plain':>8} {'detectors':>10}")
    for name, r in rows.items():
        share = f"{100 * r['detector_share']:.1f}%" if "detector_share" in r else ""
        print(f"{name:<12} {r['seconds']:>8.2f} {r['ratio_vs_plain']:>8.3f} {share:>10}")
    print(f"cache hit: {out['cache']['disk_ms']:.2f} ms from SQLite, {out['cache']['memory_ms']:.3f} ms from memory")
    print(f"live vs stored, worst relative difference: {out['equality_worst_rel_diff']}")
    print(f"machine: {out['machine'].get('cpu')}, threads {args.threads}, load {out['load_average']}")


if __name__ == "__main__":
    main()
