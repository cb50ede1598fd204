"""The ``truthtrace`` command line: one subcommand per stage, each a thin shell over its Python API."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

# Before torch starts OpenMP: idle threads sleep instead of spinning. On 2 shared cores a
# busy neighbour process otherwise collapses torch (measured 1.27 vs 0.15 questions/s).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .models import DEFAULT_MODEL  # noqa: E402

# Modules that add more subcommands: each has ``register(sub)`` taking the subparsers
# object, and imports its heavy dependencies inside the command functions.
COMMAND_MODULES = (
    "truthtrace.cli_look",  # validate, inspect, import
    "truthtrace.cli_viz",  # visualize
    "truthtrace.cli_preprocess",  # preprocess
    "truthtrace.cli_compress",  # compress
    "truthtrace.cli_compare",  # compare-models
)


def _int_list(text: str | None) -> list[int] | None:
    """Parse ``"0,4,8"`` or ``"0-30"`` into a list of ints."""
    if text is None:
        return None
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return out


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and generation")
    g.add_argument("--model", default=DEFAULT_MODEL, help="embedded name, HF directory, .gguf file or hub id")
    g.add_argument("--model-dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="compute dtype (bfloat16 is ~2.5x faster on CPUs with bf16 units)")
    g.add_argument("--device", default="auto")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--max-new-tokens", type=int, default=24)
    g.add_argument("--template", default=None, help="prompt template containing {question}")
    g.add_argument("--system-prompt", default=None)
    g.add_argument("--no-chat-template", action="store_true")
    g.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=0)
    s = p.add_argument_group("what to capture and how to store it")
    s.add_argument("--layers", default=None, help="hidden-state layers to keep, e.g. '0-30' or '8,16,24'")
    s.add_argument("--attn-layers", default=None, help="attention layers to keep")
    s.add_argument("--no-attentions", action="store_true")
    s.add_argument("--keep", default="all", help="token positions to keep: all, answer, last:K")
    s.add_argument("--capture", default="forward", choices=["forward", "generate"],
                   help="forward: generate, then one exact forward pass; generate: from the generation steps (faster)")
    s.add_argument("--storage-dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    s.add_argument("--overwrite", action="store_true", help="delete an existing store instead of resuming")


def _extract_config(args):
    from .capture import DEFAULT_TEMPLATE
    from .extract import ExtractConfig

    return ExtractConfig(
        model=args.model, model_dtype=args.model_dtype, device=args.device, threads=args.threads,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens, prompt_template=args.template or DEFAULT_TEMPLATE,
        system_prompt=args.system_prompt, use_chat_template=not args.no_chat_template, do_sample=args.sample,
        temperature=args.temperature, top_p=args.top_p, seed=args.seed, hidden_layers=_int_list(args.layers),
        attn_layers=_int_list(args.attn_layers), attentions=not args.no_attentions, keep=args.keep,
        capture=args.capture,
        storage_dtype=args.storage_dtype, overwrite=args.overwrite)


def _questions_from(args):
    from .data import load_bundled, load_questions

    if args.questions in (None, "bundled"):
        return load_bundled(n=args.n, seed=args.seed)
    return load_questions(args.questions, fmt=args.format, limit=args.n)


def cmd_questions(args) -> None:
    from .data import save_questions

    qs = _questions_from(args)
    save_questions(qs, args.out)
    cats: dict[str, int] = {}
    for q in qs:
        cats[q.category] = cats.get(q.category, 0) + 1
    print(f"wrote {len(qs)} questions to {args.out}: " + ", ".join(f"{c} {n}" for c, n in sorted(cats.items())))


def cmd_extract(args) -> None:
    from .extract import extract

    summary = extract(_questions_from(args), args.out, _extract_config(args))
    summary.pop("config")
    print(json.dumps(summary, indent=2))


def cmd_label(args) -> None:
    from .labels import LabelConfig, label_store

    summary = label_store(args.store, args.out, LabelConfig(rule=args.rule))
    print(f"{summary['correct']}/{summary['n']} correct ({summary['rate_correct']:.1%}), "
          f"{summary['hallucinated']} hallucinated -> {args.out}")


def _detector_args(text: str | None) -> dict:
    """Parse ``--detector-args '{"probe": {"C": 0.1}}'`` (JSON)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--detector-args must be JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("--detector-args must be a JSON object of {detector: {arg: value}}")
    return value


def cmd_train(args) -> None:
    from .train import TrainConfig, train

    names = {"detectors": tuple(args.detectors.split(","))} if args.detectors else {}
    cfg = TrainConfig(**names, seeds=tuple(_int_list(args.seeds)),
                      batch_size=args.batch_size, num_workers=args.num_workers,
                      detector_args=_detector_args(args.detector_args), overwrite=args.overwrite)
    summary = train(args.features, args.labels, args.out, cfg)
    for name, runs in summary["detectors"].items():
        for seed, info in runs.items():
            print(f"  {name:<12} {seed:<8} {info.get('detail', '')} {info.get('skipped', '')}"
                  f" val AUROC {info.get('val_auroc', float('nan')):.3f}" if "val_auroc" in info else
                  f"  {name:<12} {seed:<8} {info.get('skipped', '')}")
    print(f"detectors -> {args.out}")


def cmd_evaluate(args) -> None:
    from rich.console import Console

    from .evaluate import EvalConfig, evaluate
    from .report import rich_table

    cfg = EvalConfig(detectors=tuple(args.detectors.split(",")), seed=args.seed, n_bootstrap=args.n_bootstrap,
                     test_features=args.test_features, test_labels=args.test_labels, figures=not args.no_figures)
    report = evaluate(args.features, args.labels, args.detectors_dir, args.out, cfg)
    Console(width=200).print(rich_table(report))
    print(f"report -> {args.out}/report.md, {args.out}/report.json" + (", roc.png" if report.get("figures") else ""))


def cmd_run(args) -> None:
    from .report import format_table
    from .pipeline import RunConfig, run

    cfg = RunConfig(out_dir=args.out, n_questions=args.n, questions=args.questions, seed=args.seed,
                    extract=_extract_config(args), label_rule=args.rule, seeds=tuple(_int_list(args.seeds)),
                    graphs=not args.no_graphs, **({"detectors": args.detectors.split(",")} if args.detectors else {}))
    report = run(cfg)
    print()
    print(format_table(report))
    print()
    for name, path in report["paths"].items():
        print(f"  {name:<10} {path}")
    print(f"  timings (s): {report['timings']}")


def cmd_model(args) -> None:
    from .models import resolve_model

    resolved = resolve_model(args.spec)
    print(json.dumps(resolved.__dict__, indent=2))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every stage as a subcommand."""
    parser = argparse.ArgumentParser(prog="truthtrace", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def q_args(p):
        p.add_argument("--questions", default=None,
                       help="'bundled' (default) or a JSONL/CSV/JSON/TriviaQA/NQ/SQuAD/TruthfulQA file")
        p.add_argument("--format", default="auto", help="file layout (auto-detected by default)")
        p.add_argument("--n", type=int, default=None, help="number of questions (stratified by category)")

    p = sub.add_parser("questions", help="write a questions.jsonl from the bundled set or a user file")
    q_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_questions)

    p = sub.add_parser("extract", help="run the model on questions and store its traces (resumable)")
    q_args(p)
    p.add_argument("--out", required=True, help="trace store directory")
    _add_model_args(p)
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("label", help="score answers against accepted aliases and write labels.csv")
    p.add_argument("store")
    p.add_argument("--out", required=True)
    p.add_argument("--rule", default="contains_or_exact", help="contains_or_exact, exact, contains, f1:0.5, rougeL:0.5")
    p.set_defaults(func=cmd_label)

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
    p.add_argument("--overwrite", action="store_true", help="refit detectors that are already saved")
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
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("run", help="the whole pipeline on one model, resumable")
    p.add_argument("--out", default="runs/default")
    p.add_argument("--questions", default=None)
    p.add_argument("--n", type=int, default=None, help="number of questions (default: all 2,312 bundled)")
    p.add_argument("--seeds", default="0", help="training seeds of the random detectors, e.g. 0-2")
    p.add_argument("--no-graphs", action="store_true", help="skip attention graphs and the gnn detectors")
    p.add_argument("--rule", default="contains_or_exact")
    p.add_argument("--detectors", default=None, help="comma-separated (default: every detector of the report)")
    _add_model_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("model", help="resolve a model spec (converting GGUF into the cache) and print where it is")
    p.add_argument("spec", nargs="?", default=DEFAULT_MODEL)
    p.set_defaults(func=cmd_model)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``truthtrace`` console script."""
    from .store import StoreError

    args = build_parser().parse_args(argv)
    try:
        rc = args.func(args)  # a command may return an exit code (validate: 1 when the store is damaged)
    except (ValueError, FileNotFoundError, StoreError) as exc:
        print(f"truthtrace {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
