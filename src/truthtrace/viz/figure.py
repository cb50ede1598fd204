"""Figures of traces and detectors: one style, one palette, one way to save.

Every figure module imports matplotlib through :func:`pyplot` (Agg backend, our rc
style) and writes through :func:`save_figure` (PNG + SVG, atomic). The palette is
Okabe–Ito, readable with every common colour-vision deficiency.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from truthtrace.fileio import write_bytes_atomic

# Okabe & Ito (2008): distinguishable under protanopia, deuteranopia and tritanopia.
PALETTE = {
    "blue": "#0072B2", "orange": "#E69F00", "vermillion": "#D55E00", "green": "#009E73",
    "sky": "#56B4E9", "purple": "#CC79A7", "yellow": "#F0E442", "black": "#000000", "grey": "#999999",
}
PROMPT_COLOR = PALETTE["sky"]
ANSWER_COLOR = PALETTE["orange"]
ANSWER_TEXT_COLOR = "#A05A00"  # Okabe-Ito orange darkened: the light one is too faint as text on white
CORRECT_COLOR = PALETTE["blue"]
HALLUCINATED_COLOR = PALETTE["vermillion"]
CMAP = "viridis"  # perceptually uniform, colourblind-safe, greyscale-monotone
DPI = 150

STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "savefig.bbox": None,  # constrained layout fits the text; a fixed canvas keeps pixel sizes predictable
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "figure.titlesize": 12,
    "svg.fonttype": "none",  # text stays text in SVGs: searchable, smaller
    "image.cmap": CMAP,
}
_SPECIAL = re.compile(r"^<\|(.+)\|>$")  # chat-template specials such as <|im_start|>
TICK_PT = 7.5  # smallest font we allow on token axes; below this labels become soup


def pyplot():
    """Return ``matplotlib.pyplot`` on the Agg backend with :data:`STYLE` applied.

    Raises:
        ImportError: matplotlib is missing; names the ``viz`` extra.
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("figures need matplotlib: pip install 'truthtrace[viz]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    return plt


def plain(text: str) -> str:
    """Escape ``$`` so matplotlib never reads user text (questions, tokens) as mathtext."""
    return str(text).replace("$", r"\$")


def shorten(text: str, n: int = 90) -> str:
    """``text`` on one line, cut to ``n`` characters with an ellipsis."""
    one = re.sub(r"\s+", " ", str(text)).strip()
    return one if len(one) <= n else one[: n - 1] + "…"


def token_label(text: str) -> str:
    """A decoded token as a short visible tick label (newlines, blanks and long specials shown compactly)."""
    m = _SPECIAL.match(text.strip())
    if m:
        text = f"<{m.group(1)}>"
    text = text.replace("\n", "↵").replace("\t", "⇥").strip(" ")
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)  # no missing-glyph boxes
    if not text:
        return "␣"
    return text if len(text) <= 12 else text[:11] + "…"


def token_labels(ids: list[int], tokenizer) -> list[str]:
    """Tick labels for token ``ids``: decoded pieces, or ``#id`` without a tokenizer."""
    if tokenizer is None:
        return [f"#{i}" for i in ids]
    return [token_label(tokenizer.decode([i])) for i in ids]


def save_figure(fig, out_stem: str | Path, dpi: int = DPI) -> list[Path]:
    """Write ``fig`` as ``<out_stem>.png`` (``dpi``) and ``<out_stem>.svg``, atomically, then close it.

    Args:
        fig: a matplotlib Figure.
        out_stem: path without suffix; parent directories are created.
        dpi: PNG resolution (150 or more for print).

    Returns:
        ``[png_path, svg_path]``.
    """
    plt = pyplot()
    out_stem = Path(out_stem)
    paths = []
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=dpi)
        # the layout found for the PNG holds for the SVG: freezing it halves the cost of
        # figures with hundreds of tick labels (constrained layout redraws them all)
        fig.set_layout_engine("none")
        path = out_stem.with_name(out_stem.name + "." + ext)
        write_bytes_atomic(path, buf.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths
