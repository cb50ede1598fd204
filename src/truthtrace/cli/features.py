"""CLI subcommands: preprocess (a trace store -> a streamable feature store).

    truthtrace preprocess runs/a/traces --out runs/a/feats --labels runs/a/labels.csv
    truthtrace preprocess traces --out feats --graph-layers 8-16 --threshold 0.1 --no-pca
    torchrun --nproc-per-node 4 -m truthtrace preprocess runs/a/traces --out runs/a/feats   # rank k: feats.rank-k
"""

from __future__ import annotations

import json

from truthtrace import distributed
from truthtrace.cli.args import add_feature_args, feature_config
from truthtrace.features import preprocess
from truthtrace.features.sharded import sharded_preprocess
from truthtrace.machine import peak_memory, peak_memory_line


def format_bytes(n: int) -> str:
    """``n`` bytes as ``812 B``, ``3.4 KB``, ``1.2 MB`` or ``2.0 GB``."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_preprocess(args) -> None:
    """Run ``truthtrace.features.preprocess`` from parsed arguments and print its summary."""
    if distributed.launched():  # torchrun: rank k preprocesses its slice into OUT.rank-k, rank 0 merges into OUT
        summary = sharded_preprocess(args.store, args.out, feature_config(args), labels=args.labels,
                                     progress=not args.quiet)
        if not distributed.is_main():
            print(json.dumps(summary) if args.json else f"rank {summary['rank']}: {summary['written_rank']} traces "
                  f"written, {summary['skipped_rank']} skipped, in {summary['seconds_rank']:.1f} s")
            return
    else:
        summary = preprocess(args.store, args.out, feature_config(args), labels=args.labels, progress=not args.quiet)
    if args.json:
        print(json.dumps({**summary, **peak_memory()}, indent=2))
        return
    n = max(summary["n_traces"], 1)
    print(f"{summary['written']} traces written, {summary['skipped']} skipped, in {summary['seconds']:.1f} s "
          f"-> {summary['out']} ({format_bytes(summary['bytes_on_disk'])}, "
          f"{format_bytes(summary['bytes_on_disk'] / n)}/trace)")
    print("split: " + ", ".join(f"{k} {v}" for k, v in summary["split"].items()))
    for key, size in summary["bytes_per_key"].items():
        print(f"  {key:<22} {format_bytes(size):>10}  {format_bytes(size / n):>9}/trace")
    print(peak_memory_line())


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    p = sub.add_parser("preprocess", help="turn a trace store into a feature store for detectors (resumable)")
    p.add_argument("store", help="trace store directory")
    p.add_argument("--out", required=True, help="feature store directory")
    p.add_argument("--labels", default=None, help="labels.csv: the summary reports each split's label balance "
                                                   "(the split itself never depends on labels)")
    add_feature_args(p)
    s = p.add_argument_group("run")
    s.add_argument("--overwrite", action="store_true", help="replace an existing feature store instead of resuming "
                   "(refused, deleting nothing, if the folder holds other files)")
    s.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_preprocess)
