"""CLI subcommands: preprocess (a trace store -> a streamable feature store).

    truthtrace preprocess runs/a/traces --out runs/a/feats --labels runs/a/labels.csv
    truthtrace preprocess traces --out feats --graph-layers 8-16 --threshold 0.1 --no-pca
"""

from __future__ import annotations

import json

from truthtrace.cli.args import int_list
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.machine import peak_memory, peak_memory_line


def _fractions(text: str) -> tuple[float, ...]:
    """Parse ``"0.7,0.15,0.15"``."""
    try:
        return tuple(float(f) for f in text.split(","))
    except ValueError:
        raise ValueError(f"--fractions must be three comma-separated numbers, got {text!r}") from None


def _format_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_preprocess(args) -> None:
    """Run ``truthtrace.features.preprocess`` from parsed arguments and print its summary."""
    config = PreprocessConfig(
        graphs=not args.no_graphs, graph_layers=int_list(args.graph_layers), max_nodes=args.max_nodes,
        top_k=None if args.threshold is not None else args.top_k, threshold=args.threshold, pca=not args.no_pca,
        node_dim=args.node_dim, split_seed=args.split_seed, fractions=_fractions(args.fractions),
        overwrite=args.overwrite, threads=args.threads, pca_from=args.pca_from)
    summary = preprocess(args.store, args.out, config, labels=args.labels, progress=not args.quiet)
    if args.json:
        print(json.dumps({**summary, **peak_memory()}, indent=2))
        return
    n = max(summary["n_traces"], 1)
    print(f"{summary['written']} traces written, {summary['skipped']} skipped, in {summary['seconds']:.1f} s "
          f"-> {summary['out']} ({_format_bytes(summary['bytes_on_disk'])}, "
          f"{_format_bytes(summary['bytes_on_disk'] / n)}/trace)")
    print("split: " + ", ".join(f"{k} {v}" for k, v in summary["split"].items()))
    for key, size in summary["bytes_per_key"].items():
        print(f"  {key:<22} {_format_bytes(size):>10}  {_format_bytes(size / n):>9}/trace")
    print(peak_memory_line())


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    p = sub.add_parser("preprocess", help="turn a trace store into a feature store for detectors (resumable)")
    p.add_argument("store", help="trace store directory")
    p.add_argument("--out", required=True, help="feature store directory")
    p.add_argument("--labels", default=None, help="labels.csv: the summary reports each split's label balance "
                                                   "(the split itself never depends on labels)")
    g = p.add_argument_group("graphs")
    g.add_argument("--no-graphs", action="store_true", help="skip the per-layer token graphs")
    g.add_argument("--graph-layers", default=None, help="attention layers, e.g. '0-29' or '8,16' (default: all)")
    g.add_argument("--max-nodes", type=int, default=64, help="graph nodes: the last N tokens")
    g.add_argument("--top-k", type=int, default=4, help="edges: each token's k strongest sources")
    g.add_argument("--threshold", type=float, default=None, help="edges: every source above this head-mean weight")
    g.add_argument("--node-dim", type=int, default=64, help="PCA components of the node features")
    g.add_argument("--no-pca", action="store_true", help="keep the full hidden states as node features")
    g.add_argument("--pca-from", default=None, metavar="PCA",
                   help="reuse the PCA of another feature store (its dir or its pca.safetensors) instead of fitting "
                        "one: for testing a detector on new traces (cross-dataset evaluation)")
    s = p.add_argument_group("split and run")
    s.add_argument("--split-seed", type=int, default=0)
    s.add_argument("--fractions", default="0.7,0.15,0.15", help="train,val,test shares of question ids")
    s.add_argument("--overwrite", action="store_true", help="replace an existing feature store instead of resuming "
                   "(refused, deleting nothing, if the folder holds other files)")
    s.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_preprocess)
