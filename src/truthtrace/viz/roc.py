"""ROC curves of detectors from an evaluation report (``report.json``)."""

from __future__ import annotations

import warnings
from pathlib import Path

from truthtrace.viz.figure import PALETTE, plain, pyplot, save_figure

_COLORS = [PALETTE[c] for c in ("blue", "vermillion", "green", "orange", "purple", "sky", "yellow", "black")]
_STYLES = ["-", "--", "-.", ":"]  # a second cue beside colour
_MARKERS = ["o", "s", "^", "D", "v", "P", "X"]  # 7: coprime with 8 colours, so no two of 56 curves look alike


def curve_style(i: int) -> dict:
    """Matplotlib style of the ``i``-th curve: colour, line style and marker, all three cycling.

    Colours cycle by 8, markers by 7, so two curves share colour and marker only 56 curves apart;
    the line style cycles by 4 on top (curves 0 and 8 share colour index 0 mod 8 but not the marker).
    """
    return {"color": _COLORS[i % len(_COLORS)], "ls": _STYLES[i % len(_STYLES)],
            "marker": _MARKERS[i % len(_MARKERS)]}


def roc_rows(report: dict, where: str = "report") -> list[dict]:
    """The rows of ``report["results"]`` to draw: one per detector (its first row), each with a ``roc``.

    Adds ``n_rows`` (rows sharing the detector's name) to each returned row (a copy);
    a row's own ``n_seeds`` (an already aggregated row) is kept.
    Rows without ``roc``, or with an empty one, are skipped with a warning.

    Raises:
        ValueError: ``results`` missing or not a list, a row without ``detector``, a
            ``roc`` without equal-length ``fpr``/``tpr`` lists, or no row with a curve; the
            message names ``where`` and the field.
    """
    results = report.get("results") if isinstance(report, dict) else None
    if not isinstance(results, list):
        raise ValueError(f"{where}: field 'results' must be a list of rows")
    counts: dict[str, int] = {}
    first: dict[str, dict] = {}
    for i, row in enumerate(results):
        name = row.get("detector") if isinstance(row, dict) else None
        if not isinstance(name, str):
            raise ValueError(f"{where}: field 'results[{i}].detector' must be a string")
        counts[name] = counts.get(name, 0) + 1
        first.setdefault(name, row)
    out = []
    for name, row in first.items():
        roc = row.get("roc")
        if roc is None:
            warnings.warn(f"{where}: detector {name!r} has no 'roc' field; skipped", stacklevel=2)
            continue
        fpr, tpr = (roc.get("fpr"), roc.get("tpr")) if isinstance(roc, dict) else (None, None)
        if not isinstance(fpr, list) or not isinstance(tpr, list) or len(fpr) != len(tpr):
            raise ValueError(f"{where}: field 'results[].roc' of {name!r} needs lists 'fpr' and 'tpr' of equal length")
        if len(fpr) < 2:  # the evaluate stage writes empty lists when the test split has one class
            warnings.warn(f"{where}: detector {name!r} has an empty 'roc' curve; skipped", stacklevel=2)
            continue
        out.append({**row, "n_rows": counts[name]})
    if not out:
        raise ValueError(f"{where}: no row of field 'results' has a 'roc' curve ({{'fpr': [...], 'tpr': [...]}})")
    return out


def _legend_label(row: dict) -> str:
    """``name  AUROC 0.81 [0.76, 0.86]  (first of 3 seeds)``."""
    auc = row.get("test_auroc")
    label = f"{row['detector']}  AUROC {float(auc):.3f}" if auc is not None else row["detector"]
    ci = row.get("test_auroc_ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
        label += f" [{float(ci[0]):.3f}, {float(ci[1]):.3f}]"
    if row["n_rows"] > 1:
        label += f"  (seed {row.get('seed', '?')}; {row['n_rows']} seeds in report)"
    elif isinstance(row.get("n_seeds"), int) and row["n_seeds"] > 1:
        label += f"  ({row['n_seeds']} seeds)"
    return plain(label)


def plot_roc(report: dict, out_stem: Path, title: str = "ROC of hallucination detectors (test split)",
             where: str = "report") -> list[Path]:
    """Draw each detector's test ROC curve with its AUROC and CI in the legend, and the chance line.

    Args:
        report: the evaluation report; ``report["results"]`` rows hold ``detector``,
            ``test_auroc``, optionally ``test_auroc_ci`` ``[lo, hi]``, ``seed`` and
            ``roc`` = ``{"fpr": [...], "tpr": [...]}``. When several rows share a
            detector, the first is drawn and the legend gives the number of seeds.
        out_stem: output path without suffix (``.png`` and ``.svg`` are written).
        title: figure title.
        where: how to name the report in errors (e.g. its file path).

    Returns:
        the written ``[png, svg]`` paths.

    Raises:
        ValueError: see :func:`roc_rows`.
    """
    rows = roc_rows(report, where)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 5.6), layout="constrained")
    ax.plot([0, 1], [0, 1], color=PALETTE["grey"], lw=1, ls=":", label="chance (AUROC 0.5)")
    for i, row in enumerate(sorted(rows, key=lambda r: -float(r.get("test_auroc") or 0.0))):
        n_points = len(row["roc"]["fpr"])
        ax.plot(row["roc"]["fpr"], row["roc"]["tpr"], **curve_style(i), lw=1.8, ms=4,
                markevery=max(1, n_points // 8), label=_legend_label(row))
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("false positive rate (correct answers flagged)")
    ax.set_ylabel("true positive rate (hallucinations caught)")
    ax.set_title(plain(title))
    ax.legend(loc="lower right", fontsize=8, frameon=True, framealpha=0.9, title="test AUROC [95% CI]",
              title_fontsize=8)
    return save_figure(fig, out_stem)
