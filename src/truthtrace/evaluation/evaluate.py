"""Stage ``evaluate``: grade every saved detector (every seed) on the same held-out split.

Thresholds and calibration are chosen on validation and applied to test; test traces
are never those a detector was fit or tuned on (the split comes from ``train``'s
``split.json``). Per detector the report gives the seed-mean test AUROC with a bootstrap
interval (test traces resampled, seeds averaged inside each resample), its spread over
seeds, AUPRC, accuracy and F1 at the validation threshold, TPR at 5% FPR and the
expected calibration error after Platt scaling on validation. It then compares the best
learned detector with the best training-free one on the same resamples (paired interval).

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
from truthtrace.evaluation.report import report_markdown, write_report
from truthtrace.features.dataset import FeatureDataset, make_loader
from truthtrace.features.splits import SPLIT_FILE, read_split, split_balance
from truthtrace.fileio import write_text_atomic
from truthtrace.labels.io import read_label_csv
from truthtrace.machine import machine_info, versions
from truthtrace.store import TraceStore
from truthtrace.viz.roc import plot_roc


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
        figures: also draw the ROC figure (needs matplotlib).
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


def _split_batches(data: dict, which: str, keys: tuple[str, ...], batch_size: int) -> tuple[list, np.ndarray]:
    """Batches of ``which`` ("val" or "test") with ``keys``, in store order, and their labels ``(n,)``.

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
        cache[(which, keys)] = (batches, ys)
    return cache[(which, keys)]


def _scores(det, data: dict, which: str, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Score one split with ``det``: ``(scores (n,), labels (n,))`` in store order."""
    batches, ys = _split_batches(data, which, tuple(det.inputs), batch_size)
    return det.score(iter(batches)), ys


def run_metrics(s_val, y_val, s_test, y_test, config: EvalConfig) -> dict:
    """Every per-run metric: threshold, calibration and ECE from val, the rest on test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one-class splits give NaN, reported as n/a
        thr = metrics.threshold_from_val(s_val, y_val)
        a, b = metrics.platt_calibrator(s_val, y_val)
        probs = 1 / (1 + np.exp(-np.clip(a * s_test + b, -50, 50))) if math.isfinite(a) else None
        return {
            "test_auroc": metrics.auroc(s_test, y_test),
            "test_auprc": metrics.auprc(s_test, y_test),
            "test_accuracy": metrics.accuracy_at(s_test, y_test, thr),
            "test_f1": metrics.f1_at(s_test, y_test, thr),
            "test_tpr_at_fpr": metrics.tpr_at_fpr(s_test, y_test, config.max_fpr),
            "test_ece": metrics.expected_calibration_error(probs, y_test) if probs is not None else math.nan,
            "val_auroc": metrics.auroc(s_val, y_val),
            "threshold": thr,
        }


def evaluate_runs(name: str, run_dirs: list[Path], data: dict, config: EvalConfig) -> dict:
    """Score every seed of detector ``name``; return its aggregated row (``_scores`` kept for comparison)."""
    per_seed, test_sets, y_test = [], [], None
    for run in run_dirs:
        det = load_detector(run)
        s_val, y_val = _scores(det, data, "val", config.batch_size)
        s_test, y_test = _scores(det, data, "test", config.batch_size)
        per_seed.append(dict(run_metrics(s_val, y_val, s_test, y_test, config), seed=run.name,
                             detail=det.describe(), selection=det.selection()))
        test_sets.append(s_test)
    detail = next((r["detail"] for r in per_seed if r["detail"]), "")  # the first seed that says what it fitted
    boot = metrics.bootstrap_mean_auroc(test_sets, y_test, config.n_bootstrap, config.seed, config.ci_level)
    row = {k: float(np.nanmean([r[k] for r in per_seed])) for k in per_seed[0]
           if k not in ("seed", "detail", "selection")}
    aurocs = [r["test_auroc"] for r in per_seed]
    row.update(detector=name, family=DETECTORS[name].family, detail=detail, n_seeds=len(per_seed),
               test_auroc_ci=boot["ci"], test_auroc_sd=float(np.std(aurocs)) if len(aurocs) > 1 else None,
               n_test=len(y_test), base_rate=float(np.mean(y_test)) if len(y_test) else None,
               roc=metrics.roc_points(np.mean([_rank(s) for s in test_sets], axis=0), y_test),
               selection=selection_spread([r["selection"] for r in per_seed]),
               per_seed=per_seed, _scores=test_sets, _y=y_test)
    return row


def selection_spread(selections: list[dict]) -> dict:
    """Per chosen hyper-parameter, its value in each seed and their spread.

    Args:
        selections: one ``Detector.selection()`` per seed, e.g. ``[{"layer": 17, "epochs": 12}, ...]``.
    Returns:
        ``{name: {"values": [...], "mean", "sd", "min", "max"}}`` for numeric choices.
    """
    out = {}
    for name in sorted({k for sel in selections for k in sel}):
        values = [sel[name] for sel in selections if isinstance(sel.get(name), (int, float))]
        if values:
            out[name] = {"values": values, "mean": float(np.mean(values)), "sd": float(np.std(values)),
                         "min": min(values), "max": max(values)}
    return out


def _rank(s: np.ndarray) -> np.ndarray:
    """Scores as ranks in [0, 1], so seeds on different scales average into one ROC curve."""
    return np.argsort(np.argsort(s, kind="stable"), kind="stable") / max(len(s) - 1, 1)


def compare_families(rows: list[dict], config: EvalConfig) -> dict | None:
    """Best learned vs best training-free detector (by mean test AUROC): the gap with a paired CI."""
    best = {}
    for fam in ("learned", "training-free"):
        cands = [r for r in rows if r["family"] == fam and not math.isnan(r["test_auroc"])]
        if cands:
            best[fam] = max(cands, key=lambda r: r["test_auroc"])
    if len(best) < 2:
        return None
    lrn, free = best["learned"], best["training-free"]
    boot = metrics.bootstrap_mean_auroc(lrn["_scores"], lrn["_y"], config.n_bootstrap, config.seed,
                                        config.ci_level, baseline_sets=free["_scores"])
    return {"best_learned": lrn["detector"], "best_training_free": free["detector"],
            "learned_auroc": lrn["test_auroc"], "training_free_auroc": free["test_auroc"],
            "difference": boot["diff"], "difference_ci": boot["diff_ci"],
            "learned_wins": bool(boot["diff"] > 0), "significant": bool(boot["diff_ci"][0] > 0)}


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
    rows = [evaluate_runs(n, dirs, data, config) for n, dirs in find_runs(ddir, config.detectors).items()]
    rows.sort(key=lambda r: -r["test_auroc"] if not math.isnan(r["test_auroc"]) else math.inf)
    comparison = compare_families(rows, config)
    for r in rows:
        r.pop("_scores"), r.pop("_y")

    report = write_report(out, {
        "features_dir": str(features_dir), "model": TraceStore(features_dir).schema.get("model", "?"),
        "split": split_balance(split, read_label_csv(labels_csv)),
        "test_features": data["test_features"], "cross_dataset": config.test_features is not None,
        "detectors_dir": str(ddir), "ci_level": config.ci_level, "n_bootstrap": config.n_bootstrap,
        "max_fpr": config.max_fpr, "results": rows, "comparison": comparison,
        "machine": machine_info(), "versions": versions()})
    if config.figures:
        report["figures"] = _roc_figure(report, out)
    write_text_atomic(out / "report.md", report_markdown(report))
    return report


def _roc_figure(report: dict, out: Path) -> list[str]:
    """Draw ``roc.png``/``roc.svg``; a missing plotting extra is a warning, not a failure."""
    try:
        return [str(p) for p in plot_roc(report, out / "roc")]
    except ImportError as exc:  # matplotlib missing: pyplot() names the extra
        warnings.warn(f"ROC figure skipped: {exc}", stacklevel=2)
        return []
