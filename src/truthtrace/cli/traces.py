"""CLI subcommands: questions, extract, label, model (the stages up to labelled traces)."""

from __future__ import annotations

import json
from pathlib import Path

from truthtrace import distributed
from truthtrace.cli.args import (
    add_feature_args,
    add_model_args,
    add_question_args,
    add_sample_args,
    extract_config,
    feature_config,
    placement_from,
    questions_from,
)
from truthtrace.data import save_questions
from truthtrace.features.direct import DirectConfig, extract_features
from truthtrace.features.samples import SAMPLES_DIR
from truthtrace.features.sharded import sharded_extract_features
from truthtrace.labels.score import DEFAULT_RULE, LABEL_RULE_HELP, LabelConfig, label_store
from truthtrace.machine import peak_memory
from truthtrace.models import DEFAULT_MODEL, load_model, resolve_model
from truthtrace.traces.extract import extract
from truthtrace.traces.sampling import SampleConfig, greedy_from_traces, sample_questions
from truthtrace.traces.sharded import sharded_extract


def cmd_questions(args) -> None:
    """``truthtrace questions``: write a questions.jsonl and count it by category."""
    qs = questions_from(args)
    save_questions(qs, args.out)
    cats: dict[str, int] = {}
    for q in qs:
        cats[q.category] = cats.get(q.category, 0) + 1
    print(f"wrote {len(qs)} questions to {args.out}: " + ", ".join(f"{c} {n}" for c, n in sorted(cats.items())))


def cmd_extract(args) -> None:
    """``truthtrace extract``: run the model on the questions and store its traces.

    Questions with too long a prompt are skipped (warned about, listed under "refused" in the printed summary).
    With ``--features DIR`` the feature store is written during the forward pass and ``--out`` keeps full traces of
    the first ``--trace-sample`` questions only.
    """
    if args.samples and distributed.launched():
        raise ValueError("extract --samples does not shard over torchrun ranks yet; run truthtrace sample per rank "
                         "store, or extract in one process")
    if args.features:
        direct = DirectConfig(extract_config(args), feature_config(args), trace_sample=args.trace_sample)
        questions = questions_from(args)
        if distributed.launched():  # rank k: F.rank-k and OUT/rank-k/; rank 0 fits the one PCA and writes F
            print(json.dumps(sharded_extract_features(questions, args.features, args.out, direct), indent=2))
            return
        print(json.dumps(extract_features(questions, args.features, args.out, direct), indent=2))
        sample_after(args, questions, args.features)
        return
    config, placement = extract_config(args), placement_from(args)
    model = tok = None
    if placement is not None:  # --device-map / --load-in: accelerate or bitsandbytes place the weights
        model, tok = load_model(config.model, config.model_dtype, config.device, placement=placement)
    if distributed.launched():  # under torchrun: this rank's slice into OUT/rank-k/, rank 0 merges
        print(json.dumps(sharded_extract(questions_from(args), args.out, config, model, tok), indent=2))
        return
    questions = questions_from(args)
    summary = extract(questions, args.out, config, model=model, tokenizer=tok)
    summary.pop("config")
    print(json.dumps({**summary, **peak_memory()}, indent=2))
    sample_after(args, questions, args.out, model, tok)


def sample_after(args, questions, answers_store, model=None, tokenizer=None) -> None:
    """``extract --samples K``: K sampled answers per question into ``--samples-out`` (default: ``samples/`` beside
    the store, where the feature dataset looks), judged against the greedy answers just stored."""
    if not args.samples:
        return
    out = args.samples_out or Path(answers_store).resolve().parent / SAMPLES_DIR
    config = SampleConfig.from_options(extract_config(args), samples=args.samples, temperature=args.sample_temperature,
                                       top_p=args.sample_top_p, capture=args.capture, overwrite=args.overwrite)
    summary = sample_questions(questions, out, config, model, tokenizer, greedy=greedy_from_traces(answers_store))
    print(json.dumps({"samples": summary, **peak_memory()}, indent=2))


def cmd_label(args) -> None:
    """``truthtrace label``: score every answer and write labels.csv."""
    summary = label_store(args.store, args.out, LabelConfig(rule=args.rule))
    print(f"{summary['correct']}/{summary['n']} correct ({summary['rate_correct']:.1%}), "
          f"{summary['hallucinated']} hallucinated -> {args.out}")


def cmd_model(args) -> None:
    """``truthtrace model``: resolve a model spec (converting GGUF once) and print where it is."""
    resolved = resolve_model(args.spec)
    print(json.dumps(resolved.__dict__, indent=2))


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    p = sub.add_parser("questions", help="write a questions.jsonl from the bundled set or a user file")
    add_question_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_questions)

    p = sub.add_parser("extract", help="run the model on questions and store its traces (resumable)")
    add_question_args(p)
    p.add_argument("--out", required=True, help="trace store directory (with --features: the sampled full traces "
                                               "and the extraction settings)")
    add_model_args(p)
    f = p.add_argument_group("features in the forward pass")
    f.add_argument("--features", default=None, metavar="OUT_DIR",
                   help="write a feature store (as preprocess writes it) while the model runs, without storing "
                        "traces; then label it directly: truthtrace label OUT_DIR")
    f.add_argument("--trace-sample", type=int, default=0, metavar="N",
                   help="with --features: also store full traces of the first N questions in --out, for visualize")
    add_feature_args(p)
    add_sample_args(p)
    p.add_argument("--samples-out", default=None, metavar="DIR",
                   help="with --samples: the samples store (default: samples/ beside --features, else beside --out)")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("label", help="score answers against accepted aliases and write labels.csv")
    p.add_argument("store")
    p.add_argument("--out", required=True)
    p.add_argument("--rule", default=DEFAULT_RULE, help=LABEL_RULE_HELP)
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("model", help="resolve a model spec (converting GGUF into the cache) and print where it is")
    p.add_argument("spec", nargs="?", default=DEFAULT_MODEL)
    p.set_defaults(func=cmd_model)
