"""The compare-models stage: load several models, measure cost and quality against the first, and
write ``compare.json``, a table and a size-versus-quality plot.

Models are loaded only through :func:`truthtrace.compress.load_any`. Latency is measured side by
side (round-robin) in this process; peak memory in a fresh subprocess per model.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from truthtrace import __version__
from truthtrace.compare import cost, detect, quality
from truthtrace.compare.report import write_outputs
from truthtrace.machine import load_average, machine_info
from truthtrace.models.load import load_any
from truthtrace.models.placement import Placement, device_bytes

FORMAT = "truthtrace.compare"
VERSION = 1
MEMORY_MODES = ("subprocess", "off")


@dataclass
class CompareConfig:
    """Options of compare-models; validated on construction (ValueError names the field).

    Args:
        out_dir: where compare.json and the plots go (None: nothing written).
        text: text sample file (None: the bundled ~2,200-token sample).
        batch_size, seq_len: the fixed latency batch ``(batch_size, seq_len)``.
        runs, warmup: timed and untimed round-robin rounds.
        threads: torch CPU threads, set deliberately so every model gets the same.
        max_length, stride: sliding window of the perplexity pass.
        dtype: compute dtype passed to the loader (None: each model's stored dtype).
        labels_csv: text,label CSV for encoder accuracy.
        store, detector, n_questions: detector AUROC on traces re-extracted with each model.
        memory: "subprocess" (fresh process per model) or "off".
        placement: ``--device-map``/``--max-memory``/``--offload-folder`` for every model (None: each on ``device``);
            the memory subprocess loads with it too.
        max_ppl_ratio, min_agreement, min_cosine: a model beyond these is marked degraded.
    """

    out_dir: str | None = None
    text: str | None = None
    batch_size: int = 8
    seq_len: int = 64
    runs: int = 5
    warmup: int = 1
    threads: int = 2
    max_length: int = 512
    stride: int = 256
    dtype: str | None = None
    device: str = "auto"
    labels_csv: str | None = None
    store: str | None = None
    detector: str | None = None
    n_questions: int = 100
    memory: str = "subprocess"
    placement: Placement | None = None
    max_ppl_ratio: float = 1.10
    min_agreement: float = 0.90
    min_cosine: float = 0.95
    plot: bool = True

    def __post_init__(self):
        for name in ("batch_size", "seq_len", "runs", "threads", "max_length", "stride", "n_questions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if self.stride > self.max_length:
            raise ValueError(f"stride ({self.stride}) must be <= max_length ({self.max_length})")
        if self.memory not in MEMORY_MODES:
            raise ValueError(f"memory must be one of {MEMORY_MODES}, got {self.memory!r}")
        if self.placement is not None and not isinstance(self.placement, Placement):
            raise ValueError(f"placement must be a Placement or None, got {type(self.placement).__name__}")
        if (self.store is None) != (self.detector is None):
            raise ValueError("store and detector must be given together")
        if self.max_ppl_ratio < 1 or not 0 <= self.min_agreement <= 1 or not -1 <= self.min_cosine <= 1:
            raise ValueError("max_ppl_ratio must be >= 1, min_agreement in [0, 1], min_cosine in [-1, 1]")


def _name(spec: str) -> str:
    return Path(spec).name if ("/" in spec or Path(spec).exists()) else spec


def _check_kinds(loaded: list) -> str:
    kinds = {lm.kind for lm in loaded}
    if len(kinds) > 1:
        listing = ", ".join(f"{lm.spec}: {lm.kind}" for lm in loaded)
        raise ValueError(f"cannot compare causal LMs with encoders ({listing}); compare each kind separately")
    return kinds.pop()


def _causal_rows(loaded: list, text: str, config: CompareConfig) -> list[dict]:
    """Perplexity for all; agreement and KL for models sharing the first model's vocabulary."""
    first_tok = loaded[0].tokenizer
    shared = [i for i, lm in enumerate(loaded) if quality.same_vocab(first_tok, lm.tokenizer)]
    ids = torch.tensor(first_tok(text, add_special_tokens=False)["input_ids"])
    rows: list[dict] = [{} for _ in loaded]
    results = quality.causal_quality([loaded[i].model for i in shared], ids, config.max_length, config.stride)
    for i, res in zip(shared, results):
        rows[i] = {**res, "note": ""}
    for i, lm in enumerate(loaded):
        if i not in shared:
            own = torch.tensor(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
            rows[i] = {**quality.perplexity(lm.model, own, config.max_length, config.stride),
                       "top1_agreement": None, "kl_mean": None,
                       "note": "tokenizer differs from the first model's: agreement/KL N/A, "
                               "perplexity on its own tokens"}
    return rows


def _encoder_rows(loaded: list, text: str, config: CompareConfig) -> list[dict]:
    labels = None
    if config.labels_csv:
        texts, labels = quality.read_text_labels(config.labels_csv)
    else:
        texts = quality.sentences(text)
    return quality.encoder_quality([(lm.model, lm.tokenizer) for lm in loaded], texts, labels,
                                   str(config.labels_csv))


def _compression_summary(compression: dict | None) -> dict | None:
    """The parts of compression.json worth repeating (steps without their tensor lists, storage, sparsity)."""
    if not compression:
        return None
    steps = [{k: v for k, v in step.items() if k != "tensors"} for step in compression.get("steps", [])]
    sp = compression.get("sparsity") if isinstance(compression.get("sparsity"), dict) else {}
    after = sp.get("after_reload") or {}
    return {"steps": steps, "storage": compression.get("storage"), "bytes_on_disk": compression.get("bytes_on_disk"),
            # files written before both were recorded hold one pre-quantization "global"
            "sparsity_before_quantization": (sp.get("before_quantization") or sp).get("global"),
            "sparsity_after_reload": after.get("global")}


def _degraded(row: dict, first: dict, config: CompareConfig) -> list[str]:
    """Reasons a model counts as degraded against the first (empty list: not degraded)."""
    reasons = []
    if row.get("perplexity") is not None and first.get("perplexity"):
        ratio = row["perplexity"] / first["perplexity"]
        if ratio > config.max_ppl_ratio:
            reasons.append(f"perplexity {ratio:.2f}x the first")
    if row.get("top1_agreement") is not None and row["top1_agreement"] < config.min_agreement:
        reasons.append(f"top-1 agreement {row['top1_agreement']:.3f} < {config.min_agreement}")
    if row.get("cosine") is not None and row["cosine"] < config.min_cosine:
        reasons.append(f"cosine {row['cosine']:.3f} < {config.min_cosine}")
    return reasons


def _load_all(specs: Sequence[str], config: CompareConfig, loader: Callable) -> list:
    loaded = []
    for spec in tqdm(specs, desc="load models", unit="model"):
        t0 = time.perf_counter()
        lm = loader(spec, config.dtype, config.device)
        lm.load_seconds = time.perf_counter() - t0
        loaded.append(lm)
    return loaded


def _cost_rows(loaded: list, text: str, config: CompareConfig) -> list[dict]:
    """Disk, parameters, sparsity, latency (round-robin) and peak memory (subprocess) per model."""
    causal = loaded[0].kind == "causal"
    jobs = [(lm.model, cost.make_batch(lm.tokenizer, text, config.batch_size, config.seq_len)) for lm in loaded]
    latency = cost.time_round_robin(jobs, config.runs, config.warmup, causal)
    rows = []
    for lm, lat in zip(loaded, latency):
        nbytes, source = cost.disk_bytes(lm.path, lm.compression)
        row = {"disk_bytes": nbytes, "disk_source": source, **cost.param_stats(lm.model),
               "latency_ms": lat["median_ms"], "latency_iqr_ms": lat["iqr_ms"], "latency_runs_ms": lat["runs_ms"],
               "load_seconds": round(lm.load_seconds, 2), "dtype": str(next(lm.model.parameters()).dtype),
               "device_bytes": device_bytes(lm.model) or None}  # where --device-map put the weights
        if config.memory == "subprocess":
            tqdm.write(f"peak memory of {lm.spec} in a fresh subprocess ...")
            mem = cost.peak_memory(lm.spec, config.dtype, config.device, text, config.batch_size, config.seq_len,
                                   config.threads, placement=config.placement)
            row.update(peak_memory_bytes=mem["peak_bytes"], memory_error=mem.get("error"),
                       memory_device_bytes=mem.get("device_bytes"), gpu_peak_bytes=mem.get("gpu_peak_bytes"))
        rows.append(row)
    return rows


def compare_models(specs: Sequence[str], config: CompareConfig | None = None, loader: Callable | None = None) -> dict:
    """Compare models against the first: cost, quality and (optionally) detector AUROC.

    Args:
        specs: two or more model specs (anything ``load_any`` accepts); the first is the reference.
        config: :class:`CompareConfig`.
        loader: ``(spec, dtype, device) -> LoadedModel``; default :func:`truthtrace.models.load_any` (with
            ``config.placement``).
    Returns:
        the report (also written to ``out_dir/compare.json`` when ``out_dir`` is set).
    Raises:
        ValueError: fewer than two models, or causal LMs mixed with encoders.
    """
    config = config or CompareConfig()
    if len(specs) < 2:
        raise ValueError(f"compare-models needs at least two models, got {len(specs)}")
    torch.set_num_threads(config.threads)
    load_before, started = load_average(), time.time()
    loaded = _load_all(specs, config, loader or partial(load_any, placement=config.placement))
    kind = _check_kinds(loaded)
    text = quality.load_text(config.text)
    qual = (_causal_rows if kind == "causal" else _encoder_rows)(loaded, text, config)
    costs = _cost_rows(loaded, text, config)
    rows = [{"model": _name(lm.spec), "spec": lm.spec, "kind": lm.kind, "path": lm.path,
             "compression": _compression_summary(lm.compression), **c, **q} for lm, c, q in zip(loaded, costs, qual)]
    for row in rows:
        row["latency_vs_first"] = row["latency_ms"] / rows[0]["latency_ms"]
    if config.store:
        for row, auc in zip(rows, detect.detector_aurocs(loaded, config)):
            row.update(auc)
    for row in rows:
        row["degraded_reasons"] = _degraded(row, rows[0], config)
        row["degraded"] = bool(row["degraded_reasons"])
    report = {"format": FORMAT, "version": VERSION, "truthtrace_version": __version__, "kind": kind,
              "models": rows, "config": asdict(config), "machine": machine_info(),
              "load_average_before": load_before, "load_average_after": load_average(),
              "seconds": round(time.time() - started, 1),
              "memory_method": cost.MEMORY_METHOD if config.memory == "subprocess" else "not measured"}
    if config.out_dir:
        report["files"] = write_outputs(report, config.out_dir, plot=config.plot)
    return report
