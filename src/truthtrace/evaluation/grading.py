"""Grading one detector: its per-seed metrics (threshold, calibration and ECE from validation, the rest on
test) and the report row aggregated over seeds.

``evaluate`` and the ``stack`` it fits (:mod:`truthtrace.evaluation.stacking`) grade through these, so a
stack is measured exactly like the detectors it combines. ``config`` is an
:class:`~truthtrace.evaluation.evaluate.EvalConfig` (``n_bootstrap``, ``seed``, ``ci_level``, ``max_fpr``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from truthtrace import metrics
from truthtrace.detectors import DETECTORS
from truthtrace.detectors.calibration import calibrate, fit_calibration


def run_metrics(s_val, y_val, s_test, y_test, config, calibration: dict | None = None) -> dict:
    """Every per-run metric: threshold, calibration and ECE from val, the rest on test.

    ``calibration`` is the run's ``calibration.json`` (fitted on val by ``train``); without one it is fitted
    here on ``s_val``. ECE is reported before calibration (``test_ece_raw``: sigmoid of the raw score, the
    probability a logit-scoring detector would give) and after (Platt ``test_ece``, isotonic).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one-class splits give NaN, reported as n/a
        thr = metrics.threshold_from_val(s_val, y_val)
        a, b = metrics.platt_calibrator(s_val, y_val)
        probs = 1 / (1 + np.exp(-np.clip(a * s_test + b, -50, 50))) if math.isfinite(a) else None
        doc = calibration if calibration is not None else fit_calibration(s_val, y_val)
        iso = calibrate(doc, s_test, "isotonic")
        return {
            "test_prr": metrics.prediction_rejection_ratio(s_test, y_test),
            "test_aurc": metrics.aurc(s_test, y_test),
            "test_ece_raw": metrics.expected_calibration_error(1 / (1 + np.exp(-np.clip(s_test, -50, 50))), y_test),
            "test_ece_isotonic": metrics.expected_calibration_error(iso, y_test) if iso is not None else math.nan,
            "test_auroc": metrics.auroc(s_test, y_test),
            "test_auprc": metrics.auprc(s_test, y_test),
            "test_accuracy": metrics.accuracy_at(s_test, y_test, thr),
            "test_f1": metrics.f1_at(s_test, y_test, thr),
            "test_tpr_at_fpr": metrics.tpr_at_fpr(s_test, y_test, config.max_fpr),
            "test_ece": metrics.expected_calibration_error(probs, y_test) if probs is not None else math.nan,
            "val_auroc": metrics.auroc(s_val, y_val),
            "threshold": thr,
        }


def aggregate_row(name: str, per_seed: list[dict], test_sets: list, y_test: np.ndarray, config,
                  private: dict) -> dict:
    """One report row from per-seed metrics and test scores ``[(n,)]``; ``private`` keys start with "_"."""
    detail = next((r["detail"] for r in per_seed if r["detail"]), "")  # the first seed that says what it fitted
    boot = metrics.bootstrap_mean_auroc(test_sets, y_test, config.n_bootstrap, config.seed, config.ci_level)
    row = {k: float(np.nanmean([r[k] for r in per_seed])) for k in per_seed[0]
           if k not in ("seed", "detail", "selection")}
    aurocs = [r["test_auroc"] for r in per_seed]
    row.update(detector=name, family=DETECTORS[name].family, detail=detail, n_seeds=len(per_seed),
               test_auroc_ci=boot["ci"], test_auroc_sd=float(np.std(aurocs)) if len(aurocs) > 1 else None,
               n_test=len(y_test), base_rate=float(np.mean(y_test)) if len(y_test) else None,
               roc=metrics.roc_points(np.mean([rank01(s) for s in test_sets], axis=0), y_test),
               selection=selection_spread([r["selection"] for r in per_seed]),
               risk_coverage=_risk_points(np.mean([rank01(s) for s in test_sets], axis=0), y_test),
               per_seed=per_seed, _scores=test_sets, _y=y_test, **private)
    return row


def _risk_points(scores: np.ndarray, y: np.ndarray, max_points: int = 101) -> dict:
    """The risk-coverage curve thinned to ``max_points`` (coverage, risk), for the report and figure."""
    curve = metrics.risk_coverage(scores, y)
    if not len(curve["risk"]):
        return {"coverage": [], "risk": []}
    keep = np.unique(np.linspace(0, len(curve["risk"]) - 1, max_points).round().astype(np.int64))
    return {k: [round(float(v), 5) for v in curve[k][keep]] for k in ("coverage", "risk")}


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


def rank01(s: np.ndarray) -> np.ndarray:
    """Scores as ranks in [0, 1], so seeds on different scales average into one ROC curve.

    Tied scores share their average rank: ranking them in store order would invent an order (and an ROC
    curve, and within-stratum AUROCs) that the scores do not have.
    """
    return (metrics.average_ranks(s) - 1) / max(len(s) - 1, 1)


