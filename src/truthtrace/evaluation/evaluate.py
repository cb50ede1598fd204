"""Stage ``evaluate``: grade every saved detector (every seed) on the same held-out split.

Thresholds and calibration are chosen on validation and applied to test; test traces
are never those a detector was fit or tuned on (the split comes from ``train``'s
``split.json``). Per detector the report gives the seed-mean test AUROC with a bootstrap
interval (test traces resampled, seeds averaged inside each resample), its spread over
seeds, AUPRC, accuracy and F1 at the validation threshold, TPR at 5% FPR and the
expected calibration error after Platt scaling on validation. It then compares the best
learned detector with the best training-free one on the same resamples (paired interval), and, when sampling
baselines were graded, the best single-pass learned detector with the best of them.

Cross-dataset mode (``test_features``): detectors trained on store A are tested on every
labelled trace of feature store B, with thresholds and calibration still from A's val.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from truthtrace import metrics
from truthtrace.detectors import CONFIG_FILE, DETECTORS, load_detector
from truthtrace.detectors.calibration import read_calibration
from truthtrace.evaluation.grading import aggregate_row, run_metrics
from truthtrace.evaluation.ood import ood_section
from truthtrace.evaluation.report import report_markdown, write_report
from truthtrace.evaluation.sections import calibration_section, label_rule_section, length_control, test_lengths
from truthtrace.evaluation.stacking import stack_row
from truthtrace.features.dataset import FeatureDataset, make_loader
from truthtrace.features.samples import MissingSamplesError, is_sample_key
from truthtrace.features.splits import SPLIT_FILE, read_split, split_balance
from truthtrace.fileio import write_text_atomic
from truthtrace.labels.io import read_label_csv
from truthtrace.labels.rules import parse_rule, parse_rules
from truthtrace.labels.score import SPANS
from truthtrace.machine import machine_info, versions
from truthtrace.store import TraceStore
from truthtrace.viz.reliability import plot_reliability, plot_risk_coverage
from truthtrace.viz.roc import plot_roc
from truthtrace.viz.transfer import plot_transfer

EVAL_SPLITS = ("random", "category")


@dataclass
class EvalConfig:
    """Settings of the ``evaluate`` stage.

    Args:
        detectors: names to grade; ``None`` or ``("all",)`` = every saved detector.
        n_bootstrap: bootstrap resamples for the AUROC intervals.
        ci_level: confidence level of those intervals.
        seed: bootstrap seed.
        batch_size: traces per scoring batch.
        max_fpr: the false-positive rate of the reported TPR.
        test_features, test_labels: cross-dataset mode: test on this feature store instead.
        figures: also draw the ROC, risk-coverage and reliability figures (needs matplotlib).
        label_rules: grade every detector under each of these label rules too (recomputed from the test
            labels' stored answers; ``labels.rules``), e.g. ``("contains_or_exact", "exact", "f1:0.5")``.
        label_span: the part of each answer the rules score (``labels.score.SPANS``).
        judge_model: the local instruction model of the ``judge`` rule (required when it is asked for).
        stack: fit the ``stack`` detector on the other detectors' validation scores and grade it.
        length_bins: answer-length strata of the length control (quantile bins of the test lengths).
        split: "random" (the train split only) or "category": also refit detectors leaving each category out
            and draw the transfer matrix (:mod:`truthtrace.evaluation.ood`; written under ``<out>/ood/``).
        ood_detectors: detectors refit per category (None: every saved one that is not torch-trained).
        transfer_detector: the detector of the transfer matrix ("" for none).
    Raises:
        ValueError: naming the field for out-of-range values.
    """

    detectors: tuple[str, ...] | None = None
    n_bootstrap: int = 1000
    ci_level: float = 0.95
    seed: int = 0
    batch_size: int = 128
    max_fpr: float = 0.05
    test_features: str | None = None
    test_labels: str | None = None
    figures: bool = True
    label_rules: tuple[str, ...] = ()
    label_span: str = "sentence"
    judge_model: str | None = None
    stack: bool = True
    length_bins: int = 4
    split: str = "random"
    ood_detectors: tuple[str, ...] | None = None
    transfer_detector: str = "probe"

    def __post_init__(self) -> None:
        if self.detectors is not None:
            self.detectors = tuple(self.detectors)
            if self.detectors in ((), ("all",)):
                self.detectors = None
        if self.n_bootstrap <= 0:
            raise ValueError(f"n_bootstrap must be > 0, got {self.n_bootstrap}")
        if not 0 < self.ci_level < 1:
            raise ValueError(f"ci_level must be in (0, 1), got {self.ci_level}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {self.batch_size}")
        if not 0 < self.max_fpr < 1:
            raise ValueError(f"max_fpr must be in (0, 1), got {self.max_fpr}")
        if (self.test_features is None) != (self.test_labels is None):
            raise ValueError("test_features and test_labels go together (cross-dataset mode)")
        self.label_rules = parse_rules(self.label_rules) if self.label_rules else ()
        if any(parse_rule(r)[0].needs_judge for r in self.label_rules) and not self.judge_model:
            raise ValueError("label_rules: rule 'judge' needs judge_model, a local instruction model "
                             "(--judge-model DIR; e.g. the embedded smollm2-135m-instruct)")
        if self.label_span not in SPANS:
            raise ValueError(f"label_span must be one of {SPANS}, got {self.label_span!r}")
        if self.length_bins < 1:
            raise ValueError(f"length_bins must be >= 1, got {self.length_bins}")
        if self.split not in EVAL_SPLITS:
            raise ValueError(f"split must be one of {EVAL_SPLITS}, got {self.split!r}")
        if self.split == "category" and self.test_features is not None:
            raise ValueError("split: 'category' refits on the training store; it does not go with test_features")
        self.ood_detectors = tuple(self.ood_detectors) if self.ood_detectors else None
        unknown = [d for d in (self.ood_detectors or ()) + ((self.transfer_detector,) if self.transfer_detector
                                                              else ()) if d not in DETECTORS or d == "stack"]
        if unknown:
            raise ValueError(f"ood_detectors/transfer_detector: unknown or not refittable {unknown}")


def find_runs(detectors_dir: Path, names: tuple[str, ...] | None) -> dict[str, list[Path]]:
    """Return ``{name: [seed dirs]}`` of saved detectors; ValueError if none or a name is missing."""
    runs: dict[str, list[Path]] = {}
    for cfg in sorted(detectors_dir.glob(f"*/seed-*/{CONFIG_FILE}")):
        runs.setdefault(cfg.parent.parent.name, []).append(cfg.parent)
    if names is not None:
        missing = [n for n in names if n not in runs]
        if missing:
            raise ValueError(f"{detectors_dir}: no saved detector {missing}; saved: {sorted(runs)}")
        runs = {n: runs[n] for n in names}
    if not runs:
        raise ValueError(f"{detectors_dir}: no saved detectors (run `truthtrace train` first)")
    return runs


def split_batches(data: dict, which: str, keys: tuple[str, ...], batch_size: int) -> tuple[list, np.ndarray, list]:
    """Batches of ``which`` ("val" or "test") with ``keys``, in store order, their labels ``(n,)`` and trace ids.

    Read once per (split, keys) and kept in ``data["cache"]``: every detector and seed reading the
    same inputs scores the same batches instead of streaming the store again.
    """
    cache = data.setdefault("cache", {})
    if (which, keys) not in cache:
        root, labels, split = ((data["features"], data["labels"], "val") if which == "val" else
                               (data["test_features"], data["test_labels"], data["test_split"]))
        ds = FeatureDataset(root, split=split, labels=labels, keys=keys, shuffle=False, require_labels=True)
        batches = list(make_loader(ds, batch_size=batch_size, num_workers=0))
        ys = np.concatenate([np.asarray(b["label"]) for b in batches]) if batches else np.zeros(0, np.int64)
        cache[(which, keys)] = (batches, ys, [str(t) for b in batches for t in b["trace_id"]])
    return cache[(which, keys)]


def _scores(det, data: dict, which: str, batch_size: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Score one split with ``det``: ``(scores (n,), labels (n,), trace ids)`` in store order."""
    batches, ys, ids = split_batches(data, which, tuple(det.inputs), batch_size)
    return det.score(iter(batches)), ys, ids


def graded_rows(runs: dict[str, list[Path]], data: dict, config: EvalConfig) -> list[dict]:
    """:func:`evaluate_runs` of every detector but the stack; a sampling baseline whose samples store is missing
    (e.g. none beside a cross-dataset test store) is left out with a warning saying why."""
    rows = []
    for name, dirs in runs.items():
        if name == "stack":
            continue
        try:
            rows.append(evaluate_runs(name, dirs, data, config))
        except MissingSamplesError as err:
            warnings.warn(f"detector {name} not graded: {err}", stacklevel=3)
    return rows


def evaluate_runs(name: str, run_dirs: list[Path], data: dict, config: EvalConfig) -> dict:
    """Score every seed of detector ``name``; return its aggregated row (``_scores`` kept for comparison)."""
    per_seed, test_sets, val_sets, y_test = [], [], [], None
    for run in run_dirs:
        det = load_detector(run)
        s_val, y_val, val_ids = _scores(det, data, "val", config.batch_size)
        s_test, y_test, test_ids = _scores(det, data, "test", config.batch_size)
        per_seed.append(dict(run_metrics(s_val, y_val, s_test, y_test, config, read_calibration(run)),
                             seed=run.name, detail=det.describe(), selection=det.selection()))
        test_sets.append(s_test)
        val_sets.append(s_val)
    return aggregate_row(name, per_seed, test_sets, y_test, config,
                         private={"_val": val_sets, "_y_val": y_val, "_val_ids": val_ids, "_ids": test_ids,
                                  "_runs": list(run_dirs)})


def paired_comparison(learned: dict, other: dict, config: EvalConfig, other_name: str) -> dict:
    """Row ``learned`` minus row ``other`` (``other_name``: "training_free", "sampling"): both mean test AUROCs and
    the difference with a paired bootstrap interval (the same test resamples for both)."""
    boot = metrics.bootstrap_mean_auroc(learned["_scores"], learned["_y"], config.n_bootstrap, config.seed,
                                        config.ci_level, baseline_sets=other["_scores"])
    return {"best_learned": learned["detector"], f"best_{other_name}": other["detector"],
            "learned_auroc": learned["test_auroc"], f"{other_name}_auroc": other["test_auroc"],
            "difference": boot["diff"], "difference_ci": boot["diff_ci"], "learned_wins": bool(boot["diff"] > 0),
            "significant": bool(boot["diff_ci"][0] > 0)}


def _best(rows: list[dict], keep) -> dict | None:
    """The row of highest mean test AUROC among those ``keep`` accepts (NaN rows never)."""
    cands = [r for r in rows if keep(r) and not math.isnan(r["test_auroc"])]
    return max(cands, key=lambda r: r["test_auroc"]) if cands else None


def compare_families(rows: list[dict], config: EvalConfig) -> dict | None:
    """Best learned vs best training-free detector (by mean test AUROC): the gap with a paired CI."""
    lrn, free = _best(rows, lambda r: r["family"] == "learned"), _best(rows, lambda r: r["family"] == "training-free")
    if lrn is None or free is None:
        return None
    return paired_comparison(lrn, free, config, "training_free")


def reads_samples(name: str) -> bool:
    """True for a detector that needs the sampled answers (``sample.*`` inputs): a sampling baseline."""
    cls = DETECTORS.get(name)
    return cls is not None and any(is_sample_key(k) for k in cls.inputs)


def compare_sampling(rows: list[dict], config: EvalConfig) -> dict | None:
    """The best single-pass learned detector (no samples, not the stack, which reads the sampling baselines'
    scores) vs the best sampling baseline: the gap with a paired CI; None without either."""
    lrn = _best(rows, lambda r: r["family"] == "learned" and r["detector"] != "stack" and not reads_samples(
        r["detector"]))
    smp = _best(rows, lambda r: reads_samples(r["detector"]))
    if lrn is None or smp is None:
        return None
    return paired_comparison(lrn, smp, config, "sampling")


def _data(features_dir, labels_csv, config: EvalConfig) -> dict:
    cross = config.test_features is not None
    return {"features": str(features_dir), "labels": str(labels_csv),
            "test_features": str(config.test_features if cross else features_dir),
            "test_labels": str(config.test_labels if cross else labels_csv),
            "test_split": None if cross else "test"}


def evaluate(features_dir: str | Path, labels_csv: str | Path, detectors_dir: str | Path, out_dir: str | Path,
             config: EvalConfig | None = None) -> dict:
    """Grade every saved detector and write ``report.json``, ``report.md`` and ``roc.png``/``.svg``.

    Args:
        features_dir: the feature store detectors were trained on.
        labels_csv: its labels.
        detectors_dir: ``out_dir`` of ``train`` (holds ``split.json`` and ``<name>/seed-<s>/``).
        out_dir: where the report goes.
        config: :class:`EvalConfig`.
    Returns:
        The report dict, rows sorted by mean test AUROC, best first.
    """
    config = config or EvalConfig()
    ddir, out = Path(detectors_dir), Path(out_dir)
    if not (ddir / SPLIT_FILE).is_file():
        raise FileNotFoundError(f"{ddir / SPLIT_FILE} not found: {ddir} is not the output of `truthtrace train`")
    split = read_split(ddir)
    data = _data(features_dir, labels_csv, config)
    runs = find_runs(ddir, config.detectors)
    rows = graded_rows(runs, data, config)
    stacked = stack_row(rows, ddir, config) if config.stack else None  # a saved stack is always refit
    rows += [stacked] if stacked is not None else []
    rows.sort(key=lambda r: -r["test_auroc"] if not math.isnan(r["test_auroc"]) else math.inf)
    comparison, sampling = compare_families(rows, config), compare_sampling(rows, config)
    extra = {"label_rules": label_rule_section(rows, data["test_labels"], config),
             "length_control": length_control(rows, test_lengths(data, split_batches, config.batch_size), config),
             "calibration": calibration_section(rows),
             "stack": stacked["stack"] if stacked is not None else None,
             "ood": ood_section(Path(features_dir), labels_csv, ddir, out / "ood", rows, config)
             if config.split == "category" else None}
    for r in rows:
        for key in [k for k in r if k.startswith("_")]:
            r.pop(key)

    report = write_report(out, {
        "features_dir": str(features_dir), "model": TraceStore(features_dir).schema.get("model", "?"),
        "split": split_balance(split, read_label_csv(labels_csv)),
        "test_features": data["test_features"], "cross_dataset": config.test_features is not None,
        "detectors_dir": str(ddir), "ci_level": config.ci_level, "n_bootstrap": config.n_bootstrap,
        "max_fpr": config.max_fpr, "results": rows, "comparison": comparison, "sampling_comparison": sampling,
        **extra,
        "machine": machine_info(), "versions": versions()})
    if config.figures:
        report["figures"] = _figures(report, out)
    write_text_atomic(out / "report.md", report_markdown(report))
    return report


def _figures(report: dict, out: Path) -> list[str]:
    """Draw ``roc``, ``risk_coverage`` and ``reliability`` (``.png``/``.svg``); a missing plotting extra is a
    warning, not a failure."""
    try:
        paths = plot_roc(report, out / "roc") + plot_risk_coverage(report, out / "risk_coverage")
        if report.get("calibration"):
            paths += plot_reliability(report["calibration"], out / "reliability")
        if (report.get("ood") or {}).get("transfer") and report["ood"]["transfer"]["categories"]:
            paths += plot_transfer(report["ood"]["transfer"], out / "transfer")
        return [str(p) for p in paths]
    except ImportError as exc:  # matplotlib missing: pyplot() names the extra
        warnings.warn(f"figures skipped: {exc}", stacklevel=2)
        return []
