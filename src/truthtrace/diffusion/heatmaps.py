"""From per-(layer, step) cross-attention maps to DAAM heat maps and the neglected-token score, per word.

Pure torch on the maps a :class:`~truthtrace.diffusion.capture.Recorder` returns; nothing here runs a model.

* DAAM (Tang et al. 2023): a word's heat map is its attention summed over layers, heads and steps,
  here the mean ``(N, R, R)`` over layers and steps (every position still sums to 1 over tokens).
* Attend-and-Excite (Chefer et al. 2023): at each step, the layer-mean map restricted to the prompt's words
  (start token and padding left out, renormalised over the words), Gaussian-smoothed; a token's *peak* is
  its maximum over image positions. A word whose peak stays low is likely missing from the image:
  ``neglect = 1 - peak`` is the Attend-and-Excite loss. A token's *mass* is its share of the whole
  attention (mean over positions of the unrenormalised map, start token included).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def daam_heatmap(maps: dict[int, torch.Tensor]) -> torch.Tensor:
    """Mean over layers and steps: ``{layer: (S, N, R, R)}`` -> ``(N, R, R)``."""
    if not maps:
        raise ValueError("no cross-attention maps were captured")
    return torch.stack([m.float().mean(0) for m in maps.values()]).mean(0)


def step_maps(maps: dict[int, torch.Tensor]) -> torch.Tensor:
    """Mean over layers, per step: ``{layer: (S, N, R, R)}`` -> ``(S, N, R, R)``."""
    return torch.stack([m.float() for m in maps.values()]).mean(0)


def _gaussian(maps: torch.Tensor, sigma: float = 0.5, size: int = 3) -> torch.Tensor:
    """``(S, K, R, R)`` smoothed by a ``size`` x ``size`` Gaussian (reflect padding), as Attend-and-Excite does."""
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    kernel = (g[:, None] * g[None, :]) / (g.sum() ** 2)
    s, k, r, _ = maps.shape
    flat = maps.reshape(s * k, 1, r, r)
    if r > size // 2:
        flat = F.pad(flat, (size // 2,) * 4, mode="reflect")
        flat = F.conv2d(flat, kernel[None, None])
    return flat.reshape(s, k, r, r)


def token_scores(maps: dict[int, torch.Tensor], n_words: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per step and token: ``(peak, mass)``, each ``(S, N)``.

    Args:
        maps: ``{layer: (S, N, R, R)}``.
        n_words: prompt tokens after the start token (positions ``1..n_words``); peaks are 0 elsewhere.
    """
    per_step = step_maps(maps)  # (S, N, R, R)
    mass = per_step.mean((-1, -2))  # (S, N)
    peak = torch.zeros_like(mass)
    if n_words > 0:
        words = per_step[:, 1:1 + n_words]
        words = words / words.sum(1, keepdim=True).clamp_min(1e-12)  # each position: a distribution over words
        peak[:, 1:1 + n_words] = _gaussian(words).amax((-1, -2))
    return peak, mass


def word_spans(prompt: str, offsets: list[tuple[int, int]]) -> list[tuple[str, list[int]]]:
    """Words of ``prompt`` (runs of non-space characters) with the token positions covering them.

    Args:
        prompt: the text.
        offsets: ``(start, end)`` character offsets per token position as a fast tokenizer returns them
            (special tokens and padding have ``start == end``).
    """
    words, current, end_of = [], None, -1
    for pos, (start, end) in enumerate(offsets):
        if start == end:
            continue
        if current is None or start > end_of:  # whitespace between: a new word
            current = [prompt[start:end], [pos]]
            words.append(current)
        else:
            current[0] += prompt[end_of:end]
            current[1].append(pos)
        end_of = end
    return [(w.strip(), positions) for w, positions in words]


def word_scores(words: list[tuple[str, list[int]]], peak: torch.Tensor, mass: torch.Tensor) -> list[dict]:
    """One row per word: peak (mean over steps of its best token's peak), peak_max (over steps), mass
    (its tokens' share of attention, mean over steps), neglect = 1 - peak; ``peak``/``mass`` are ``(S, N)``."""
    rows = []
    for word, positions in words:
        best = peak[:, positions].amax(1)  # (S,)
        rows.append({"word": word, "tokens": positions, "peak": round(float(best.mean()), 6),
                     "peak_max": round(float(best.max()), 6),
                     "mass": round(float(mass[:, positions].sum(1).mean()), 6),
                     "neglect": round(1.0 - float(best.mean()), 6)})
    return rows


def most_neglected(rows: list[dict]) -> str | None:
    """The word of ``rows`` with the highest neglect (None for an empty prompt)."""
    return max(rows, key=lambda r: r["neglect"])["word"] if rows else None


def word_heatmaps(heatmap: torch.Tensor, words: list[tuple[str, list[int]]]) -> torch.Tensor:
    """``(W, R, R)``: each word's DAAM map (its tokens summed) from ``heatmap`` ``(N, R, R)``."""
    if not words:
        return heatmap.new_zeros((0, *heatmap.shape[1:]))
    return torch.stack([heatmap[positions].sum(0) for _, positions in words])
