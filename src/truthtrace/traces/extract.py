"""The ``extract`` stage: run the model on questions and store its traces, resumably.

Each question becomes one trace keyed by its question id. Batches are generated, then
captured in one forward pass (see :mod:`truthtrace.traces.capture`) and written to a
:class:`~truthtrace.store.TraceWriter`; questions already in the store are skipped, so a
killed run picks up where it stopped. A store is resumed only with the weights it was written
from (``model_fingerprint`` in its schema). A question whose prompt does not fit the model's
context (or ``max_prompt_tokens``) is refused on its own and listed in the summary.
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from truthtrace import __version__
from truthtrace.dtypes import COMPUTE_DTYPES, STORAGE_DTYPES
from truthtrace.models import DEFAULT_MODEL, load_model
from truthtrace.models.attention import attention_implementation, check_backend, implementation_name, resolve_backend
from truthtrace.models.fingerprint import model_fingerprint
from truthtrace.store import StoreError, TraceWriter
from truthtrace.store.index import INDEX_NAME, load_index
from truthtrace.traces.capture import (
    CAPTURE_MODES,
    DEFAULT_TEMPLATE,
    CaptureOptions,
    build_prompt_ids,
    fitting_prompts,
    forward_traces,
    generate_answers,
    generate_with_traces,
    kept_start,
)
from truthtrace.traces.exact_span import span_meta
from truthtrace.training.compile import check_compile_mode, compile_forward, restore_forward

_KEEP_RE = re.compile(r"^(all|answer|last:[1-9]\d*)$")
FINGERPRINT = "model_fingerprint"  # schema key: the weights the store was written from
BACKEND = "attn_backend"  # schema key: the attention kernels the traces were computed with


@dataclass
class ExtractConfig:
    """Options of the extract stage; validated on construction (ValueError names the field)."""

    model: str = DEFAULT_MODEL
    model_dtype: str = "float32"
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    prompt_template: str = DEFAULT_TEMPLATE
    system_prompt: str | None = None
    use_chat_template: bool = True
    max_new_tokens: int = 24
    max_prompt_tokens: int | None = None  # refuse longer prompts (the model's context always limits them)
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 16
    hidden_layers: list[int] | None = None
    attn_layers: list[int] | None = None
    attentions: bool = True
    keep: str = "all"
    capture: str = "forward"  # "forward": generate, then one exact pass; "generate": from the generation steps
    attn_backend: str = "auto"  # "eager", "sdpa", "hybrid" (eager only where maps are kept) or "auto"
    storage_dtype: str = "float16"
    compile: str | None = None  # torch.compile mode of the model's forward (not in the schema: same traces)
    shard_max_bytes: int = 64 * 2**20
    shard_max_traces: int = 64
    overwrite: bool = False

    def __post_init__(self):
        if "{question}" not in self.prompt_template:
            raise ValueError("prompt_template must contain '{question}'")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.max_prompt_tokens is not None and not (isinstance(self.max_prompt_tokens, int)
                                                       and self.max_prompt_tokens >= 1):
            raise ValueError(f"max_prompt_tokens must be an int >= 1 or None, got {self.max_prompt_tokens!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not _KEEP_RE.match(self.keep):
            raise ValueError(f"keep must be 'all', 'answer' or 'last:K', got {self.keep!r}")
        if self.capture not in CAPTURE_MODES:
            raise ValueError(f"capture must be 'forward' or 'generate', got {self.capture!r}")
        check_backend(self.attn_backend, self.attentions)
        check_compile_mode(self.compile)
        if self.storage_dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage_dtype must be one of {STORAGE_DTYPES}, got {self.storage_dtype!r}")
        if self.model_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"model_dtype must be one of {COMPUTE_DTYPES}, got {self.model_dtype!r}")
        if self.do_sample and not (self.temperature > 0 and 0 < self.top_p <= 1):
            raise ValueError("sampling needs temperature > 0 and 0 < top_p <= 1")
        for name in ("hidden_layers", "attn_layers"):
            layers = getattr(self, name)
            if layers is not None and (not layers or min(layers) < 0):
                raise ValueError(f"{name} must be a non-empty list of layer indices >= 0")

    def capture_options(self, n_layers: int) -> CaptureOptions:
        """Check layer indices against a model with ``n_layers`` blocks and freeze the options."""
        for name, limit in (("hidden_layers", n_layers + 1), ("attn_layers", n_layers)):
            layers = getattr(self, name)
            if layers is not None and max(layers) >= limit:
                raise ValueError(f"{name} has index {max(layers)} but the model has only {limit}")
        as_tuple = lambda xs: tuple(sorted(set(xs))) if xs is not None else None  # noqa: E731
        return CaptureOptions(as_tuple(self.hidden_layers), as_tuple(self.attn_layers), self.attentions, self.keep)

    def attention_backend(self, n_layers: int) -> tuple[str, str]:
        """``(backend, attn_implementation)`` on a model of ``n_layers`` blocks: "auto" resolved (hybrid when
        maps are kept for some layers only, eager for all, sdpa for none) and transformers' name for it."""
        kept = self.capture_options(n_layers).attn_indices(n_layers)
        backend = resolve_backend(self.attn_backend, kept, n_layers)
        return backend, implementation_name(backend, kept)


def store_schema(config: ExtractConfig, model, model_id: str) -> dict:
    """The schema recorded in the store index; a resumed run must match it exactly.

    ``model_fingerprint`` identifies the weights (:func:`truthtrace.models.fingerprint.model_fingerprint`);
    ``model_source`` (where they were loaded from) is volatile: a moved model directory still resumes.
    ``attn_backend`` is the resolved backend: its kernels round differently, so another one is not resumed.
    """
    cfg = model.config
    n_layers = cfg.num_hidden_layers
    opts = config.capture_options(n_layers)
    return {
        "kind": "truthtrace.traces",
        "model": model_id,
        FINGERPRINT: model_fingerprint(model),
        "model_source": getattr(model, "truthtrace_path", None) or model_id,
        "volatile": ["model_source"],
        "model_dtype": config.model_dtype,
        "n_layers": n_layers,
        "n_heads": cfg.num_attention_heads,
        "d_model": cfg.hidden_size,
        "vocab_size": cfg.vocab_size,
        "hidden_layers": list(opts.hidden_indices(n_layers + 1)),
        "attn_layers": list(opts.attn_indices(n_layers)),
        "keep": config.keep,
        "capture": config.capture,
        BACKEND: config.attention_backend(n_layers)[0],
        "storage_dtype": config.storage_dtype,
        "generation": {k: getattr(config, k) for k in (
            "prompt_template", "system_prompt", "use_chat_template", "max_new_tokens",
            "do_sample", "temperature", "top_p", "seed")},
    }


def resume_schema(out_dir: str | Path, schema: dict, overwrite: bool = False) -> dict:
    """The schema to open the store at ``out_dir`` with, after checking it was written from the same weights.

    A store written before fingerprints were recorded (no ``model_fingerprint``) is resumed with a warning:
    the field is left out of the returned schema so the writer's exact comparison accepts it. One written
    before the attention backend was recorded resumes with the eager backend only (the field left out too).

    Raises:
        StoreError: the store's fingerprint differs from ``schema``'s (the message names both models), or it
            records no backend and this run's is not eager.
    """
    root = Path(out_dir)
    if overwrite or not (root / INDEX_NAME).is_file():
        return schema
    try:
        stored = load_index(root)["schema"]
    except StoreError:  # a damaged index: the writer reports it
        return schema
    if not isinstance(stored, dict) or stored.get("kind") != schema["kind"]:
        return schema
    if stored.get(FINGERPRINT) is None:
        warnings.warn(f"{root}: the store records no model fingerprint (written before truthtrace kept one); "
                      f"resuming on the model name {schema['model']!r} alone", stacklevel=3)
        schema = {k: v for k, v in schema.items() if k != FINGERPRINT}
    elif stored[FINGERPRINT] != schema[FINGERPRINT]:
        raise StoreError(
            f"{root}: cannot resume: the store holds traces of model {stored.get('model')!r} "
            f"(from {stored.get('model_source', '?')}, fingerprint {stored[FINGERPRINT]}) but this run loads "
            f"{schema['model']!r} (from {schema['model_source']}, fingerprint {schema[FINGERPRINT]}): "
            "other weights. Write to another --out, or pass --overwrite (overwrite=True) to replace the store")
    return _legacy_backend(root, stored, schema)


def _legacy_backend(root: Path, stored: dict, schema: dict) -> dict:
    """A store that records no backend was written before truthtrace kept one, every layer eager: it resumes
    (keeping its schema without the field) with eager attention only."""
    if BACKEND in stored:
        return schema
    if schema[BACKEND] != "eager":
        raise StoreError(f"{root}: cannot resume: the store records no attention backend (written before truthtrace "
                         f"kept one, with every layer eager) but this run uses {schema[BACKEND]!r}. Pass "
                         "--attn-backend eager (attn_backend='eager'), write to another --out, or pass --overwrite")
    return {k: v for k, v in schema.items() if k != BACKEND}


def trace_meta(q, prompt_ids: list[int], answer_ids: list[int], tokenizer, keep_start: int) -> dict:
    """A trace's meta: the question, its answers, the decoded prompt and generation, token counts, kept start and
    the exact-answer span (answer-token indices ``[first, last]``, :func:`~truthtrace.traces.exact_span.span_meta`)."""
    return {
        "question_id": q.id, "question": q.question, "answers": list(q.answers), "category": q.category,
        "prompt": tokenizer.decode(prompt_ids),
        "generation": tokenizer.decode(answer_ids, skip_special_tokens=True).strip(),
        "n_prompt_tokens": len(prompt_ids), "n_answer_tokens": len(answer_ids), "kept_start": keep_start,
        "exact_span": span_meta(tokenizer, answer_ids, q.question),
    }


def capture_batch(model, tokenizer, questions: Sequence, config: ExtractConfig, opts: CaptureOptions,
                  prompts: list[list[int]] | None = None):
    """Generate and capture one batch; yields ``(trace_id, tensors, meta)`` per question.

    ``prompts`` are the questions' prompt token ids if already built (else built here).
    """
    if prompts is None:
        prompts = [build_prompt_ids(tokenizer, q.question, config.prompt_template,
                                    config.use_chat_template, config.system_prompt) for q in questions]
    sampling = (config.do_sample, config.temperature, config.top_p)
    if config.capture == "generate":
        answers, traces = generate_with_traces(model, tokenizer, prompts, opts, config.max_new_tokens, *sampling)
    else:
        answers = generate_answers(model, tokenizer, prompts, config.max_new_tokens, *sampling)
        seqs = [p + a for p, a in zip(prompts, answers)]
        traces = forward_traces(model, seqs, [len(p) for p in prompts], opts, tokenizer.pad_token_id)
    for q, p, a, tensors in zip(questions, prompts, answers, traces):
        start = kept_start(opts.keep, len(p) + len(a), len(p))
        yield q.id, tensors, trace_meta(q, p, a, tokenizer, start)


def extract(questions: Sequence, out_dir: str | Path, config: ExtractConfig | None = None,
            model=None, tokenizer=None, progress: bool = True) -> dict:
    """Run the model on ``questions`` and store one trace per question under ``out_dir``.

    Questions whose id is already in the store are skipped (resume); the store must have been written
    from the same weights. Questions whose prompt is too long (see :func:`fitting_prompts`) are refused one
    by one, with a warning, and the rest are extracted. Pass ``model`` and ``tokenizer`` to reuse a
    loaded model (e.g. a tiny test model); otherwise ``config.model`` is loaded. The model runs the attention
    backend of :meth:`ExtractConfig.attention_backend` during the run and is switched back afterwards.

    Returns:
        summary dict: n_questions, n_new, n_skipped (already stored), n_refused and refused
        (``[{"id", "reason"}]``, questions not extracted), seconds, questions_per_s, store path.

    Raises:
        StoreError: the store cannot be resumed (other settings or other weights; see :func:`resume_schema`).
    """
    config = config or ExtractConfig()
    if config.threads:
        torch.set_num_threads(config.threads)
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ValueError("question ids must be unique within one extraction")
    if model is None:
        model, tokenizer = load_model(config.model, config.model_dtype, config.device)
    model_id = getattr(model, "truthtrace_id", config.model)
    schema = resume_schema(out_dir, store_schema(config, model, model_id), config.overwrite)
    opts = config.capture_options(model.config.num_hidden_layers)
    implementation = config.attention_backend(model.config.num_hidden_layers)[1]
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    with attention_implementation(model, implementation), \
            TraceWriter(out_dir, schema, storage_dtype=config.storage_dtype, shard_max_bytes=config.shard_max_bytes,
                        shard_max_traces=config.shard_max_traces, resume=True, overwrite=config.overwrite) as writer:
        todo = [q for q in questions if not writer.has(q.id)]
        kept, prompts, refused = fitting_prompts(todo, tokenizer, config, model.config)
        compile_forward(model, config.compile, f"{model_id}.forward")  # inside the backend switch: compiled for it
        try:
            n_new = write_batches(writer, model, tokenizer, kept, prompts, config, opts, progress)
        finally:
            restore_forward(model)
    seconds = time.perf_counter() - start
    return {"store": str(out_dir), "n_questions": len(questions), "n_new": n_new,
            "n_skipped": len(questions) - len(todo), "n_refused": len(refused), "refused": refused,
            "seconds": round(seconds, 2), "questions_per_s": round(n_new / seconds, 3) if n_new else None,
            "truthtrace_version": __version__, "config": asdict(config)}


def write_batches(writer, model, tokenizer, questions: Sequence, prompts: list[list[int]], config: ExtractConfig,
                  opts: CaptureOptions, progress: bool = True) -> int:
    """Capture ``questions`` (with their prompt ids) batch by batch into ``writer``; returns how many were added."""
    start, n_new = time.perf_counter(), 0
    bar = tqdm(total=len(questions), desc="extract", unit="q", disable=not progress)
    for i in range(0, len(questions), config.batch_size):
        batch, batch_prompts = questions[i:i + config.batch_size], prompts[i:i + config.batch_size]
        for trace_id, tensors, meta in capture_batch(model, tokenizer, batch, config, opts, batch_prompts):
            writer.add(trace_id, tensors, meta)
            n_new += 1
        bar.update(len(batch))
        bar.set_postfix(q_per_s=f"{n_new / (time.perf_counter() - start):.2f}")
    bar.close()
    return n_new
