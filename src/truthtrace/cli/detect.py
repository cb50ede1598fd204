"""CLI subcommands: train, evaluate, run (detectors, their report, and the whole loop)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from rich.console import Console

from truthtrace import distributed
from truthtrace.cli.args import add_model_args, add_sample_args, detector_args, extract_config, int_list
from truthtrace.detectors.base import DETECTORS
from truthtrace.detectors.torch_base import TorchDetector
from truthtrace.detectors.train import TrainConfig, train
from truthtrace.evaluation.evaluate import EVAL_SPLITS, EvalConfig, evaluate
from truthtrace.evaluation.report import comparison_text, format_table, rich_table, sampling_text
from truthtrace.labels.rules import DEFAULT_EVAL_RULES, DEFAULT_RULE, LABEL_RULE_HELP
from truthtrace.labels.score import SPANS
from truthtrace.local_ranks import auto_procs
from truthtrace.machine import peak_memory_line
from truthtrace.pipeline import RunConfig, rank_extract, run
from truthtrace.training.compile import COMPILE_MODES

COMPILE_HELP = ("torch.compile the torch detectors' forward while training (mode: default, reduce-overhead, "
                "max-autotune; eager with a warning where it fails); pays off on long runs only, see BENCHMARKS.md")


def with_compile(config: TrainConfig, mode: str | None) -> TrainConfig:
    """``config`` with ``compile=mode`` in the arguments of each torch detector it fits (unless given there)."""
    if mode is None:
        return config
    args = {name: dict(config.detector_args.get(name, {})) for name in config.detectors}
    for name in config.detectors:
        if issubclass(DETECTORS[name], TorchDetector):
            args[name].setdefault("compile", mode)
    return dataclasses.replace(config, detector_args={k: v for k, v in args.items() if v})


def cmd_train(args) -> None:
    """``truthtrace train``: fit detectors per seed and print each fit's validation AUROC."""
    names = {"detectors": tuple(args.detectors.split(","))} if args.detectors else {}
    cfg = TrainConfig(**names, seeds=tuple(int_list(args.seeds)),
                      batch_size=args.batch_size, num_workers=args.num_workers,
                      detector_args=detector_args(args.detector_args), overwrite=args.overwrite,
                      procs=procs_arg(args.procs, "cpu"))
    cfg = with_compile(cfg, args.compile)
    if distributed.launched():  # torchrun: DDP for the torch detectors; only rank 0 writes --out and prints
        feats, labels = Path(args.features).resolve(), Path(args.labels).resolve()  # on_ranks changes the cwd
        summary = distributed.on_ranks(lambda out: train(feats, labels, out, cfg, progress=distributed.is_main()),
                                       args.out)
        if summary is None:
            return
    else:
        summary = train(args.features, args.labels, args.out, cfg)
    for name, runs in summary["detectors"].items():
        for seed, info in runs.items():
            print(f"  {name:<12} {seed:<8} {info.get('detail', '')} {info.get('skipped', '')}"
                  f" val AUROC {info.get('val_auroc', float('nan')):.3f}" if "val_auroc" in info else
                  f"  {name:<12} {seed:<8} {info.get('skipped', '')}")
    print(f"detectors -> {args.out}; {peak_memory_line()}")


def cmd_evaluate(args) -> None:
    """``truthtrace evaluate``: grade every saved detector and print the table."""
    cfg = EvalConfig(detectors=tuple(args.detectors.split(",")), seed=args.seed, n_bootstrap=args.n_bootstrap,
                     test_features=args.test_features, test_labels=args.test_labels, figures=not args.no_figures,
                     label_rules=label_rules_arg(args.label_rules), judge_model=args.judge_model,
                     label_span=args.label_span, stack=not args.no_stack, split=args.split,
                     ood_detectors=tuple(args.ood_detectors.split(",")) if args.ood_detectors else None,
                     transfer_detector=args.transfer_detector)
    report = evaluate(args.features, args.labels, args.detectors_dir, args.out, cfg)
    Console(width=200).print(rich_table(report))
    figures = ", ".join(p.rsplit("/", 1)[-1] for p in report.get("figures", []) if p.endswith(".png"))
    print(f"report -> {args.out}/report.md, {args.out}/report.json" + (f", {figures}" if figures else "")
          + f"; {peak_memory_line()}")


def cmd_run(args) -> None:
    """``truthtrace run``: every stage in order, then the table and where each stage wrote."""
    cfg = RunConfig(out_dir=args.out, n_questions=args.n, questions=args.questions, seed=args.seed,
                    extract=extract_config(args), label_rule=args.rule, seeds=tuple(int_list(args.seeds)),
                    label_rules=label_rules_arg(args.label_rules), judge_model=args.judge_model, split=args.split,
                    graphs=not args.no_graphs, trace_sample=args.trace_sample, full_traces=args.full_traces,
                    samples=args.samples, sample_temperature=args.sample_temperature, sample_top_p=args.sample_top_p,
                    procs=procs_arg(args.procs, args.device), **({"detectors": args.detectors.split(",")}
                                                                if args.detectors else {}))
    report = run(cfg)
    print()
    print(format_table(report))
    print()
    print("\n".join(t for t in (comparison_text(report), sampling_text(report)) if t))
    print()
    for name, path in report["paths"].items():
        print(f"  {name:<10} {path}")
    print(f"  timings (s): {report['timings']}")
    print()
    print("Ask the trained detectors about new answers, live:")
    for line in live_commands(report["paths"]["detectors"]):
        print(f"  {line}")


def procs_arg(text: str, device: str) -> int:
    """``--procs``: ``auto`` (:func:`truthtrace.local_ranks.auto_procs`) or an int >= 1."""
    if text == "auto":
        return auto_procs(device)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"--procs must be 'auto' or an int >= 1, got {text!r}")
    return int(text)


def cmd_run_rank(args) -> None:
    """``truthtrace run-rank JOB`` (internal): one extract worker of ``run --procs N``."""
    rank_extract(args.job)


def label_rules_arg(text: str) -> tuple[str, ...]:
    """``--label-rules``: comma-separated rules, or "none" for the primary labels only."""
    return () if text.strip().lower() == "none" else tuple(text.split(","))


def add_label_rule_args(p) -> None:
    """``--label-rules`` and ``--judge-model`` (evaluate and run)."""
    p.add_argument("--label-rules", default=",".join(DEFAULT_EVAL_RULES),
                   help=f"grade every detector under each of these label rules too ({LABEL_RULE_HELP}), "
                        "recomputed from labels.csv's answers; 'none' = the labels file only")
    p.add_argument("--judge-model", default=None, help="a local instruction model (directory, .gguf or the embedded "
                   "name) for the 'judge' rule; required when --label-rules has judge")


def live_commands(detectors_dir: str) -> list[str]:
    """The ``truthtrace ask`` and ``truthtrace demo`` commands for the detectors a run trained."""
    return [f'truthtrace ask --detector {detectors_dir} "Who wrote the novel Moby-Dick?"',
            f"truthtrace demo --detector {detectors_dir}"]



def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    p = sub.add_parser("train", help="train detectors on a feature store (from preprocess) + labels; resumable")
    p.add_argument("--features", required=True, help="feature store written by `truthtrace preprocess`")
    p.add_argument("--labels", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--detectors", "--detector", default=None,
                   help="comma-separated registry names, or 'all' (default: every detector of the report)")
    p.add_argument("--seeds", default="0", help="training seeds, e.g. '0-2' (random detectors are fit per seed)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (default 0: in-process)")
    p.add_argument("--detector-args", default=None, help='JSON, e.g. \'{"probe": {"C": 0.1}}\'')
    p.add_argument("--overwrite", action="store_true", help="refit detectors that are already saved "
                   "(refused, deleting nothing, if their folders hold files train did not write)")
    p.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES, help=COMPILE_HELP)
    p.add_argument("--procs", default="1", help="fit the detectors on this many processes of this machine "
                   "('auto': 2 on 2+ CPUs); each fit is independent, the slowest are handed out first")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="grade every trained detector (all seeds) on the held-out split")
    p.add_argument("--features", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--detectors-dir", required=True)
    p.add_argument("--detectors", default="all", help="names to grade, or 'all'")
    p.add_argument("--out", required=True)
    p.add_argument("--test-features", default=None, help="cross-dataset: test on this feature store")
    p.add_argument("--test-labels", default=None, help="labels of --test-features")
    p.add_argument("--n-bootstrap", type=int, default=1000)
    p.add_argument("--no-figures", action="store_true")
    add_label_rule_args(p)
    p.add_argument("--label-span", default="sentence", choices=SPANS, help="the part of each answer the rules score")
    p.add_argument("--no-stack", action="store_true", help="do not fit the stack detector over the others' scores")
    p.add_argument("--split", default="random", choices=EVAL_SPLITS,
                   help="category: also refit the detectors leaving each category out, and a transfer matrix")
    p.add_argument("--ood-detectors", default=None, help="detectors refit per category (default: every saved one "
                   "that is not torch-trained: an MLP/LSTM/GNN refit per category costs hours on a CPU)")
    p.add_argument("--transfer-detector", default="probe", help="the detector of the transfer matrix ('' for none)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("run", help="the whole pipeline on one model, resumable")
    p.add_argument("--out", default="runs/default")
    p.add_argument("--questions", default=None)
    p.add_argument("--n", type=int, default=None, help="number of questions (default: all 2,312 bundled)")
    p.add_argument("--seeds", default="0", help="training seeds of the random detectors, e.g. 0-2")
    p.add_argument("--no-graphs", action="store_true", help="skip attention graphs and the gnn detectors")
    p.add_argument("--trace-sample", type=int, default=32, metavar="N",
                   help="full traces kept for the first N questions, for visualize (0: none); the feature store is "
                        "written during extraction")
    p.add_argument("--full-traces", action="store_true",
                   help="store every full trace, then preprocess them (the old path: ~2 MB a question on disk)")
    add_sample_args(p)
    p.add_argument("--rule", default=DEFAULT_RULE, help=LABEL_RULE_HELP)
    add_label_rule_args(p)
    p.add_argument("--split", default="random", choices=EVAL_SPLITS,
                   help="category: the report also refits the non-torch detectors leaving each category out")
    p.add_argument("--detectors", default=None, help="comma-separated (default: every detector of the report)")
    p.add_argument("--procs", default="auto", help="extract and train on this many processes of this machine: each "
                   "extract rank takes every N-th question, the detector fits are shared out (auto: 2 on a CPU-only "
                   "machine with 2+ CPUs, else 1; 1 thread each on 2 CPUs); resume with the same number")
    add_model_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("run-rank", help=argparse.SUPPRESS)  # internal: the extract workers of run --procs N
    p.add_argument("job")
    p.set_defaults(func=cmd_run_rank)
