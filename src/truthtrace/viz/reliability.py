"""Risk-coverage curves and reliability diagrams of an evaluation report (``report.json``)."""

from __future__ import annotations

import math
from pathlib import Path

from truthtrace.viz.figure import PALETTE, plain, pyplot, save_figure
from truthtrace.viz.roc import curve_style

_METHODS = {"raw": ("before: sigmoid(score)", PALETTE["grey"], "--", "o"),
            "platt": ("Platt", PALETTE["blue"], "-", "s"),
            "isotonic": ("isotonic", PALETTE["orange"], "-.", "^")}


def plot_risk_coverage(report: dict, out_stem: Path) -> list[Path]:
    """Each detector's risk-coverage curve (hallucination rate among the answers it keeps) with its PRR.

    Args:
        report: rows of ``report["results"]`` with ``risk_coverage`` = ``{"coverage", "risk"}`` and ``test_prr``.
        out_stem: output path without suffix (``.png`` and ``.svg`` are written).
    Returns:
        the written ``[png, svg]`` paths (an empty figure note when no row has a curve).
    """
    rows = [r for r in report.get("results", []) if len((r.get("risk_coverage") or {}).get("risk", [])) > 1]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.0), layout="constrained")
    rows.sort(key=lambda r: -float(r.get("test_prr") if r.get("test_prr") is not None else -math.inf))
    for i, row in enumerate(rows):
        cov, risk = row["risk_coverage"]["coverage"], row["risk_coverage"]["risk"]
        prr = row.get("test_prr")
        label = f"{row['detector']}  PRR {prr:.3f}" if isinstance(prr, (int, float)) else row["detector"]
        ax.plot(cov, risk, **curve_style(i), lw=1.6, ms=4, markevery=max(1, len(cov) // 8), label=plain(label))
    if rows:
        base = rows[0]["risk_coverage"]["risk"][-1]
        ax.axhline(base, color=PALETTE["grey"], lw=1, ls=":", label=f"random (rate {base:.2f})")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("coverage (share of answers kept, least suspect first)")
    ax.set_ylabel("risk (hallucinated among kept)")
    ax.set_title("Risk-coverage on the test split (lower is better)")
    ax.legend(loc="upper left", fontsize=7, frameon=True, framealpha=0.9)
    return save_figure(fig, out_stem)


def plot_reliability(calibration: dict, out_stem: Path, cols: int = 4) -> list[Path]:
    """Reliability diagrams, one panel per detector: observed rate vs mean predicted P per bin, before/after.

    Args:
        calibration: ``report["calibration"]``: ``{detector: {"ece": {method: e}, "bins": {method: [{"mean_p",
            "rate", "n"}]}}}`` with methods raw, platt, isotonic.
        out_stem: output path without suffix.
        cols: panels per row.
    Returns:
        the written ``[png, svg]`` paths.
    Raises:
        ValueError: ``calibration`` is empty.
    """
    if not calibration:
        raise ValueError("reliability: no detector has calibration bins")
    names = list(calibration)
    n_rows = math.ceil(len(names) / cols)
    plt = pyplot()
    fig, axes = plt.subplots(n_rows, min(cols, len(names)), figsize=(3.0 * min(cols, len(names)), 3.0 * n_rows),
                             squeeze=False, layout="constrained")
    for ax in axes.flat[len(names):]:
        ax.set_axis_off()
    for ax, name in zip(axes.flat, names):
        entry = calibration[name]
        ax.plot([0, 1], [0, 1], color=PALETTE["black"], lw=0.8, ls=":")
        for method, (label, color, ls, marker) in _METHODS.items():
            bins = entry["bins"].get(method)
            if not bins:
                continue
            ece = entry["ece"].get(method)
            ax.plot([b["mean_p"] for b in bins], [b["rate"] for b in bins], color=color, ls=ls, marker=marker,
                    ms=4, lw=1.4, label=f"{label} ECE {ece:.3f}" if ece is not None else label)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_title(plain(name), fontsize=9)
        ax.set_xlabel("predicted P(hallucinated)", fontsize=8)
        ax.set_ylabel("observed rate", fontsize=8)
        ax.legend(loc="upper left", fontsize=6)
    fig.suptitle("Reliability on the test split: before and after calibration on validation")
    return save_figure(fig, out_stem)
