"""The report's sections beyond the main table: AUROC under every label rule, the answer-length control,
and calibration before/after with reliability diagrams.

Each function takes the graded rows of :func:`truthtrace.evaluation.evaluate.evaluate` (with their private
``_scores`` (seeds x (n_test,)), ``_y``, ``_ids``, ``_val``... keys) and returns a JSON-safe dict for
``report.json``; :mod:`truthtrace.evaluation.section_text` renders them.
"""

from __future__ import annotations

import warnings

import numpy as np

from truthtrace import metrics
from truthtrace.detectors.calibration import calibrate, fit_calibration, read_calibration
from truthtrace.detectors.length import LENGTH_COLUMN
from truthtrace.evaluation.grading import rank01
from truthtrace.labels.io import read_labels
from truthtrace.labels.judge import Judge, JudgeConfig
from truthtrace.labels.relabel import rule_labels
from truthtrace.labels.rules import parse_rule
from truthtrace.naming import SCALAR_LOGPROB_STATS


def rank_mean(score_sets: list[np.ndarray]) -> np.ndarray:
    """Seed scores ``[(n,)]`` as one ``(n,)`` score: the mean of their ranks in [0, 1] (scales differ by seed)."""
    return np.mean([rank01(s) for s in score_sets], axis=0)


def _test_rows(path: str) -> dict[str, dict] | None:
    """Full ``labels.csv`` rows of the test labels; None, with a warning, for a CSV without answers and aliases."""
    try:
        return read_labels(path)
    except ValueError as err:
        warnings.warn(f"label rules skipped: {err}; they recompute labels from the answers and aliases of a "
                      "labels.csv written by `truthtrace label`", stacklevel=3)
        return None


def label_rule_section(rows: list[dict], test_labels: str, config) -> dict | None:
    """Every detector's seed-mean test AUROC (with its bootstrap CI) under each of ``config.label_rules``.

    Returns:
        ``{"rules", "span", "n": {rule: n}, "hallucination_rate": {rule: r}, "auroc": {detector: {rule:
        {"auroc", "ci"}}}, "best": {rule: detector}}``, or None when no rules were asked for.
    """
    if not config.label_rules or not rows:
        return None
    stored = _test_rows(test_labels)
    if stored is None:
        return None
    ids = [t for t in rows[0]["_ids"] if t in stored]
    judge = (Judge(JudgeConfig(model=config.judge_model))
             if any(parse_rule(r)[0].needs_judge for r in config.label_rules) else None)
    sets = rule_labels({t: stored[t] for t in ids}, config.label_rules, config.label_span, judge, progress=True)
    out = {"rules": list(config.label_rules), "span": config.label_span, "n": {}, "hallucination_rate": {},
           "auroc": {r["detector"]: {} for r in rows}, "best": {}}
    for rule, labels in sets.items():
        for row in rows:
            keep = np.array([t in labels for t in row["_ids"]])
            y = np.array([labels[t] for t in np.asarray(row["_ids"])[keep]], np.int64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a rule under which every answer is wrong: NaN
                boot = metrics.bootstrap_mean_auroc([s[keep] for s in row["_scores"]], y, config.n_bootstrap,
                                                    config.seed, config.ci_level)
            out["auroc"][row["detector"]][rule] = {"auroc": boot["mean"], "ci": boot["ci"]}
        out["n"][rule], out["hallucination_rate"][rule] = len(y), float(np.mean(y)) if len(y) else None
        graded = [(v[rule]["auroc"], d) for d, v in out["auroc"].items() if np.isfinite(v[rule]["auroc"])]
        out["best"][rule] = max(graded)[1] if graded else None
    return out


def _strata(lengths: np.ndarray, n_bins: int) -> tuple[np.ndarray, list[str]]:
    """Quantile bins of answer lengths ``(n,)``: ``(bin of each trace, label of each bin)`` like ``"3-5"``."""
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, n_bins + 1)[1:-1])) if n_bins > 1 else np.zeros(0)
    which = np.searchsorted(edges, lengths, side="right")  # bin b holds edges[b-1] < len <= ... (integers)
    names = []
    for b in range(len(edges) + 1):
        inside = lengths[which == b]
        names.append(f"{inside.min():g}-{inside.max():g}" if len(inside) else "")
    return which, names


def length_control(rows: list[dict], lengths: dict[str, float], config) -> dict | None:
    """AUROC within answer-length strata and the partial (rank) correlation of each score with the label given length.

    Args:
        rows: graded rows (private keys included).
        lengths: ``{trace_id: answer tokens}`` of the test traces.
    Returns:
        ``{"strata": [{"bin", "tokens", "n", "hallucination_rate"}], "length_auroc", "detectors": {name:
        {"within_auroc": {bin: auroc}, "weighted_auroc", "partial_corr"}}}``; None without rows.
    """
    if not rows or not all(t in lengths for t in rows[0]["_ids"]):
        return None
    ids, y = rows[0]["_ids"], rows[0]["_y"]
    length = np.array([lengths[t] for t in ids], np.float64)
    which, names = _strata(length, config.length_bins)
    strata = [{"bin": b, "tokens": names[b], "n": int((which == b).sum()),
               "hallucination_rate": float(y[which == b].mean()) if (which == b).any() else None}
              for b in range(len(names)) if names[b]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one-class data: NaN
        out = {"strata": strata, "length_auroc": metrics.auroc(length, y),
               "length_label_corr": float(np.corrcoef(length, y)[0, 1]) if np.std(length) > 0 else None,
               "detectors": {}}
        length_rank = rank_mean([length])
        for row in rows:
            by_id = dict(zip(row["_ids"], rank_mean(row["_scores"])))
            s = np.array([by_id[t] for t in ids])
            within = metrics.stratified_auroc(s, y, which)
            out["detectors"][row["detector"]] = {
                "within_auroc": {int(b): v["auroc"] for b, v in within["per_stratum"].items()},
                "weighted_auroc": within["weighted_auroc"],
                "partial_corr": metrics.partial_correlation(s, y, length_rank)}
    return out


def test_lengths(data: dict, split_batches, batch_size: int) -> dict[str, float]:
    """``{trace_id: answer tokens}`` of the test split, read from ``scalar.logprob_stats``."""
    batches, _, ids = split_batches(data, "test", (SCALAR_LOGPROB_STATS,), batch_size)
    if not batches:
        return {}
    values = np.concatenate([np.asarray(b[SCALAR_LOGPROB_STATS])[:, LENGTH_COLUMN] for b in batches])
    return dict(zip(ids, values.astype(np.float64).tolist()))


def _probabilities(doc: dict | None, s_test: np.ndarray) -> dict[str, np.ndarray]:
    """P(hallucinated) ``(n,)`` before (sigmoid of the raw score) and after each calibration map."""
    out = {"raw": 1 / (1 + np.exp(-np.clip(s_test, -50, 50)))}
    for method in ("platt", "isotonic"):
        p = calibrate(doc, s_test, method)
        if p is not None:
            out[method] = p
    return out


def calibration_section(rows: list[dict], n_bins: int = 10) -> dict:
    """Per detector (first seed): ECE and reliability bins before calibration and after Platt / isotonic.

    The maps are the run's ``calibration.json`` (fitted on validation by ``train``), or fitted here on the
    validation scores for runs saved without one. Returns ``{detector: {"source", "ece": {method: e},
    "bins": {method: [...]}}}``.
    """
    out = {}
    for row in rows:
        if not len(row["_y"]):
            continue
        saved = read_calibration(row["_runs"][0]) if row.get("_runs") else None
        doc = saved if saved is not None else fit_calibration(row["_val"][0], row["_y_val"])
        probs = _probabilities(doc, row["_scores"][0])
        out[row["detector"]] = {
            "source": "calibration.json" if saved is not None else "fitted on val by evaluate",
            "ece": {m: metrics.expected_calibration_error(p, row["_y"], n_bins) for m, p in probs.items()},
            "bins": {m: metrics.reliability_bins(p, row["_y"], n_bins) for m, p in probs.items()}}
    return out
