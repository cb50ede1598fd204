"""CLI subcommands: compare-models."""

from __future__ import annotations

from truthtrace.cli.args import add_placement_args, placement_from
from truthtrace.compare import CompareConfig, compare_models, print_table
from truthtrace.dtypes import COMPUTE_DTYPES
from truthtrace.models.adapters import with_adapter


def cmd_compare(args) -> None:
    """Run :func:`truthtrace.compare.compare_models` and print the table and where files went."""
    config = CompareConfig(out_dir=args.out, text=args.text, batch_size=args.batch_size, seq_len=args.seq_len,
                           runs=args.runs, warmup=args.warmup, threads=args.threads, max_length=args.max_length,
                           stride=args.stride, dtype=args.dtype, device=args.device, labels_csv=args.labels_csv,
                           store=args.store, detector=args.detector, n_questions=args.n_questions,
                           memory="off" if args.no_memory else "subprocess", plot=not args.no_plot,
                           placement=placement_from(args))  # the memory subprocess loads with it too
    specs = list(args.models) + ([with_adapter(args.models[0], args.adapter)] if args.adapter else [])
    report = compare_models(specs, config)
    print_table(report)
    files = report.get("files", {})
    if files:
        print(f"report -> {files['json']}, {files['markdown']}" + "".join(f", {p}" for p in files.get("plots", [])))


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    p = sub.add_parser("compare-models", help="compare models' size, memory, latency and quality against the first")
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="two or more model specs; the first is the reference; BASE+ADAPTER_DIR applies a peft adapter")
    add_placement_args(p)
    p.add_argument("--out", default="runs/compare", help="directory for compare.json, compare.md and the plots")
    p.add_argument("--text", default=None, help="text sample for perplexity (default: the bundled ~2,200 tokens)")
    p.add_argument("--batch-size", type=int, default=8, help="latency batch rows")
    p.add_argument("--seq-len", type=int, default=64, help="latency batch tokens per row")
    p.add_argument("--runs", type=int, default=5, help="timed round-robin rounds (median and IQR reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads for every model")
    p.add_argument("--max-length", type=int, default=512, help="perplexity window length")
    p.add_argument("--stride", type=int, default=256, help="perplexity window step")
    p.add_argument("--dtype", default=None, choices=COMPUTE_DTYPES,
                   help="compute dtype for every model (default: each model's stored dtype)")
    p.add_argument("--device", default="auto")
    p.add_argument("--labels-csv", default=None, help="CSV with text,label columns: encoder accuracy")
    p.add_argument("--store", default=None, help="trace store whose questions are re-extracted with each model")
    p.add_argument("--detector", default=None, help="saved detector dir scored on those traces (with --store)")
    p.add_argument("--n-questions", type=int, default=100, help="questions re-extracted per model for the AUROC")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--no-plot", action="store_true", help="skip the size-versus-quality plot")
    p.set_defaults(func=cmd_compare)
