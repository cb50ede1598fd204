"""Figures of diffusion traces: each prompt word's cross-attention heat map laid over its image.

Reads a store written by ``truthtrace diffuse`` (``schema["source"] == "diffusion"``): the ``image``
``(H, W, 3)``, the DAAM ``heatmap`` ``(N, R, R)`` and the per-word scores in the meta. Each word's map
(its tokens summed) is upsampled to the image and scaled to [0, 1] on its own, as DAAM draws them, so
the figure shows *where* a word attends; *how much* is in the panel title (peak and mass), and the
most neglected word's title is in vermillion.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from truthtrace.store import TraceStore
from truthtrace.viz.figure import HALLUCINATED_COLOR, plain, pyplot, save_figure, shorten
from truthtrace.viz.page import write_page

COLUMNS = 5
CAPTION = ("Each word's DAAM heat map (cross-attention summed over the word's tokens, mean over UNet layers, heads "
           "and steps), upsampled to the image and scaled to [0, 1] per word; peak: Attend-and-Excite maximum "
           "attention (mean over steps), mass: the word's share of all attention. In vermillion: the most "
           "neglected word (lowest peak).")


def is_diffusion_store(store: TraceStore) -> bool:
    """True for a store written by ``truthtrace diffuse``."""
    return store.schema.get("source") == "diffusion"


def word_maps(heatmap: torch.Tensor, words: list[dict], size: tuple[int, int]) -> torch.Tensor:
    """``(W, H, W')``: each word's map (its ``tokens`` of ``heatmap`` ``(N, R, R)`` summed), bilinear to
    ``size``, scaled to [0, 1] per word (a flat map stays 0)."""
    if not words:
        return heatmap.new_zeros((0, *size))
    maps = torch.stack([heatmap[w["tokens"]].float().sum(0) for w in words])[:, None]  # (W, 1, R, R)
    maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)[:, 0]
    low, high = maps.amin((1, 2), keepdim=True), maps.amax((1, 2), keepdim=True)
    return (maps - low) / (high - low).clamp_min(1e-12)


def overlay_figure(image: torch.Tensor, maps: torch.Tensor, words: list[dict], neglected: str | None, title: str):
    """The image, then one panel per word with its map over the image; ``image`` ``(H, W, 3)`` uint8,
    ``maps`` ``(W, H, W')`` in [0, 1]."""
    plt = pyplot()
    n = 1 + len(words)
    cols = min(COLUMNS, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.5 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(image.numpy())
    axes.flat[0].set_title("image", fontsize=9)
    for ax, word, heat in zip(axes.flat[1:], words, maps):
        ax.imshow(image.numpy())
        ax.imshow(heat.numpy(), alpha=0.55, vmin=0, vmax=1, interpolation="bilinear")
        colour = HALLUCINATED_COLOR if word["word"] == neglected else "black"
        ax.set_title(f"{plain(shorten(word['word'], 16))}\npeak {word['peak']:.2f} · mass {word['mass']:.2f}",
                     color=colour, fontsize=9)
    fig.suptitle(plain(title))
    return fig


def visualize_diffusion(store, out_dir, trace_id: str | None = None, command: str | None = None) -> dict:
    """Write ``heatmaps-<id>.png/.svg`` per trace (``trace_id``, or every trace) and ``index.html``.

    Returns:
        ``{"heatmaps-<id>": [png, svg], ..., "page": [index.html]}``.
    Raises:
        ValueError: not a diffusion store, or ``trace_id`` is not in it. ImportError: matplotlib missing.
    """
    pyplot()
    store = store if isinstance(store, TraceStore) else TraceStore(store)
    if not is_diffusion_store(store):
        raise ValueError(f"{store.root}: not a store written by truthtrace diffuse (schema source "
                         f"{store.schema.get('source')!r})")
    ids = [trace_id] if trace_id is not None else store.ids()
    if trace_id is not None and trace_id not in store:
        raise ValueError(f"trace {trace_id!r} is not in {store.root} (ids look like {store.ids()[:5]})")
    out, written, figures = Path(out_dir), {}, []
    for tid in ids:
        trace, meta = store.get(tid), store.meta(tid)
        image, words = trace["image"], meta.get("words") or []
        maps = word_maps(trace["heatmap"], words, tuple(image.shape[:2]))
        fig = overlay_figure(image, maps, words, meta.get("neglected"), f"{tid}: {shorten(meta.get('prompt', ''), 80)}")
        written[f"heatmaps-{tid}"] = save_figure(fig, out / f"heatmaps-{tid}")
        figures.append((f"{tid}: {meta.get('prompt', '')}", CAPTION + f" Most neglected: {meta.get('neglected')!r}.",
                        written[f"heatmaps-{tid}"]))
    info = {"store": str(store.root), "model": str(store.schema.get("model", "")), "images": str(len(ids)),
            "steps": str(store.schema.get("settings", {}).get("steps", "")),
            "scheduler": str(store.schema.get("scheduler_class", ""))}
    written["page"] = [write_page(out, "Cross-attention heat maps", info, figures, command=command)]
    return written
