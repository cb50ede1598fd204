"""The evaluation report: the one reader and writer of ``report.json``, and its renderings as a
markdown table, ``report.md`` or a rich table.

``report.json`` (``docs/FORMAT.md``) holds one row per detector, the learned-vs-free comparison,
the split's label balance, and where the numbers come from: the machine and the versions of
truthtrace, torch and transformers.
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.table import Table

from truthtrace.evaluation.section_text import sections_markdown
from truthtrace.fileio import json_safe, read_versioned_json, write_json_atomic

REPORT_FILE = "report.json"
REPORT_FORMAT = "truthtrace.evaluation.report"
REPORT_VERSION = 3  # 3: adds machine, versions and per-seed selection
REPORT_VERSIONS = (2, 3)
HEADERS = ["detector", "kind", "fitted", "test AUROC [CI]", "sd (seeds)", "AUPRC", "PRR", "acc", "F1", "TPR@FPR",
           "ECE", "val AUROC", "n test"]


def _fmt(x, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def selection_text(row: dict) -> str:
    """What the seeds chose on validation, e.g. ``seeds: layer 17-27, epochs 12`` (a range where they differ).

    "" for one seed, or when the detector chooses nothing.
    """
    if row.get("n_seeds", 1) < 2:
        return ""
    parts = []
    for name, s in (row.get("selection") or {}).items():
        if s["min"] != s["max"]:
            parts.append(f"{name} {s['min']:g}-{s['max']:g}")
        else:
            parts.append(f"{name} {s['min']:g}")
    return f"seeds: {', '.join(parts)}" if parts else ""


def _fitted(row: dict) -> str:
    spread = selection_text(row)
    return f"{row.get('detail', '')} ({spread})" if spread and row.get("detail") else row.get("detail", "") or spread


def _cells(row: dict) -> list[str]:
    lo, hi = row["test_auroc_ci"]
    seeds = f"{_fmt(row['test_auroc_sd'])} ({row['n_seeds']})" if row.get("test_auroc_sd") is not None else "-"
    return [row["detector"], "learned" if row.get("family") == "learned" else "free", _fitted(row),
            f"{_fmt(row['test_auroc'])} [{_fmt(lo)}, {_fmt(hi)}]", seeds, _fmt(row["test_auprc"]),
            _fmt(row.get("test_prr")),
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


def sampling_text(report: dict) -> str:
    """One sentence on the best single-pass learned detector vs the best sampling baseline ("" without one)."""
    c = report.get("sampling_comparison")
    if not c:
        return ""
    lo, hi = c["difference_ci"]
    verdict = ("beats" if c["significant"] else "is ahead of, but not clearly better than,") if c["learned_wins"] \
        else "does NOT beat"
    return (f"Best single-pass learned detector `{c['best_learned']}` ({_fmt(c['learned_auroc'])}; one pass, no "
            f"samples) {verdict} the best sampling baseline `{c['best_sampling']}` ({_fmt(c['sampling_auroc'])}): "
            f"difference {c['difference']:+.3f}, paired {round(100 * report['ci_level'])}% bootstrap interval "
            f"[{lo:+.3f}, {hi:+.3f}].")


def provenance_text(report: dict) -> str:
    """One line on where the numbers come from: CPU, cores, and the versions of the main libraries."""
    m, v = report.get("machine") or {}, report.get("versions") or {}
    if not m and not v:
        return ""
    libs = ", ".join(f"{k} {v[k]}" for k in ("truthtrace", "torch", "transformers") if v.get(k))
    return (f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('torch_threads', '?')} torch "
            f"threads; {libs}.")


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
        "validation; PRR: prediction rejection ratio (lm-polygraph; 1 = oracle, 0 = random) of the risk-coverage "
        "curve. `free` = training-free. `fitted` shows seed 0's choice on validation, with its range over "
        "seeds when several were trained."), "",
        provenance_text(report), "",
        format_table(report), "",
        comparison_text(report), "",
    ]
    lines += [sampling_text(report), ""] if sampling_text(report) else []
    lines += sections_markdown(report)
    pngs = [Path(p).name for p in report.get("figures", []) if p.endswith(".png")]
    lines += [f"![{name[:-4]}]({name})" for name in pngs]
    return "\n".join(lines) + "\n"


def rich_table(report: dict):
    """The results as a ``rich.table.Table`` for terminal printing."""
    caption = " ".join(t for t in (comparison_text(report), sampling_text(report)) if t)
    table = Table(title=f"truthtrace report ({report.get('model', '?')})", caption=caption)
    for h in HEADERS:
        table.add_column(h, justify="left" if h in ("detector", "kind", "fitted") else "right")
    for row in report["results"]:
        table.add_row(*_cells(row))
    return table


def write_report(out_dir: str | Path, report: dict) -> dict:
    """Write ``report`` as ``out_dir/report.json``, atomically, under its ``format``/``version`` header.

    Returns:
        the document written (header first, NaN as None).
    """
    doc = json_safe({"format": REPORT_FORMAT, "version": REPORT_VERSION, **report})
    write_json_atomic(Path(out_dir) / REPORT_FILE, doc)
    return doc


def read_report(path: str | Path) -> dict:
    """Read a ``report.json`` written by ``truthtrace evaluate`` (this version or an older one we read).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a report, another version, or no ``results`` list (the message names the file).
    """
    report = read_versioned_json(path, REPORT_FORMAT, REPORT_VERSIONS)
    if not isinstance(report.get("results"), list):
        raise ValueError(f"{path}: field 'results' must be a list of detector rows")
    return report
