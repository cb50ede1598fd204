"""Markdown of the report's extra sections (:mod:`truthtrace.evaluation.sections`): AUROC per label rule,
the length control, calibration before/after and whether the stack helps."""

from __future__ import annotations

import math


def _f(x, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + ["| " + " | ".join(r) + " |"
                                                                              for r in rows]


def label_rules_text(report: dict) -> list[str]:
    """The per-rule AUROC table (detectors in the main table's order) and which detector wins under each rule."""
    sec = report.get("label_rules")
    if not sec:
        return []
    rules = sec["rules"]
    head = ["detector"] + [f"{r} (n {sec['n'].get(r, '?')}, {_f(sec['hallucination_rate'].get(r), 2)} halluc.)"
                           for r in rules]
    body = []
    for row in report["results"]:
        cells = sec["auroc"].get(row["detector"], {})
        body.append([row["detector"]] + [f"{_f(cells[r]['auroc'])} [{_f(cells[r]['ci'][0])}, {_f(cells[r]['ci'][1])}]"
                                         if r in cells else "n/a" for r in rules])
    best = ", ".join(f"{r}: `{sec['best'][r]}`" if sec["best"].get(r) else f"{r}: n/a (one class)" for r in rules)
    return ["## AUROC under each label rule", "",
            f"Labels recomputed from the stored answers and aliases of the test traces (answer span: {sec['span']}); "
            "test AUROC (mean over seeds) with its bootstrap CI.", ""] + _table(head, body) + ["", f"Best: {best}.", ""]


def length_text(report: dict) -> list[str]:
    """AUROC within answer-length strata and the partial rank correlation with the label given length."""
    sec = report.get("length_control")
    if not sec:
        return []
    strata = sec["strata"]
    head = (["detector"] + [f"{s['tokens']} tok (n {s['n']})" for s in strata]
            + ["weighted within", "partial corr given length"])
    body = []
    for row in report["results"]:
        d = sec["detectors"].get(row["detector"])
        if d is None:
            continue
        within = d["within_auroc"]
        body.append([row["detector"]] + [_f(within.get(s["bin"], within.get(str(s["bin"])))) for s in strata]
                    + [_f(d["weighted_auroc"]), _f(d["partial_corr"])])
    return ["## Length control", "",
            f"Answer length alone: test AUROC {_f(sec['length_auroc'])}, correlation with the label "
            f"{_f(sec.get('length_label_corr'))}. AUROC inside answer-length strata (quantile bins), their "
            "size-weighted mean, and the partial correlation of each score's rank with the label given length "
            "rank: a detector that only tracks length drops to ~0.5 within strata and ~0 partial correlation.",
            ""] + _table(head, body) + [""]


def calibration_text(report: dict) -> list[str]:
    """ECE before calibration (sigmoid of the raw score) and after Platt / isotonic maps fitted on validation."""
    sec = report.get("calibration")
    if not sec:
        return []
    body = [[name, _f(e["ece"].get("raw")), _f(e["ece"].get("platt")), _f(e["ece"].get("isotonic")), e["source"]]
            for name, e in sec.items()]
    return ["## Calibration", "", "Test ECE (10 bins) of the first seed before and after calibration on validation; "
            "reliability diagrams in `reliability.png`.", ""] + _table(
        ["detector", "ECE before (sigmoid of score)", "ECE Platt", "ECE isotonic", "maps from"], body) + [""]


def stack_text(report: dict) -> list[str]:
    """One sentence: does the stack beat its best member, with the paired interval."""
    st = report.get("stack")
    if not st or "difference" not in st:
        return []
    lo, hi = st["difference_ci"]
    verdict = ("helps" if st["helps"] else "is ahead of, but not clearly better than," if st["difference"] > 0
               else "does NOT beat")
    weights = ", ".join(f"{k} {v:+.2f}" for k, v in sorted(st["coef"].items(), key=lambda kv: -abs(kv[1])))
    return ["## Stack", "", f"A logistic regression over {len(st['members'])} detectors' scores (fitted on validation "
            f"only; standardized weights {weights}) {verdict} its best member `{st['best_member']}` "
            f"({_f(st['best_member_auroc'])}): difference {st['difference']:+.3f}, paired interval "
            f"[{lo:+.3f}, {hi:+.3f}].", ""]


def ood_text(report: dict) -> list[str]:
    """Leave-one-category-out AUROC beside the in-distribution one, the OOD paired interval, the transfer matrix."""
    sec = report.get("ood")
    if not sec:
        return []
    cats = [c for c, v in sec["categories"].items() if "skipped" not in v]
    head = ["detector", "in-distribution", "leave-category-out (mean)", "gap"] + cats
    body = [[name, _f(d["in_distribution"]), _f(d["leave_category_out"]), _f(d["gap"])]
            + [_f(d["per_category"].get(c)) for c in cats] for name, d in sec["detectors"].items()]
    lines = ["## Out of distribution: leave one category out", "",
             "Each detector refit without the category and tested on all of its traces; the mean is weighted by "
             "the category's size. Skipped: " + (", ".join(f"{c} ({v['skipped']})" for c, v in
                                                        sec["categories"].items() if "skipped" in v) or "none") + ".",
             ""] + _table(head, body) + [""]
    c = sec.get("comparison")
    if c:
        lo, hi = c["difference_ci"]
        lines += [f"Out of distribution, the best learned `{c['best_learned']}` minus the best training-free "
                  f"`{c['best_training_free']}`: {c['difference']:+.3f}, paired interval [{lo:+.3f}, {hi:+.3f}] "
                  f"(resampled within each category){'' if c['significant'] else ' - not clearly above zero'}.", ""]
    t = sec.get("transfer")
    if t and t["categories"]:
        lines += [f"Transfer matrix of `{t['detector']}` (row: trained on, column: tested on; the diagonal is a "
                  "held-in 15%): `transfer.png`.", ""]
    return lines


def sections_markdown(report: dict) -> list[str]:
    """Every extra section present in ``report``, as markdown lines."""
    return (label_rules_text(report) + length_text(report) + calibration_text(report) + stack_text(report)
            + ood_text(report))
