"""Per-layer profiles of traces: hidden-state norm and attention entropy, one trace against groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from truthtrace.naming import parse_key
from truthtrace.viz.figure import CORRECT_COLOR, HALLUCINATED_COLOR, PALETTE, plain, pyplot, save_figure


@dataclass
class LayerProfile:
    """One trace's per-layer summary.

    ``hidden_layers`` / ``hidden_norm``: mean over tokens of the L2 norm of the hidden
    state at each stored hidden layer; ``attn_layers`` / ``attn_entropy``: mean over heads
    and query rows of the attention row's entropy (nats) at each stored attention layer.
    """

    hidden_layers: list[int] = field(default_factory=list)
    hidden_norm: list[float] = field(default_factory=list)
    attn_layers: list[int] = field(default_factory=list)
    attn_entropy: list[float] = field(default_factory=list)


def row_entropy(attn: np.ndarray) -> float:
    """Mean entropy (nats) of the rows of ``attn`` ``(H, K, T)``; zeros count as 0 log 0 = 0."""
    p = attn.astype(np.float64)
    logp = np.log(np.where(p > 0, p, 1.0))
    return float(-(p * logp).sum(-1).mean())


def layer_profile(trace) -> LayerProfile:
    """Summarise one stored trace (a ``truthtrace.store.Trace`` or a dict of tensors).

    Reads ``layers.{i}.hidden`` ``(K, d)`` and ``layers.{i}.attn`` ``(H, K, T)`` keys;
    other keys are ignored, so stores without attention give an empty entropy profile.
    """
    prof = LayerProfile()
    keys = sorted((p, k) for k in trace.keys() if (p := parse_key(k)) is not None)
    for (layer, kind), key in keys:
        x = np.asarray(trace[key].float().numpy(), dtype=np.float64)
        if kind == "hidden":
            prof.hidden_layers.append(layer)
            prof.hidden_norm.append(float(np.linalg.norm(x, axis=-1).mean()))
        else:
            prof.attn_layers.append(layer)
            prof.attn_entropy.append(row_entropy(x))
    return prof


def _band(ax, layers: list[int], values: np.ndarray, color: str, label: str) -> None:
    """Mean line with a ± one standard deviation band; ``values`` is ``(n_traces, n_layers)``."""
    mean, sd = values.mean(0), values.std(0)
    ax.plot(layers, mean, color=color, lw=2, label=f"{label} (n={len(values)}), mean ± sd")
    ax.fill_between(layers, mean - sd, mean + sd, color=color, alpha=0.2, lw=0)


def plot_layer_profiles(profile: LayerProfile, groups: dict[str, list[LayerProfile]], title: str,
                        out_stem: Path, trace_label: str = "this trace") -> list[Path]:
    """Hidden-state norm and attention entropy across layers, the trace over group bands.

    Args:
        profile: the chosen trace.
        groups: ``{"correct": [...], "hallucinated": [...]}`` profiles of sampled traces
            (either may be empty or missing); traces whose layers differ from the chosen
            trace's are left out.
        trace_label: legend text for the chosen trace.

    Returns:
        the written ``[png, svg]`` paths.
    """
    plt = pyplot()
    panels = [("hidden_layers", "hidden_norm", "L2 norm", "hidden layer (0 = embeddings)",
               "Hidden-state norm (mean over tokens)"),
              ("attn_layers", "attn_entropy", "entropy (nats)", "attention layer",
               "Attention entropy (mean over heads and query rows)")]
    panels = [p for p in panels if getattr(profile, p[0])]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.4), squeeze=False, layout="constrained")
    colors = {"correct": CORRECT_COLOR, "hallucinated": HALLUCINATED_COLOR}
    for ax, (lkey, vkey, ylabel, xlabel, panel_title) in zip(axes.flat, panels):
        layers = getattr(profile, lkey)
        for name, profs in groups.items():
            rows = [getattr(p, vkey) for p in profs if getattr(p, lkey) == layers]
            if rows:
                _band(ax, layers, np.array(rows), colors.get(name, PALETTE["green"]), name)
        ax.plot(layers, getattr(profile, vkey), color=PALETTE["black"], lw=1.4, marker="o", ms=3.5,
                label=plain(trace_label))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(panel_title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
    fig.suptitle(plain(title))
    return save_figure(fig, out_stem)
