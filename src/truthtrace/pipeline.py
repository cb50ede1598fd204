"""``truthtrace run``: the whole loop on one model — questions, traces, labels, feature
store, detectors, report — each stage writing its files under one run directory.

By default the feature store is written while the model runs (``extract --features``: no full traces
but for the first ``trace_sample`` questions, kept for ``visualize``) and labels are read from it;
``full_traces=True`` stores every trace and preprocesses them, as before. Re-running the same command
resumes: extraction skips stored ids, the cheap later stages are recomputed from the files.

``procs`` > 1 runs the extract stage, and the train stage's fits (:mod:`truthtrace.detectors.train_pool`), on
that many processes of this machine. Extraction (:mod:`truthtrace.local_ranks`):
each takes every N-th question into its rank stores and rank 0 merges them and fits the one PCA, as under
torchrun (:mod:`truthtrace.features.sharded`); the full traces kept for ``visualize`` are then in
``traces/merged``. Once merged, the ranks' own stores are deleted, and a rerun resumes the merged stores in one
process; a run interrupted before the merge resumes with the same ``procs``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from truthtrace import distributed
from truthtrace.data import load_bundled, load_questions, save_questions
from truthtrace.detectors import DETECTORS
from truthtrace.detectors.train import DEFAULT_DETECTORS, TrainConfig, train
from truthtrace.evaluation.evaluate import EvalConfig, evaluate
from truthtrace.features import GRAPHS, PreprocessConfig, preprocess
from truthtrace.features.direct import DirectConfig, extract_features, staging_dir
from truthtrace.features.sharded import rank_features, sharded_extract_features
from truthtrace.fileio import read_versioned_json, write_json_atomic
from truthtrace.labels.rules import DEFAULT_EVAL_RULES
from truthtrace.labels.score import LabelConfig, label_store
from truthtrace.local_ranks import run_local_ranks
from truthtrace.models.adapters import split_adapter_spec
from truthtrace.models.resolve import resolve_model
from truthtrace.store import TraceStore
from truthtrace.traces.extract import ExtractConfig, extract
from truthtrace.traces.sampling import SampleConfig, greedy_from_traces, sample_questions
from truthtrace.traces.sharded import MERGED_DIR

# the detectors that read the samples store (``samples`` > 0 adds them to the default set)
SAMPLING_DETECTORS = ("semantic_entropy", "eigenscore", "selfcheck_ngram", "p_true", "sep")
RANKS_JOB = ".ranks.json"  # in the run directory: the run config the extract workers of ``procs`` > 1 read
RANKS_FORMAT = "truthtrace.run_ranks"  # that file's format (version 1), and of each rank's summary beside it


def _without_graph_detectors(detectors: list[str]) -> list[str]:
    """``detectors`` less the ones that read attention graphs, for a run without graphs.

    Raises:
        ValueError: graph detectors were asked for by name (not just part of the default set).
    """
    graph = [d for d in detectors if d in DETECTORS and GRAPHS in DETECTORS[d].inputs]
    if not graph:
        return list(detectors)
    if list(detectors) != list(DEFAULT_DETECTORS):
        raise ValueError(f"detectors {graph} read attention graphs, which graphs=False (--no-graphs) turns off: "
                         "drop them from --detectors or build the graphs")
    warnings.warn(f"graphs=False (--no-graphs): the default detectors {graph} need attention graphs and are left "
                  "out of this run", stacklevel=3)
    return [d for d in detectors if d not in graph]


@dataclass
class RunConfig:
    """Options of ``truthtrace run``; validated on construction."""

    out_dir: str = "runs/default"
    n_questions: int | None = None  # None: every bundled question (2,312) or the whole user file
    questions: str | None = None  # a user file; None: the bundled set
    seed: int = 0
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    label_rule: str = "contains_or_exact"
    label_rules: tuple[str, ...] = DEFAULT_EVAL_RULES  # every detector is also graded under these (report)
    judge_model: str | None = None  # the local instruction model of the "judge" label rule
    split: str = "random"  # "category": also leave-one-category-out and the transfer matrix (evaluate --split)
    detectors: list[str] = field(default_factory=lambda: list(DEFAULT_DETECTORS))
    seeds: tuple[int, ...] = (0,)  # --seeds 0-2 for a multi-seed report (the gnn costs ~10 min a seed on 2 cores)
    graphs: bool = True  # attention graphs for the gnn detector (the slowest part of preprocess)
    trace_sample: int = 32  # full traces kept for the first N questions (visualize); the rest only as features
    full_traces: bool = False  # store every full trace, then preprocess (the old path; needs ~2 MB a question)
    samples: int = 0  # K sampled answers per question for the sampling baselines (0: none; 10 as in the papers)
    sample_temperature: float = 1.0
    sample_top_p: float = 1.0
    procs: int = 1  # extract and train on this many processes of this machine (see the module docstring)

    def __post_init__(self):
        if not self.graphs:
            self.detectors = _without_graph_detectors(self.detectors)
        if self.n_questions is not None and self.n_questions < 10:
            raise ValueError(f"n_questions must be >= 10 to split train/val/test, got {self.n_questions}")
        if not self.detectors:
            raise ValueError("detectors must name at least one detector")
        if not isinstance(self.samples, int) or self.samples < 0 or self.samples == 1:
            raise ValueError(f"samples must be 0 (none) or an int >= 2, got {self.samples!r}")
        if self.samples and list(self.detectors) == list(DEFAULT_DETECTORS):
            self.detectors = list(self.detectors) + list(SAMPLING_DETECTORS)
        if not isinstance(self.procs, int) or isinstance(self.procs, bool) or self.procs < 1:
            raise ValueError(f"procs must be an int >= 1, got {self.procs!r}")
        if not isinstance(self.trace_sample, int) or self.trace_sample < 0:
            raise ValueError(f"trace_sample must be an int >= 0, got {self.trace_sample!r}")
        # checked now, not after an hour of extraction: bad rules, or judge without judge_model
        self.label_rules = EvalConfig(label_rules=self.label_rules, judge_model=self.judge_model,
                                      split=self.split).label_rules

    @property
    def paths(self) -> dict[str, Path]:
        """Every file or directory the run writes, by stage."""
        root = Path(self.out_dir)
        return {"questions": root / "questions.jsonl", "traces": root / "traces", "labels": root / "labels.csv",
                "features": root / "features", "samples": root / "samples", "detectors": root / "detectors",
                "report": root / "report"}


def _direct(config: RunConfig) -> DirectConfig:
    return DirectConfig(config.extract, PreprocessConfig(graphs=config.graphs, overwrite=config.extract.overwrite),
                        trace_sample=config.trace_sample)


def _extract(config: RunConfig, questions, model, tokenizer, progress: bool, log=print) -> dict:
    """The extract stage: every full trace (``full_traces``), or the feature store written in the forward pass
    (on ``procs`` processes when that applies, see :func:`ranks_for`)."""
    paths = config.paths
    if config.full_traces:
        return extract(questions, paths["traces"], config.extract, model, tokenizer, progress)
    why = _one_process_reason(config, model) if config.procs > 1 else None
    if why:
        log(f"      extracting in one process (procs={config.procs}: {why})")
    procs = ranks_for(config, model)
    if procs > 1:
        return _extract_on_ranks(config, procs)
    merged = paths["traces"] / MERGED_DIR  # a run that extracted on ranks keeps its sampled traces there
    traces = merged if (merged / "index.json").exists() else paths["traces"]
    return extract_features(questions, paths["features"], traces, _direct(config), model, tokenizer, progress)


def _one_process_reason(config: RunConfig, model) -> str | None:
    """Why extraction cannot run on ranks (then one process does it), or None when it can."""
    if model is not None:
        return "a model object was given"  # the workers would load their own
    if distributed.launched():
        return "already one rank of a launcher's group"
    if config.full_traces:
        return "full traces are extracted in one process"
    features = config.paths["features"]
    if (features / "index.json").exists() and not rank_features(features, 0).exists():
        return "the feature store is there without rank stores (one process wrote it, or ranks that were merged)"
    return None


def ranks_for(config: RunConfig, model=None) -> int:
    """Processes the extract stage uses: ``config.procs``, but 1 when a model object is given (workers load
    their own), under a launcher, for ``full_traces``, or to resume a feature store that has no rank stores beside it
    (written by one process, or merged from ranks, whose own stores are then deleted)."""
    return 1 if config.procs == 1 or _one_process_reason(config, model) else config.procs


def _extract_on_ranks(config: RunConfig, procs: int) -> dict:
    """:func:`rank_extract` on ``procs`` local processes; the ranks' summaries summed into one."""
    job = Path(config.out_dir) / RANKS_JOB
    # an embedded or .gguf model is converted into the cache here, once, before the ranks load it
    resolve_model(split_adapter_spec(config.extract.model)[0])
    write_json_atomic(job, {"format": RANKS_FORMAT, "version": 1, "run": dataclasses.asdict(config)})
    t0 = time.perf_counter()
    run_local_ranks(procs, ["run-rank", str(job)])
    ranks = [read_versioned_json(job.with_name(f"{job.name}.rank-{r}"), RANKS_FORMAT, (1,))["summary"]
             for r in range(procs)]
    seconds = time.perf_counter() - t0
    _remove_rank_stores(config, procs)
    n_new = sum(r["n_new"] for r in ranks)
    return {**ranks[0], "n_new": n_new, "n_skipped": sum(r["n_skipped"] for r in ranks),
            "n_refused": sum(r["n_refused"] for r in ranks), "refused": [q for r in ranks for q in r["refused"]],
            "n_traces": sum(r["n_traces"] for r in ranks), "n_questions": sum(r["n_questions"] for r in ranks),
            "traces": str(config.paths["traces"] / MERGED_DIR), "procs": procs, "seconds": round(seconds, 2),
            "questions_per_s": round(n_new / seconds, 3) if n_new else None,
            "peak_memory_mb_per_rank": [r.get("peak_memory_mb") for r in ranks]}


def _remove_rank_stores(config: RunConfig, procs: int) -> None:
    """After the merge: the ranks' own stores (their staged raw records: ~0.8 MB a question) are deleted; the
    merged trace store keeps its shards (hard links). A rerun then resumes the merged stores in one process."""
    paths = config.paths
    for rank in range(procs):
        for folder in (rank_features(paths["features"], rank), staging_dir(rank_features(paths["features"], rank)),
                       distributed.rank_dir(paths["traces"], rank)):
            shutil.rmtree(folder, ignore_errors=True)


def run_config_from_dict(doc: dict) -> RunConfig:
    """The :class:`RunConfig` that ``dataclasses.asdict`` gave ``doc`` (as the job file holds it)."""
    extract_doc = doc["extract"]
    return RunConfig(**{**doc, "extract": ExtractConfig(**extract_doc), "seeds": tuple(doc["seeds"]),
                        "label_rules": tuple(doc["label_rules"])})


def rank_extract(job: str | Path) -> dict:
    """One rank of :func:`_extract_on_ranks` (``truthtrace run-rank JOB``): this rank's share of the run's saved
    questions, merged by rank 0; writes its summary beside ``job`` as ``JOB.rank-k``."""
    job = Path(job)
    config = run_config_from_dict(read_versioned_json(job, RANKS_FORMAT, (1,))["run"])
    paths = config.paths
    questions = load_questions(paths["questions"])
    summary = sharded_extract_features(questions, paths["features"], paths["traces"], _direct(config))
    write_json_atomic(job.with_name(f"{job.name}.rank-{summary['rank']}"),
                      {"format": RANKS_FORMAT, "version": 1, "summary": summary})
    return summary


def _answers_store(config: RunConfig) -> Path:
    """Where ``label`` reads the answers: the feature store, whose records keep them, unless full traces were
    stored (``full_traces``, or a run directory whose features were preprocessed from them before)."""
    paths = config.paths
    if config.full_traces:
        return paths["traces"]
    _, meta = next(TraceStore(paths["features"]).metas(), (None, {}))
    return paths["features"] if "answers" in meta else paths["traces"]


def _sample(config: RunConfig, questions, answers_from: Path, model, tokenizer, progress: bool) -> dict:
    """The sample stage: ``config.samples`` answers per question beside the greedy one the labels judge."""
    options = SampleConfig.from_options(config.extract, samples=config.samples, temperature=config.sample_temperature,
                                        top_p=config.sample_top_p, capture=config.extract.capture,
                                        overwrite=config.extract.overwrite)
    return sample_questions(questions, config.paths["samples"], options, model, tokenizer,
                            greedy=greedy_from_traces(answers_from), progress=progress)


def _questions(config: RunConfig):
    if config.questions:
        return load_questions(config.questions, limit=config.n_questions)
    return load_bundled(n=config.n_questions, seed=config.seed)


def run(config: RunConfig | None = None, model=None, tokenizer=None, progress: bool = True, log=print) -> dict:
    """Run every stage; returns the evaluation report dict with ``paths`` and ``timings`` added."""
    config = config or RunConfig()
    paths = config.paths
    timings: dict[str, float] = {}

    def stage(name, fn):
        t0 = time.perf_counter()
        result = fn()
        timings[name] = round(time.perf_counter() - t0, 2)
        return result

    questions = stage("questions", lambda: _questions(config))
    save_questions(questions, paths["questions"])
    log(f"[1/6] {len(questions)} questions -> {paths['questions']}")
    ext = stage("extract", lambda: _extract(config, questions, model, tokenizer, progress, log))
    log(f"[2/6] {'traces' if config.full_traces else 'features'}: {ext['n_new']} new, {ext['n_skipped']} resumed, "
        f"{ext['questions_per_s']} q/s -> {paths['traces' if config.full_traces else 'features']}")
    answers_from = _answers_store(config)
    lab = stage("label", lambda: label_store(answers_from, paths["labels"], LabelConfig(rule=config.label_rule)))
    log(f"[3/6] labels: {lab['correct']}/{lab['n']} correct -> {paths['labels']}")
    if config.samples:
        smp = stage("sample", lambda: _sample(config, questions, answers_from, model, tokenizer, progress))
        log(f"      samples: {config.samples} per question, {smp.get('samples_per_s')} samples/s -> {paths['samples']}")
    if config.full_traces:
        stage("preprocess", lambda: preprocess(paths["traces"], paths["features"],
                                               PreprocessConfig(graphs=config.graphs), labels=paths["labels"],
                                               progress=progress))
    log(f"[4/6] feature store -> {paths['features']}"
        + ("" if config.full_traces else f" (written during extraction; {ext['n_traces']} full traces kept)"))
    stage("train", lambda: train(paths["features"], paths["labels"], paths["detectors"],
                                 TrainConfig(detectors=tuple(config.detectors), seeds=config.seeds,
                                             procs=config.procs),
                                 progress=progress))
    log(f"[5/6] detectors {config.detectors} -> {paths['detectors']}")
    report = stage("evaluate", lambda: evaluate(paths["features"], paths["labels"], paths["detectors"],
                                                paths["report"], EvalConfig(seed=config.seed,
                                                                            label_rules=config.label_rules,
                                                                            judge_model=config.judge_model,
                                                                            split=config.split)))
    log(f"[6/6] report -> {paths['report']}")
    written = {**{k: str(v) for k, v in paths.items()}, "traces": ext.get("traces", str(paths["traces"]))}
    report = dict(report, paths=written, timings=timings,
                  extraction=ext, labels_summary=lab)
    return report
