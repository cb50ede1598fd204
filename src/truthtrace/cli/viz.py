"""CLI subcommands: visualize."""

from __future__ import annotations

import shlex

from truthtrace.cli.args import int_list
from truthtrace.store import StoreError, TraceStore
from truthtrace.viz.diffusion import is_diffusion_store, visualize_diffusion
from truthtrace.viz.stage import VisualizeConfig, visualize

_FLAGS = ("trace", "out", "layer", "layers", "head", "top_k", "threshold", "max_tokens", "token_mode", "tokenizer",
          "no_decode", "sink", "labels", "no_labels", "sample", "seed", "report")


def _head(text: str) -> int | str:
    """``--head``: an int or ``mean``."""
    if text == "mean":
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--head must be an int or 'mean', got {text!r}") from None


def _layers(text: str | None) -> list[int] | None:
    try:
        return int_list(text)
    except ValueError:
        raise ValueError(f"--layers must look like '0,10,20,29' or '0-3', got {text!r}") from None


def _command(args) -> str:
    """The command line equivalent to ``args`` (every option given, in a fixed order), for the page."""
    parts = ["truthtrace", "visualize", str(args.store)]
    for name in _FLAGS:
        value = getattr(args, name)
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        parts.extend([flag] if value is True else [flag, str(value)])
    return shlex.join(parts)


def _diffusion(path) -> bool:
    """True for a store written by ``truthtrace diffuse`` (any other case is left to the visualize stage)."""
    try:
        return is_diffusion_store(TraceStore(path))
    except StoreError:
        return False


def cmd_visualize(args) -> None:
    """Run the visualize stage and print where each figure went (heat maps over images for a diffusion store)."""
    if _diffusion(args.store):
        written = visualize_diffusion(args.store, args.out, args.trace, command=_command(args))
        print("\n".join(f"{name:17s} " + "  ".join(str(p) for p in paths) for name, paths in written.items()))
        print(f"open {written['page'][0]}")
        return
    config = VisualizeConfig(
        trace_id=args.trace, layer=args.layer, layers=_layers(args.layers), head=_head(args.head),
        top_k=args.top_k, threshold=args.threshold, labels=None if args.no_labels else (args.labels or "auto"),
        report=args.report, max_tokens=args.max_tokens, token_mode=args.token_mode, sample=args.sample,
        seed=args.seed, sink=args.sink, tokenizer=None if args.no_decode else (args.tokenizer or "auto"),
        command=_command(args))
    written = visualize(args.store, args.out, config)
    for name, paths in written.items():
        print(f"{name:17s} " + "  ".join(str(p) for p in paths))
    n = sum(len(p) for p in written.values())
    print(f"wrote {n} files; open {written['page'][0]}")


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    p = sub.add_parser("visualize", help="figures of one trace (attention graph, heads, layers) and ROC curves",
                       description="Write PNG + SVG figures of one trace and an index.html page gathering them.")
    p.add_argument("store", help="trace store directory")
    p.add_argument("--trace", required=True, help="trace id to draw")
    p.add_argument("--out", default="viz", help="output folder (default: ./viz)")
    g = p.add_argument_group("attention")
    g.add_argument("--layer", type=int, default=None, help="attention layer of the graph and head grid "
                   "(default: the middle one)")
    g.add_argument("--layers", default=None, help="layers compared side by side, e.g. 0,10,20,29 "
                   "(default: four spread over the stored ones)")
    g.add_argument("--head", default="mean", help="head index or 'mean' (default) for the graph")
    edges = g.add_mutually_exclusive_group()
    edges.add_argument("--top-k", type=int, default=None, help="graph edges: strongest K per token (default 3)")
    edges.add_argument("--threshold", type=float, default=None, help="graph edges: every weight >= X")
    g.add_argument("--sink", action="store_true", help="graph: also draw edges into the first token (attention sink)")
    g.add_argument("--max-tokens", type=int, default=48, help="tokens shown at most (default 48)")
    g.add_argument("--token-mode", choices=["blocks", "last"], default="blocks",
                   help="beyond --max-tokens: merge early prompt tokens into blocks (default) or keep the last N")
    g.add_argument("--tokenizer", default=None, help="tokenizer directory (default: the store's model, offline)")
    g.add_argument("--no-decode", action="store_true", help="label tokens by id, do not load a tokenizer")
    lab = p.add_argument_group("labels and detectors")
    lab.add_argument("--labels", default=None, help="labels CSV (default: labels.csv beside the store, if any)")
    lab.add_argument("--no-labels", action="store_true", help="ignore labels even if labels.csv exists")
    lab.add_argument("--sample", type=int, default=100, help="labelled traces per profile band (default 100)")
    lab.add_argument("--seed", type=int, default=0, help="seed of that sample")
    lab.add_argument("--report", default=None, help="evaluation report.json: adds ROC curves")
    p.set_defaults(func=cmd_visualize)
