"""Fit, save and grade the ``stack`` detector inside ``evaluate``, and say whether it beats its best member.

The members' validation and test scores are already in the graded rows, so the stack costs one logistic
regression: fitted on the members' first-seed validation scores only, saved as
``<detectors>/stack/seed-0/`` (``config.json`` + ``calibration.json``, loadable like any detector), and
graded on test with the same metrics as the rest.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from truthtrace import metrics
from truthtrace.detectors.calibration import fit_calibration, write_calibration
from truthtrace.detectors.stack import StackDetector
from truthtrace.evaluation.grading import aggregate_row, run_metrics


def _members(rows: list[dict]) -> list[dict]:
    """Rows a stack can combine: not the stack itself, scored on the same val and test traces as the first."""
    cands = [r for r in rows if r["detector"] != "stack" and len(r["_y"]) and len(r["_y_val"])]
    if not cands:
        return []
    ref = cands[0]
    return [r for r in cands if r["_ids"] == ref["_ids"] and r["_val_ids"] == ref["_val_ids"]]


def stack_row(rows: list[dict], detectors_dir: Path, config) -> dict | None:
    """Fit ``stack`` over ``rows``' first-seed scores, save it, and return its graded row (None: < 2 members).

    Graded by :mod:`truthtrace.evaluation.grading` like the detectors it combines. The row's ``stack`` field
    holds the fitted weights and the paired interval against the best member.
    """
    members = _members(rows)
    if len(members) < 2 or len({*members[0]["_y_val"].tolist()}) < 2:
        return None
    names = [r["detector"] for r in members]
    x_val = np.stack([r["_val"][0] for r in members], axis=1)  # (n_val, m)
    x_test = np.stack([r["_scores"][0] for r in members], axis=1)  # (n_test, m)
    y_val, y_test = members[0]["_y_val"], members[0]["_y"]
    det = StackDetector()
    info = det.fit_scores(names, x_val, y_val)
    s_val, s_test = det.combine(x_val), det.combine(x_test)
    run = Path(detectors_dir) / "stack" / "seed-0"
    run.mkdir(parents=True, exist_ok=True)
    det.save(run)
    calibration = fit_calibration(s_val, y_val)
    write_calibration(run, calibration)
    per_seed = [dict(run_metrics(s_val, y_val, s_test, y_test, config, calibration), seed="seed-0",
                     detail=det.describe(), selection={})]
    row = aggregate_row("stack", per_seed, [s_test], y_test, config,
                        private={"_val": [s_val], "_y_val": y_val, "_val_ids": members[0]["_val_ids"],
                                 "_ids": members[0]["_ids"], "_runs": [run]})
    row["stack"] = {"members": names, "coef": info["coef"], **versus_best(row, members, config)}
    return row


def versus_best(row: dict, members: list[dict], config) -> dict:
    """The stack's test AUROC minus its best member's (by test AUROC), with a paired bootstrap interval."""
    graded = [m for m in members if not math.isnan(m["test_auroc"])]
    if not graded:
        return {}
    best = max(graded, key=lambda m: m["test_auroc"])
    boot = metrics.bootstrap_mean_auroc(row["_scores"], row["_y"], config.n_bootstrap, config.seed,
                                        config.ci_level, baseline_sets=best["_scores"])
    return {"best_member": best["detector"], "best_member_auroc": best["test_auroc"], "difference": boot["diff"],
            "difference_ci": boot["diff_ci"], "helps": bool(boot["diff_ci"][0] > 0)}
