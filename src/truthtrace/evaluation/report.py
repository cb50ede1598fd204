"""Render an evaluation report (``report.json``) as a markdown table, ``report.md`` or a rich table."""

from __future__ import annotations

import math

HEADERS = ["detector", "kind", "fitted", "test AUROC [CI]", "sd (seeds)", "AUPRC", "acc", "F1", "TPR@FPR", "ECE",
           "val AUROC", "n test"]


def _fmt(x, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _cells(row: dict) -> list[str]:
    lo, hi = row["test_auroc_ci"]
    seeds = f"{_fmt(row['test_auroc_sd'])} ({row['n_seeds']})" if row.get("test_auroc_sd") is not None else "-"
    return [row["detector"], "learned" if row.get("family") == "learned" else "free", row.get("detail", ""),
            f"{_fmt(row['test_auroc'])} [{_fmt(lo)}, {_fmt(hi)}]", seeds, _fmt(row["test_auprc"]),
            _fmt(row["test_accuracy"]), _fmt(row["test_f1"]), _fmt(row["test_tpr_at_fpr"]), _fmt(row["test_ece"]),
            _fmt(row["val_auroc"]), str(row["n_test"])]


def format_table(report: dict) -> str:
    """The report's results as a markdown table (also fine in a terminal)."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in report["results"]]
    return "\n".join(lines)


def comparison_text(report: dict) -> str:
    """One honest sentence on the best learned vs the best training-free detector."""
    c = report.get("comparison")
    if not c:
        return "No learned/training-free pair to compare."
    lo, hi = c["difference_ci"]
    level = round(100 * report["ci_level"])
    verdict = ("beats" if c["significant"] else "is ahead of, but not clearly better than,") if c["learned_wins"] \
        else "does NOT beat"
    return (f"Best learned detector `{c['best_learned']}` (test AUROC {_fmt(c['learned_auroc'])}) {verdict} the best "
            f"training-free one `{c['best_training_free']}` ({_fmt(c['training_free_auroc'])}): difference "
            f"{c['difference']:+.3f}, paired {level}% bootstrap interval [{lo:+.3f}, {hi:+.3f}].")


def report_markdown(report: dict) -> str:
    """The full ``report.md``: what was tested, the table, the comparison and the figures."""
    level = round(100 * report["ci_level"])
    split = report.get("split", {})
    mode = (f"Cross-dataset: trained on `{report['features_dir']}`, tested on every labelled trace of "
            f"`{report['test_features']}`." if report.get("cross_dataset") else
            f"Test split of `{report['features_dir']}` (split by question id).")
    lines = [
        "# truthtrace report", "",
        f"Model: `{report.get('model', '?')}`  ",
        mode + "  ",
        f"Split sizes: {split.get('n', '?')}; hallucination rate {split.get('hallucination_rate', '?')}", "",
        (f"Sorted by test AUROC (mean over seeds). CI: {level}% bootstrap over test traces "
        f"({report['n_bootstrap']} resamples, seeds averaged in each); sd: spread over training seeds. Accuracy and "
        f"F1 use the threshold chosen on validation; TPR at {report['max_fpr']:.0%} FPR; ECE after Platt scaling on "
        "validation. `free` = training-free."), "",
        format_table(report), "",
        comparison_text(report), "",
    ]
    lines += [f"![ROC curves]({p.split('/')[-1]})" for p in report.get("figures", []) if p.endswith(".png")]
    return "\n".join(lines) + "\n"


def rich_table(report: dict):
    """The results as a ``rich.table.Table`` for terminal printing."""
    from rich.table import Table

    table = Table(title=f"truthtrace report ({report.get('model', '?')})", caption=comparison_text(report))
    for h in HEADERS:
        table.add_column(h, justify="left" if h in ("detector", "kind", "fitted") else "right")
    for row in report["results"]:
        table.add_row(*_cells(row))
    return table
