"""The ``extract --features`` stage: questions -> a feature store, computed while the model runs.

    from truthtrace.features.direct import DirectConfig, extract_features
    summary = extract_features(questions, "runs/a/features", "runs/a/traces", DirectConfig(trace_sample=32))

Per batch: answers are generated as ``extract`` generates them (same attention backend), then one forward pass
feeds :mod:`truthtrace.features.forward`, which reduces every layer as it runs; no trace is materialised. The
feature store has the schema, keys and dtypes ``preprocess`` writes (its ``source`` is the trace store
``traces``, which holds the extraction schema and full traces of the first ``trace_sample`` questions only),
and each record's meta adds ``question``, ``answers`` and ``generation`` so ``truthtrace label`` reads the
feature store itself.

PCA of graph node features (when fitted, not given by ``pca_from``): records are first written with raw node
features to the staging store ``<out>.raw``; after the pass the PCA is fitted on train-split tokens sampled
exactly as ``preprocess`` samples them, applied, the records moved into ``<out>`` and the staging store
deleted. Both stores are resumable; a re-run skips stored ids and refuses other settings.
"""

from __future__ import annotations

import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from truthtrace import __version__
from truthtrace.features.build import FEATURE_FILES, check_existing, feature_schema, given_pca
from truthtrace.features.config import PCA_FILE, PreprocessConfig, graph_key
from truthtrace.features.forward import ROW_CHUNK
from truthtrace.features.graphs import PcaMoments, apply_pca, fit_pca, load_pca, save_pca
from truthtrace.features.passes import forward_records, generate_records
from truthtrace.features.record import feature_cast
from truthtrace.features.splits import SPLITS, make_split, write_split
from truthtrace.fileio import check_output_apart
from truthtrace.machine import peak_memory
from truthtrace.models import load_model
from truthtrace.models.attention import attention_implementation
from truthtrace.store import TraceStore, TraceWriter
from truthtrace.traces.capture import fitting_prompts, forward_traces, generate_answers, kept_start
from truthtrace.traces.extract import ExtractConfig, resume_schema, store_schema, trace_meta

STAGING_SUFFIX = ".raw"  # <out>.raw: records with raw node features, until the PCA is fitted
RECORD_META = ("question_id", "category", "n_prompt_tokens", "n_answer_tokens", "question", "answers", "generation")


@dataclass
class DirectConfig:
    """Options of ``extract --features``; validated on construction (ValueError names the field).

    Args:
        extract: model, generation and capture options, as for ``extract``. ``capture="forward"``: answers are
            generated under ``attn_backend``, then one forward pass feeds the reducers; ``"generate"``: the
            generation steps feed them (no second pass). The sampled full traces come from a forward pass under
            ``attn_backend`` over the same answers, in both modes.
        features: feature options, as for ``preprocess`` (graphs, PCA, split).
        trace_sample: also store full traces of the first ``trace_sample`` questions (0: none), for ``visualize``.
        row_chunk: attention rows whose weights are recomputed at once (``(H, row_chunk, T)`` float32).
    """

    extract: ExtractConfig = field(default_factory=ExtractConfig)
    features: PreprocessConfig = field(default_factory=PreprocessConfig)
    trace_sample: int = 0
    row_chunk: int = ROW_CHUNK

    def __post_init__(self) -> None:
        if not isinstance(self.extract, ExtractConfig):
            raise ValueError(f"extract must be an ExtractConfig, got {type(self.extract).__name__}")
        if not isinstance(self.features, PreprocessConfig):
            raise ValueError(f"features must be a PreprocessConfig, got {type(self.features).__name__}")
        for name in ("trace_sample", "row_chunk"):
            value, low = getattr(self, name), 0 if name == "trace_sample" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")

    @property
    def overwrite(self) -> bool:
        """Replace existing stores (``extract.overwrite`` or ``features.overwrite``)."""
        return self.extract.overwrite or self.features.overwrite


def staging_dir(out: str | Path) -> Path:
    """Where records wait, with raw node features, for the PCA: ``<out>.raw`` beside the feature store."""
    out = Path(out)
    return out.with_name(out.name + STAGING_SUFFIX)


def record_meta(meta: dict) -> dict:
    """A feature record's meta from its trace meta: preprocess's four fields plus what labelling needs."""
    return {k: meta.get(k) for k in RECORD_META}


def project_nodes(tensors: dict, schema: dict, pca) -> dict:
    """``tensors`` with every ``graph.{l}.x`` ``(n, d)`` projected by ``pca`` (``mean (G, d), comps (G, k, d)``)."""
    graph = schema["graph"]
    if not graph or pca is None:
        return tensors
    out = dict(tensors)
    for g, layer in enumerate(graph["layers"]):
        key = graph_key(layer, "x")
        out[key] = apply_pca(out[key].float(), pca[0][g], pca[1][g]).contiguous()
    return out


def sample_pca(staged: TraceStore, train_ids: list[str], schema: dict, config: PreprocessConfig):
    """The PCA ``preprocess`` fits, from staged records: the same train traces in the same seeded order, at
    most ``pca_max_tokens`` tokens. Returns ``(mean (G, d), components (G, node_dim, d))``."""
    graph = schema["graph"]
    moments = PcaMoments(len(graph["layers"]), schema["d_model"])
    for i in np.random.default_rng(config.split_seed).permutation(len(train_ids)):
        x = torch.stack([staged.read(train_ids[i], graph_key(layer, "x")) for layer in graph["layers"]]).float()
        moments.add(x[:, : config.pca_max_tokens - moments.count])  # (G, n, d)
        if moments.count >= config.pca_max_tokens:
            break
    return fit_pca(moments, graph["node_dim"])


def _fitted_pca(out: Path, staged: TraceStore, split_doc: dict, schema: dict, config: PreprocessConfig):
    """The PCA saved by an interrupted run (when it fits), else the one fitted on the staged train records."""
    graph = schema["graph"]
    if (out / PCA_FILE).exists():
        mean, comps = load_pca(out / PCA_FILE)
        if tuple(comps.shape) == (len(graph["layers"]), graph["node_dim"], schema["d_model"]):
            return mean, comps
    mean, comps = sample_pca(staged, split_doc["train"], schema, config)
    save_pca(out / PCA_FILE, mean, comps)
    return mean, comps


def finish_staged(writer: TraceWriter, out: Path, split_doc: dict, schema: dict, config: PreprocessConfig,
                  progress: bool = True) -> int:
    """Fit (or reload) the PCA, move every staged record into ``writer`` projected, delete the staging store.

    Returns:
        how many records were moved.
    """
    stage = staging_dir(out)
    staged = TraceStore(stage)
    pca, moved = _fitted_pca(out, staged, split_doc, schema, config), 0
    for tid in tqdm(staged.ids(), desc="apply pca", unit="rec", disable=not progress):
        if not writer.has(tid):
            tensors = project_nodes(staged.get(tid).tensors(), schema, pca)
            writer.add(tid, {k: feature_cast(v) for k, v in tensors.items()}, staged.meta(tid))
            moved += 1
    writer.flush()
    shutil.rmtree(stage)
    return moved


def _needs_staging(schema: dict, config: PreprocessConfig) -> bool:
    """True when the node-feature PCA is fitted on this run's own train tokens (not given by ``pca_from``)."""
    graph = schema["graph"]
    return bool(graph and graph["pca"] and not config.pca_from)


def _given_or_none(schema: dict, config: PreprocessConfig, out: Path):
    """The ``pca_from`` PCA (saved beside the shards), or None; without PCA a stale ``pca.safetensors`` goes."""
    graph = schema["graph"]
    if not graph or not graph["pca"]:
        (out / PCA_FILE).unlink(missing_ok=True)
        return None
    if not config.pca_from:
        return None
    mean, comps = given_pca(config.pca_from, schema)
    save_pca(out / PCA_FILE, mean, comps)
    return mean, comps


def extract_features(questions: Sequence, out: str | Path, traces: str | Path, config: DirectConfig | None = None,
                     model=None, tokenizer=None, progress: bool = True, source: str | Path | None = None,
                     finish: bool = True) -> dict:
    """Run the model on ``questions`` and write (or resume) the feature store ``out`` directly.

    Args:
        questions: the questions (unique ids); one record per question whose prompt fits (see ``extract``).
        out: the feature store directory (``split.json``, ``pca.safetensors`` beside its shards).
        traces: a trace store holding the extraction schema and full traces of the first
            ``config.trace_sample`` questions (the feature store's ``source``, read by the live engine).
        config: options (default ``DirectConfig()``).
        model, tokenizer: a loaded model to reuse; else ``config.extract.model`` is loaded.
        progress: show progress bars.
        source: the trace store the schema names as ``source`` (default ``traces``); a torchrun rank names the
            merged trace store, so every rank's records share one schema (:mod:`truthtrace.features.sharded`).
        finish: fit the PCA and move the staged records into ``out``; False (a torchrun rank) leaves them staged.
    Returns:
        summary: out, traces, n_questions, n_new, n_skipped, n_refused, refused, n_traces, split sizes, pca,
        seconds, questions_per_s, bytes_on_disk, bytes_per_record, peak_memory_mb.
    Raises:
        ValueError: bad settings, or ``out`` holds a feature store of other settings (names ``--overwrite``).
        StoreError: ``traces`` was written from other weights or settings.
    """
    config = config or DirectConfig()
    ext, feat, out, traces, t0 = config.extract, config.features, Path(out), Path(traces), time.perf_counter()
    check_output_apart(out, {"trace store": traces, "--pca-from": feat.pca_from})
    if ext.threads or feat.threads:
        torch.set_num_threads(ext.threads or feat.threads)
    if len({q.id for q in questions}) != len(questions):
        raise ValueError("question ids must be unique within one extraction")
    if model is None:
        model, tokenizer = load_model(ext.model, ext.model_dtype, ext.device)
    trace_schema = resume_schema(traces, store_schema(ext, model, getattr(model, "truthtrace_id", ext.model)),
                                 ext.overwrite)
    kept, prompts, refused = fitting_prompts(questions, tokenizer, ext, model.config)
    if not kept:
        raise ValueError("no question to extract: every prompt is over the length limit (see the warnings)")
    schema = feature_schema(SimpleNamespace(schema=trace_schema, root=Path(source or traces)), feat)
    split_doc = make_split([q.id for q in kept], [q.id for q in kept], feat.fractions, feat.split_seed)
    if config.overwrite and staging_dir(out).exists():
        shutil.rmtree(staging_dir(out))
    if not config.overwrite:
        check_existing(out, schema, split_doc)
    torch.manual_seed(ext.seed)
    with TraceWriter(out, schema, storage_dtype="float16", shard_max_traces=feat.shard_max_traces, resume=True,
                     overwrite=config.overwrite, own_files=FEATURE_FILES) as writer, \
            TraceWriter(traces, trace_schema, storage_dtype=ext.storage_dtype, shard_max_bytes=ext.shard_max_bytes,
                        shard_max_traces=ext.shard_max_traces, resume=True, overwrite=ext.overwrite) as sampled:
        write_split(out, split_doc)
        staged = _needs_staging(schema, feat) and not all(writer.has(q.id) for q in kept)
        target = TraceWriter(staging_dir(out), dict(schema, staging=True), storage_dtype="float16",
                             shard_max_traces=feat.shard_max_traces, resume=True) if staged else writer
        sample_ids = {q.id for q in kept[:config.trace_sample]}
        done = lambda q: (writer.has(q.id) or target.has(q.id)) and (q.id not in sample_ids  # noqa: E731
                                                                     or sampled.has(q.id))
        todo = [(q, p) for q, p in zip(kept, prompts) if not done(q)]
        with target if staged else nullcontext():  # the final writer is open already
            n_new = _write_batches(model, tokenizer, todo, config, schema, _given_or_none(schema, feat, out),
                                   (writer, target, sampled, sample_ids), progress)
        if staged and finish:
            finish_staged(writer, out, split_doc, schema, feat, progress)
    seconds = time.perf_counter() - t0
    info = TraceStore(out).info()
    return {"out": str(out), "traces": str(traces), "n_questions": len(questions), "n_new": n_new,
            "n_skipped": len(kept) - len(todo), "n_refused": len(refused), "refused": refused,
            "n_traces": len(TraceStore(traces)), "split": {name: len(split_doc[name]) for name in SPLITS},
            "pca": (out / PCA_FILE).exists(), "seconds": round(seconds, 2),
            "questions_per_s": round(n_new / seconds, 3) if n_new else None,
            "bytes_on_disk": info["bytes_on_disk"], "bytes_per_record": round(info["bytes_on_disk"] / len(kept)),
            "truthtrace_version": __version__, **peak_memory()}


def _write_batches(model, tokenizer, todo, config: DirectConfig, schema: dict, pca, writers, progress) -> int:
    """Generate, reduce and write ``todo`` (``(question, prompt ids)`` pairs) batch by batch; returns how many
    feature records were added. ``writers`` = (final, target, sampled traces, ids to keep full traces of)."""
    ext, (writer, target, sampled, sample_ids) = config.extract, writers
    n_layers = model.config.num_hidden_layers
    implementation, opts = ext.attention_backend(n_layers)[1], ext.capture_options(n_layers)
    n_new, start = 0, time.perf_counter()
    bar = tqdm(total=len(todo), desc="extract features", unit="q", disable=not progress)
    for i in range(0, len(todo), ext.batch_size):
        batch = todo[i:i + ext.batch_size]
        answers, records = _answer_batch(model, tokenizer, batch, config, schema, implementation)
        prompts = [p for _, p in batch]
        seqs, n_prompt = [p + a for p, a in zip(prompts, answers)], [len(p) for p in prompts]
        metas = [trace_meta(q, p, a, tokenizer, kept_start(ext.keep, len(p) + len(a), len(p)))
                 for (q, p), a in zip(batch, answers)]
        new = [j for j, (q, _) in enumerate(batch) if not (writer.has(q.id) or target.has(q.id))]
        if new and records is None:
            records = forward_records(model, [seqs[j] for j in new], [n_prompt[j] for j in new], schema, ext.keep,
                                      tokenizer.pad_token_id, config.row_chunk, [metas[j]["exact_span"] for j in new])
        elif new:
            records = [records[j] for j in new]
        for j, rec in zip(new, records or []):
            target.add(batch[j][0].id, {k: feature_cast(v) for k, v in project_nodes(rec, schema, pca).items()},
                       record_meta(metas[j]))
        n_new += len(new)
        full = [j for j, (q, _) in enumerate(batch) if q.id in sample_ids and not sampled.has(q.id)]
        if full:
            with attention_implementation(model, implementation):
                tensors = forward_traces(model, [seqs[j] for j in full], [n_prompt[j] for j in full], opts,
                                         tokenizer.pad_token_id)
            for j, t in zip(full, tensors):
                sampled.add(batch[j][0].id, t, metas[j])
        bar.update(len(batch))
        bar.set_postfix(q_per_s=f"{(i + len(batch)) / (time.perf_counter() - start):.2f}")
    bar.close()
    return n_new


def _answer_batch(model, tokenizer, batch: list, config: DirectConfig, schema: dict, implementation):
    """``(answers, records)`` of one batch of ``(question, prompt ids)``: records from the generation steps
    (``capture="generate"``), or None (``"forward"``: generated under ``implementation``; the forward pass comes
    after)."""
    ext, prompts = config.extract, [p for _, p in batch]
    sampling = (ext.do_sample, ext.temperature, ext.top_p)
    if ext.capture == "generate":
        return generate_records(model, tokenizer, prompts, schema, ext.keep, ext.max_new_tokens, sampling,
                                config.row_chunk, [q.question for q, _ in batch])
    with attention_implementation(model, implementation):
        return generate_answers(model, tokenizer, prompts, ext.max_new_tokens, *sampling), None
