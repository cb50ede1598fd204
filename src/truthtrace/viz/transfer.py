"""The category transfer matrix of an evaluation report as a heatmap (train category x test category AUROC)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from truthtrace.viz.figure import CMAP, plain, pyplot, save_figure


def plot_transfer(transfer: dict, out_stem: Path) -> list[Path]:
    """Heatmap of ``report["ood"]["transfer"]``: row = category trained on, column = category tested on.

    Each cell shows the AUROC (blank where it is undefined); the diagonal is a held-in share of the category
    (dotted frame).
    Args:
        transfer: ``{"detector", "categories": [...], "auroc": [[...]]}``.
        out_stem: output path without suffix.
    Returns:
        the written ``[png, svg]`` paths.
    Raises:
        ValueError: no categories.
    """
    cats, grid = transfer.get("categories") or [], transfer.get("auroc") or []
    if not cats or len(grid) != len(cats):
        raise ValueError("transfer matrix: needs 'categories' and one 'auroc' row per category")
    values = np.array([[math.nan if v is None else float(v) for v in row] for row in grid])  # (train, test)
    plt = pyplot()
    size = max(4.0, 1.0 + 0.62 * len(cats))
    fig, ax = plt.subplots(figsize=(size + 1.8, size + 0.6), layout="constrained")
    im = ax.imshow(np.ma.masked_invalid(values), cmap=CMAP, vmin=0.4, vmax=1.0)
    for i in range(len(cats)):
        for j in range(len(cats)):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if values[i, j] > 0.75 else "white")
    for i in range(len(cats)):
        ax.add_patch(plt.Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, ls=":", lw=1.2, ec="black"))
    ax.set_xticks(range(len(cats)), [plain(c) for c in cats], rotation=45, ha="right")
    ax.set_yticks(range(len(cats)), [plain(c) for c in cats])
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.set_title(plain(f"Transfer across categories: {transfer.get('detector', '?')} test AUROC"))
    fig.colorbar(im, ax=ax, shrink=0.8, label="AUROC")
    return save_figure(fig, out_stem)
