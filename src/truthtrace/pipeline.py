"""``truthtrace run``: the whole loop on one model — questions, traces, labels, feature
store, detectors, report — each stage writing its files under one run directory.

By default the feature store is written while the model runs (``extract --features``: no full traces
but for the first ``trace_sample`` questions, kept for ``visualize``) and labels are read from it;
``full_traces=True`` stores every trace and preprocesses them, as before. Re-running the same command
resumes: extraction skips stored ids, the cheap later stages are recomputed from the files.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from truthtrace.data import load_bundled, load_questions, save_questions
from truthtrace.detectors import DETECTORS
from truthtrace.detectors.train import DEFAULT_DETECTORS, TrainConfig, train
from truthtrace.evaluation.evaluate import EvalConfig, evaluate
from truthtrace.features import GRAPHS, PreprocessConfig, preprocess
from truthtrace.features.direct import DirectConfig, extract_features
from truthtrace.labels.rules import DEFAULT_EVAL_RULES
from truthtrace.labels.score import LabelConfig, label_store
from truthtrace.store import TraceStore
from truthtrace.traces.extract import ExtractConfig, extract
from truthtrace.traces.sampling import SampleConfig, greedy_from_traces, sample_questions

# the detectors that read the samples store (``samples`` > 0 adds them to the default set)
SAMPLING_DETECTORS = ("semantic_entropy", "eigenscore", "selfcheck_ngram", "p_true", "sep")


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


def _extract(config: RunConfig, questions, model, tokenizer, progress: bool) -> dict:
    """The extract stage: every full trace (``full_traces``), or the feature store written in the forward pass."""
    paths = config.paths
    if config.full_traces:
        return extract(questions, paths["traces"], config.extract, model, tokenizer, progress)
    direct = DirectConfig(config.extract, PreprocessConfig(graphs=config.graphs, overwrite=config.extract.overwrite),
                          trace_sample=config.trace_sample)
    return extract_features(questions, paths["features"], paths["traces"], direct, model, tokenizer, progress)


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
    ext = stage("extract", lambda: _extract(config, questions, model, tokenizer, progress))
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
                                 TrainConfig(detectors=tuple(config.detectors), seeds=config.seeds),
                                 progress=progress))
    log(f"[5/6] detectors {config.detectors} -> {paths['detectors']}")
    report = stage("evaluate", lambda: evaluate(paths["features"], paths["labels"], paths["detectors"],
                                                paths["report"], EvalConfig(seed=config.seed,
                                                                            label_rules=config.label_rules,
                                                                            judge_model=config.judge_model,
                                                                            split=config.split)))
    log(f"[6/6] report -> {paths['report']}")
    report = dict(report, paths={k: str(v) for k, v in paths.items()}, timings=timings,
                  extraction=ext, labels_summary=lab)
    return report
