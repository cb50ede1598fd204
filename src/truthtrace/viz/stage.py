"""The visualize stage: figures of one trace (attention graph, heads, layers, profiles), ROC curves, a page.

``visualize(store, out_dir, VisualizeConfig(trace_id=...))`` writes PNG + SVG figures
and ``index.html`` into ``out_dir`` and returns the written paths by figure name.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from truthtrace.evaluation.report import read_report
from truthtrace.labels.io import labels_beside, read_label_csv
from truthtrace.models import offline_decoder
from truthtrace.naming import TOKEN_IDS, layer_key, parse_key
from truthtrace.store import TraceStore
from truthtrace.viz import attention as va
from truthtrace.viz.attention import TOKEN_MODES
from truthtrace.viz.figure import pyplot, shorten, token_labels
from truthtrace.viz.layers import layer_profile, plot_layer_profiles
from truthtrace.viz.page import FIGURE_CAPTIONS, FIGURE_TITLES, page_info, write_page
from truthtrace.viz.roc import plot_roc


@dataclass
class VisualizeConfig:
    """Options of the visualize stage.

    ``layer``: attention layer of the graph and head grid (default: the middle stored one);
    ``layers``: layers compared side by side (default: four spread over the stored ones);
    ``head``: a head index or ``"mean"``; ``top_k`` / ``threshold``: which graph edges to
    draw (exactly one; ``top_k=3`` when neither is given); ``labels``: a labels CSV,
    ``"auto"`` (``labels.csv`` beside the store folder, if present) or None;
    ``report``: an evaluation ``report.json`` for ROC curves; ``max_tokens`` /
    ``token_mode``: how many tokens attention figures show and how the rest are reduced
    (``"blocks"`` merges early prompt tokens, ``"last"`` keeps the last N); ``sample``:
    labelled traces per profile overlay (fixed ``seed``); ``tokenizer``: ``"auto"``
    (the store's model, offline), a tokenizer directory, or None for token ids; ``sink``:
    draw graph edges into the first shown token too (off: it is the attention sink and
    would take nearly every token's strongest edge);
    ``command``: the command line shown on the page.
    """

    trace_id: str
    layer: int | None = None
    layers: list[int] | None = None
    head: int | str = "mean"
    top_k: int | None = None
    threshold: float | None = None
    labels: str | Path | None = "auto"
    report: str | Path | None = None
    max_tokens: int = 48
    token_mode: str = "blocks"
    sample: int = 100
    seed: int = 0
    tokenizer: str | None = "auto"
    sink: bool = False
    command: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.trace_id, str) or not self.trace_id:
            raise ValueError(f"trace_id must be a non-empty string, got {self.trace_id!r}")
        if self.head != "mean" and not (isinstance(self.head, int) and self.head >= 0):
            raise ValueError(f"head must be 'mean' or an int >= 0, got {self.head!r}")
        if self.top_k is not None and self.threshold is not None:
            raise ValueError("top_k and threshold are exclusive: give one of them")
        if self.top_k is None and self.threshold is None:
            self.top_k = 3
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.max_tokens < 2:
            raise ValueError(f"max_tokens must be >= 2, got {self.max_tokens}")
        if self.token_mode not in TOKEN_MODES:
            raise ValueError(f"token_mode must be one of {TOKEN_MODES}, got {self.token_mode!r}")
        if self.sample < 0:
            raise ValueError(f"sample must be >= 0, got {self.sample}")


def load_tokenizer(spec: str | None, model: str):
    """The tokenizer for decoding labels, loaded offline, or None (labels fall back to token ids).

    Args:
        spec: ``"auto"`` (the store's ``model``, from the cache only: resolving a GGUF would convert
            it, which takes minutes), a tokenizer directory, or None.
        model: the store schema's ``model`` field.
    """
    if spec is None:
        return None
    tok = offline_decoder(model if spec == "auto" else spec)
    if tok is None:
        warnings.warn(f"token labels show ids: no offline tokenizer for {model if spec == 'auto' else spec!r}",
                      stacklevel=2)
    return tok


def resolve_labels(spec: str | Path | None, store_path: Path) -> tuple[dict[str, int], Path | None]:
    """Read the labels CSV named by ``spec`` (see :class:`VisualizeConfig`): ``({trace_id: 1 if hallucinated}, path)``.

    Raises:
        FileNotFoundError: an explicit path that does not exist.
        ValueError: a malformed CSV (from ``read_label_csv``).
    """
    if spec is None:
        return {}, None
    path = labels_beside(store_path) if spec == "auto" else Path(spec)
    if path is None:
        return {}, None
    if not path.is_file():
        raise FileNotFoundError(f"labels file {path} not found")
    return read_label_csv(path), path


def _check_layers(wanted: list[int], have: list[int], field: str) -> None:
    bad = [i for i in wanted if i not in have]
    if bad:
        raise ValueError(f"{field} {bad if len(bad) > 1 else bad[0]} not among the store's attention layers "
                         f"{have[0]}..{have[-1]}" if have else f"{field} {bad}: the store holds no attention maps")


def _spread(have: list[int], n: int = 4) -> list[int]:
    """``n`` layers spread evenly over ``have``, first and last included."""
    idx = np.linspace(0, len(have) - 1, min(n, len(have))).round().astype(int)
    return [have[i] for i in dict.fromkeys(idx.tolist())]


def _attention(trace, layer: int, k0: int) -> np.ndarray:
    """The ``(H, K, K)`` map of the kept positions (columns before ``kept_start`` dropped)."""
    a = trace[layer_key(layer, "attn")].float().numpy()  # (H, K, T)
    return a[..., k0:] if a.shape[-1] > a.shape[-2] else a


def _open(store, trace_id: str):
    store = store if isinstance(store, TraceStore) else TraceStore(store)
    if trace_id not in store:
        sample = ", ".join(store.ids()[:3])
        raise ValueError(f"trace id {trace_id!r} not in store {store.root} ({len(store)} traces, e.g. {sample})")
    return store


def _graph_edges(maps: np.ndarray, view, config: VisualizeConfig, k0: int):
    """Edges of the graph figure from projected maps ``(H, G, G)`` and the text saying how they were chosen."""
    head = config.head
    mat = va.select_head(maps, head)  # (G, G)
    # position 0 soaks up most attention (the sink); hide it only when it is actually shown first
    min_key = 0 if config.sink or k0 > 0 or view.groups[0][0] != 0 or len(view) < 3 else 1
    edges = va.attention_edges(mat, config.top_k, config.threshold, min_key=min_key)
    rule = f"top {config.top_k} per token" if config.top_k is not None else f"weight ≥ {config.threshold:g}"
    if min_key:
        rule += f"; edges into {view.labels[0]!r} (the attention sink, {mat[1:, 0].mean():.0%} of attention) not drawn"
    return edges, f"{'mean of heads' if head == 'mean' else f'head {head}'}, {rule}"


def _pick_layer(trace, config: VisualizeConfig) -> tuple[list[int], int | None]:
    """The trace's attention layers and the one to draw; checks ``layer``, ``layers`` and ``head``.

    Raises:
        ValueError: a requested layer the store lacks, or a head beyond the layer's heads.
    """
    have = sorted(p[0] for k in trace.keys() if (p := parse_key(k)) and p[1] == "attn")
    _check_layers([config.layer] if config.layer is not None else [], have, "layer")
    _check_layers(config.layers or [], have, "layers")
    if not have:
        return have, None
    layer = config.layer if config.layer is not None else have[len(have) // 2]
    n_heads = trace.shape_of(layer_key(layer, "attn"))[0]
    if config.head != "mean" and config.head >= n_heads:
        raise ValueError(f"head {config.head} out of range: layer {layer} has heads 0..{n_heads - 1}")
    return have, layer


def _attention_figures(trace, meta: dict, config: VisualizeConfig, labels: list[str], out: Path,
                       head_title: str) -> dict[str, list[Path]]:
    """The graph, head-grid and layer-comparison figures of one trace (none without attention maps)."""
    have, layer = _pick_layer(trace, config)
    if layer is None:
        warnings.warn("the store holds no attention maps: attention figures skipped", stacklevel=2)
        return {}
    k0 = len(labels) - trace.shape_of(layer_key(layer, "attn"))[-2]  # kept_start: rows stored from here
    view = va.token_view(labels[k0:], max(0, int(meta.get("n_prompt_tokens", 0)) - k0),
                         config.max_tokens, config.token_mode)
    note = "; ".join(x for x in (f"only positions {k0}.. stored" if k0 else "", view.note) if x)
    suffix = f"\n{head_title}" + (f" ({note})" if note else "")
    maps = va.project(_attention(trace, layer, k0), view)  # (H, G, G)
    edges, how = _graph_edges(maps, view, config, k0)
    layer_maps = {i: va.project(_attention(trace, i, k0), view).mean(0) for i in config.layers or _spread(have)}
    return {
        "attention_graph": va.plot_attention_graph(edges, view, f"Attention graph, layer {layer}, {how}{suffix}",
                                                   out / f"attention_graph_L{layer}"),
        "attention_heads": va.plot_head_heatmaps(maps, view, f"Attention of every head, layer {layer}{suffix}",
                                                 out / f"attention_heads_L{layer}"),
        "attention_layers": va.plot_layer_comparison(layer_maps, view, f"Attention across layers (mean of heads)"
                                                     f"{suffix}", out / "attention_layers"),
    }


def _profile_figure(store, trace, labels: dict[str, int], config: VisualizeConfig, out: Path,
                    head_title: str) -> list[Path]:
    """Per-layer norm and entropy of the trace, over correct / hallucinated bands of a sample."""
    from tqdm import tqdm

    pool = sorted(t for t in labels if t in store and t != config.trace_id)
    picked = random.Random(config.seed).sample(pool, min(config.sample, len(pool)))
    groups: dict[str, list] = {"correct": [], "hallucinated": []}
    for tid in tqdm(picked, desc="layer profiles", unit="trace", disable=not picked):
        groups["hallucinated" if labels[tid] else "correct"].append(layer_profile(store.get(tid)))
    what = f", over {len(picked)} labelled traces (seed {config.seed})" if picked else ""
    return plot_layer_profiles(layer_profile(trace), groups, f"Layer profile{what}\n{head_title}",
                               out / "layer_profile", trace_label=f"trace {config.trace_id}")


def _roc_figure(report_path: Path, out: Path) -> list[Path]:
    """ROC curves of the evaluation report at ``report_path`` (read by its owner, ``evaluation.report``)."""
    return plot_roc(read_report(report_path), out / "roc", where=str(report_path))


def visualize(store, out_dir: str | Path, config: VisualizeConfig) -> dict[str, list[Path]]:
    """Write the figures of ``config.trace_id`` (and ROC curves of ``config.report``) and ``index.html``.

    Args:
        store: a ``TraceStore`` or the path of one.
        out_dir: output folder (created).
        config: see :class:`VisualizeConfig`.

    Returns:
        ``{figure name: [png, svg]}`` plus ``"page": [index.html]``; names are
        ``attention_graph``, ``attention_heads``, ``attention_layers`` (when the store has
        attention maps), ``layer_profile`` and ``roc`` (with a report).

    Raises:
        ValueError: unknown trace id, layer or head, bad labels or report (naming them).
        FileNotFoundError: a labels or report file that does not exist.
        ImportError: matplotlib / networkx missing (``pip install 'truthtrace[viz]'``).
    """
    pyplot()  # fail early, before reading anything, when the viz extra is missing
    store = _open(store, config.trace_id)
    out = Path(out_dir)
    labels, labels_path = resolve_labels(config.labels, store.root)
    if config.report is not None and not Path(config.report).is_file():
        raise FileNotFoundError(f"report file {config.report} not found")
    trace, meta = store.get(config.trace_id), store.meta(config.trace_id)
    _pick_layer(trace, config)  # bad layer or head: fail before the slow tokenizer load
    label = {1: "hallucinated", 0: "correct"}.get(labels.get(config.trace_id), "unlabelled")
    head_title = f"trace {config.trace_id} ({label}): {_short(meta.get('question', ''), 70)} → " \
                 f"{_short(meta.get('generation', ''), 40)}"
    model = str(store.schema.get("model", ""))
    with warnings.catch_warnings(record=True) as caught:  # shown on the page too, then passed on
        warnings.simplefilter("always")
        ids = [int(i) for i in trace[TOKEN_IDS].tolist()] if TOKEN_IDS in trace else []
        tok_labels = token_labels(ids, load_tokenizer(config.tokenizer, model))  # (T,) tick texts
        written = _attention_figures(trace, meta, config, tok_labels, out, head_title) if ids else {}
        written["layer_profile"] = _profile_figure(store, trace, labels, config, out, head_title)
        if config.report is not None:
            written["roc"] = _roc_figure(Path(config.report), out)
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    for note in notes:
        warnings.warn(note, stacklevel=2)
    info = page_info(config.trace_id, meta, label, model, store.root, labels_path)
    figures = [(FIGURE_TITLES[name], FIGURE_CAPTIONS[name], paths) for name, paths in written.items()]
    written["page"] = [write_page(out, f"truthtrace: trace {config.trace_id}", info, figures, config.command, notes)]
    return written


def _short(text: str, n: int) -> str:
    return shorten(text, n)
