"""``truthtrace profile``: a stage run under ``torch.profiler`` (top ops, peak memory, a Chrome trace).

    truthtrace profile extract --n 8 --out prof/extract
    truthtrace profile extract --features --n 32 --model-dtype bfloat16 --capture generate --out prof/run-extract
    truthtrace profile train --features runs/a/feats --labels runs/a/labels.csv --detector lstm --out prof/train
    truthtrace profile ask --detector runs/a/detectors --n 8 --out prof/ask

Each writes ``profile.txt`` (the top ops, also printed), ``trace.json`` (open it in https://ui.perfetto.dev)
and ``profile.json`` (counts, seconds, peak memory) into ``--out``; see :mod:`truthtrace.profiling`.
"""

from __future__ import annotations

import argparse

from truthtrace.cli.args import (
    add_feature_args,
    add_model_args,
    add_question_args,
    detector_args,
    extract_config,
    feature_config,
    questions_from,
)
from truthtrace.dtypes import COMPUTE_DTYPES
from truthtrace.profiling import ROWS, profile_ask, profile_extract, profile_train
from truthtrace.training.compile import COMPILE_MODES

COMPILE_HELP = "torch.compile mode (eager with a warning where compiling fails)"


def report(summary: dict) -> None:
    """Print the top-ops table and one line: what ran, how long, the peak memory and where the files are."""
    print(summary["table"])
    cuda = f", CUDA {summary['peak_cuda_memory_mb']:.0f} MB" if "peak_cuda_memory_mb" in summary else ""
    count = f"{summary['questions']} questions, " if "questions" in summary else ""
    print(f"profiled {summary['stage']}: {count}{summary['seconds']:.2f} s, peak memory "
          f"{summary['peak_memory_mb']:.0f} MB RSS{cuda} -> {summary['files']['table']}, {summary['files']['trace']} "
          "(open in https://ui.perfetto.dev)")


def cmd_profile_extract(args) -> None:
    """``truthtrace profile extract``: extraction of ``--n`` questions into a temporary store."""
    features = feature_config(args) if args.features else None
    report(profile_extract(questions_from(args), args.out, extract_config(args), warmup=args.warmup, rows=args.rows,
                           features=features))


def cmd_profile_train(args) -> None:
    """``truthtrace profile train``: one short fit of ``--detector`` on an existing feature store."""
    report(profile_train(args.features, args.labels, args.detector, args.out, epochs=args.epochs,
                         batch_size=args.batch_size, seed=args.seed, compile=args.compile,
                         detector_args=detector_args(args.detector_args), rows=args.rows))


def cmd_profile_ask(args) -> None:
    """``truthtrace profile ask``: the live engine answering ``--n`` questions (no result cache)."""
    report(profile_ask(questions_from(args, require_answers=False), args.detector, args.out, warmup=args.warmup,
                       rows=args.rows, model=args.model, dtype=args.dtype, device=args.device, threads=args.threads,
                       max_batch=args.batch_size, max_new_tokens=args.max_new_tokens, compile=args.compile))


def add_common(p, warmup: bool = True) -> None:
    """``--out``, ``--rows`` (and ``--warmup``), ``--debug`` of every profile subcommand."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="on an error, print the full traceback instead of one line")
    p.add_argument("--out", required=True, help="folder for profile.txt, trace.json and profile.json")
    p.add_argument("--rows", type=int, default=ROWS, help="ops in the table")
    if warmup:
        p.add_argument("--warmup", type=int, default=0, metavar="N",
                       help="questions run first, not profiled (one-time costs such as compilation)")


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    group = sub.add_parser("profile", help="run a stage on a small input under torch.profiler: top ops, peak "
                                           "memory, a Chrome trace").add_subparsers(dest="stage", required=True)
    p = group.add_parser("extract", help="profile extraction of --n questions (default 8) into a temporary store")
    add_question_args(p)
    add_model_args(p)
    p.add_argument("--features", action="store_true",
                   help="profile extraction with forward-pass features (extract --features, what truthtrace run "
                        "does) instead of full traces; the graph, PCA and split options below apply")
    add_feature_args(p)
    add_common(p)
    p.set_defaults(func=cmd_profile_extract, n=8)

    p = group.add_parser("train", help="profile one short fit of a detector on a feature store")
    p.add_argument("--features", required=True, help="feature store written by `truthtrace preprocess`")
    p.add_argument("--labels", required=True)
    p.add_argument("--detector", required=True, help="registry name, e.g. lstm")
    p.add_argument("--epochs", type=int, default=2, help="epochs of a torch detector")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--detector-args", default=None, help='JSON of constructor arguments, e.g. \'{"hidden": 32}\'')
    p.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES, help=COMPILE_HELP)
    add_common(p, warmup=False)
    p.set_defaults(func=cmd_profile_train)

    p = group.add_parser("ask", help="profile the live engine answering --n questions (default 8)")
    p.add_argument("--detector", action="append", required=True, metavar="DIR",
                   help="a saved detector or a train output folder; repeatable")
    add_question_args(p)
    p.add_argument("--model", default=None, help="model spec (default: the model the detectors' traces came from)")
    p.add_argument("--dtype", default="auto", choices=("auto", *COMPUTE_DTYPES))
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=8, help="requests per batch")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES, help=COMPILE_HELP)
    add_common(p)
    p.set_defaults(func=cmd_profile_ask, n=8, seed=0)
