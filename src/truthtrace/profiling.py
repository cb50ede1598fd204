"""A stage run under ``torch.profiler`` on a limited input: its top ops, peak memory and a Chrome trace.

    from truthtrace.profiling import profile_extract
    summary = profile_extract(load_bundled(n=8), "prof", ExtractConfig())
    print(summary["table"])

Each ``profile_*`` function prepares what the stage needs outside the profiler (the model, the engine,
the data loaders), profiles the stage's own Python API once (CPU activities, CUDA too when present, input
shapes, memory), and writes into ``out_dir``:

- ``profile.txt``: ops by self time, grouped by input shape (``key_averages(group_by_input_shape=True)``);
- ``trace.json``: the Chrome trace (opens in https://ui.perfetto.dev or chrome://tracing);
- ``profile.json``: the stage's counts, wall seconds, peak RSS (``peak_memory_mb``; the process's peak so
  far, model loading and the profiler's own records included), ``torch.cuda.max_memory_allocated`` on a
  GPU, and the machine.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from truthtrace.detectors.base import DETECTORS, get_detector
from truthtrace.detectors.torch_base import TorchDetector
from truthtrace.detectors.train import loaders
from truthtrace.features.config import PreprocessConfig
from truthtrace.features.direct import DirectConfig, extract_features
from truthtrace.fileio import write_json_atomic, write_text_atomic
from truthtrace.inference import Engine, EngineConfig
from truthtrace.machine import load_average, machine_info, peak_memory
from truthtrace.models import load_model
from truthtrace.traces.extract import ExtractConfig, extract

TABLE_FILE, TRACE_FILE, SUMMARY_FILE = "profile.txt", "trace.json", "profile.json"
ROWS = 30


def activities() -> list[ProfilerActivity]:
    """What the profiler records: the CPU, and CUDA kernels when a GPU is present."""
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])


def top_ops(prof, rows: int = ROWS) -> str:
    """The table of the ``rows`` ops with the most self time (CUDA time on a GPU), by op and input shapes."""
    key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    return prof.key_averages(group_by_input_shape=True).table(sort_by=key, row_limit=rows,
                                                              max_name_column_width=48, max_shapes_column_width=60)


def profiled(stage: str, out_dir: str | Path, run: Callable[[], dict], rows: int = ROWS) -> dict:
    """Run ``run()`` under the profiler and write ``profile.txt``, ``trace.json`` and ``profile.json``.

    Args:
        stage: name recorded around the run (``truthtrace.<stage>`` in the trace).
        run: the stage on its limited input; returns counts for the summary (JSON-safe).
        rows: ops in the table.
    Returns:
        The summary written to ``profile.json``, plus ``"table"`` (the text of ``profile.txt``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with profile(activities=activities(), record_shapes=True, profile_memory=True) as prof:
        with record_function(f"truthtrace.{stage}"):
            counts = run()
    seconds = time.perf_counter() - start
    table = top_ops(prof, rows)
    write_text_atomic(out / TABLE_FILE, table + "\n")
    prof.export_chrome_trace(str(out / TRACE_FILE))
    summary = {"format": "truthtrace.profile", "version": 1, "stage": stage, "seconds": round(seconds, 3),
               **counts, **peak_memory(), "files": {k: str(out / f) for k, f in
                                                     (("table", TABLE_FILE), ("trace", TRACE_FILE))},
               "machine": dict(machine_info(), load_average=load_average())}
    write_json_atomic(out / SUMMARY_FILE, summary)
    return dict(summary, table=table)


def profile_extract(questions: Sequence, out_dir: str | Path, config: ExtractConfig | None = None,
                    model=None, tokenizer=None, warmup: int = 0, rows: int = ROWS,
                    features: PreprocessConfig | None = None) -> dict:
    """Profile ``extract`` of ``questions`` into a temporary store (deleted afterwards).

    Args:
        config: the extraction settings (``overwrite`` is implied; the store is a fresh temporary one).
        model, tokenizer: an already loaded model; else ``config.model`` is loaded before profiling.
        warmup: questions extracted first, unprofiled (one-time costs: kernel selection, compilation).
        features: profile ``extract --features`` with these feature options instead (what ``truthtrace run``
            does: the feature store written during the forward pass, PCA fit included, no full traces).
    Returns:
        The summary (see :func:`profiled`) with ``questions``, ``batches``, ``questions_per_s`` and ``path``
        (``"traces"`` or ``"features"``).
    """
    config = dataclasses.replace(config or ExtractConfig(), overwrite=True)
    if model is None:
        model, tokenizer = load_model(config.model, config.model_dtype, config.device)
    with tempfile.TemporaryDirectory(prefix="truthtrace-profile-") as tmp:
        stage = _extract_stage(Path(tmp), config, model, tokenizer, features)
        if warmup:
            stage(list(questions)[:warmup], "warmup")

        def run() -> dict:
            done = stage(questions, "profiled")
            return {"path": "traces" if features is None else "features", "questions": done["n_new"],
                    "refused": done["n_refused"], "batches": math.ceil(done["n_new"] / config.batch_size),
                    "questions_per_s": done["questions_per_s"], "model": getattr(model, "truthtrace_id", config.model)}

        return profiled("extract", out_dir, run, rows)


def _extract_stage(tmp: Path, config: ExtractConfig, model, tokenizer,
                   features: PreprocessConfig | None) -> Callable[[Sequence, str], dict]:
    """``stage(questions, name)``: ``extract`` into ``tmp/name``, or with ``features`` ``extract_features`` into
    ``tmp/name/features`` (and its schema store ``tmp/name/traces``); returns the stage's summary."""
    if features is None:
        return lambda questions, name: extract(questions, tmp / name, config, model, tokenizer, progress=False)
    direct = DirectConfig(config, dataclasses.replace(features, overwrite=True), trace_sample=0)
    return lambda questions, name: extract_features(questions, tmp / name / "features", tmp / name / "traces", direct,
                                                    model, tokenizer, progress=False)


def train_detector(name: str, epochs: int, seed: int, compile: str | None, detector_args: dict | None):
    """Detector ``name`` for one short fit: ``epochs`` epochs, no tracker or checkpoints (torch detectors).

    Raises:
        ValueError: an unknown name, or ``compile`` for a detector that is not a torch one.
    """
    kwargs = dict(detector_args or {})
    cls = DETECTORS.get(name)
    if cls is not None and issubclass(cls, TorchDetector):
        loop = {"max_epochs": epochs, "patience": epochs, "seed": seed, "tracking": "none", "log_dir": None,
                "checkpoint_dir": None, "resume": False, "quiet": True, "compile": compile}
        kwargs = {**loop, **kwargs}
    elif compile is not None:
        torch_ones = sorted(n for n, c in DETECTORS.items() if issubclass(c, TorchDetector))
        raise ValueError(f"--compile applies to the torch detectors ({', '.join(torch_ones)}), not to {name!r}")
    return get_detector(name, **kwargs)


def profile_train(features_dir: str | Path, labels: str | Path, detector: str, out_dir: str | Path,
                  epochs: int = 2, batch_size: int = 64, seed: int = 0, compile: str | None = None,
                  detector_args: dict | None = None, rows: int = ROWS) -> dict:
    """Profile one fit of ``detector`` on a feature store (``preprocess``) and its labels, nothing saved.

    The data loaders are made outside the profiler; reading the batches is profiled (it is part of a fit).
    Torch detectors train for ``epochs`` epochs (``compile``: ``torch.compile`` mode), others fit as usual.

    Returns:
        The summary (see :func:`profiled`) with ``detector`` and ``fit`` (the detector's fit info).
    """
    det = train_detector(detector, epochs, seed, compile, detector_args)
    train_dl, val_dl = loaders(features_dir, labels, tuple(det.inputs), seed, batch_size, 0)

    def run() -> dict:
        info = det.fit(train_dl, val_dl)
        return {"detector": detector, "epochs": epochs, "batch_size": batch_size, "compile": compile, "fit": info}

    return profiled("train", out_dir, run, rows)


def profile_ask(questions: Sequence, detectors: Sequence[str], out_dir: str | Path, model=None, tokenizer=None,
                warmup: int = 0, rows: int = ROWS, **engine: object) -> dict:
    """Profile the live engine answering ``questions`` (with ``.question`` and ``.id``) and scoring them.

    Args:
        detectors: saved detectors or train output folders.
        model, tokenizer: an already loaded model (else the engine loads its own, before profiling).
        warmup: questions answered first, unprofiled (``compile`` compiles then).
        **engine: further :class:`EngineConfig` fields (``dtype``, ``max_batch``, ``compile``, ...); no cache.
    Returns:
        The summary (see :func:`profiled`) with ``questions``, ``errors`` and ``answers_per_s``.
    """
    eng = Engine(EngineConfig(detectors=tuple(detectors), **{**engine, "cache": None}), model, tokenizer)
    try:
        if warmup:
            eng.answer([q.question for q in questions[:warmup]])

        def run() -> dict:
            start = time.perf_counter()
            results = eng.answer([q.question for q in questions], ids=[q.id for q in questions])
            return {"questions": len(results), "errors": sum(1 for r in results if r.get("error")),
                    "answers_per_s": round(len(results) / (time.perf_counter() - start), 3),
                    "max_batch": eng.config.max_batch, "compile": eng.config.compile, "model": eng.model_id}

        return profiled("ask", out_dir, run, rows)
    finally:
        eng.close()
