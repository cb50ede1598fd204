"""CLI subcommand ``sample``: K sampled answers per question for the sampling baselines (resumable).

    truthtrace sample --model smollm2-135m-instruct --questions bundled --n 400 --out runs/a/samples --samples 10
    truthtrace sample ... --traces runs/a/traces      # judge the answers the trace store (and its labels) hold
"""

from __future__ import annotations

import json

from truthtrace.cli.args import add_question_args, questions_from
from truthtrace.dtypes import COMPUTE_DTYPES
from truthtrace.machine import peak_memory
from truthtrace.models import DEFAULT_MODEL
from truthtrace.traces.capture import CAPTURE_MODES, DEFAULT_TEMPLATE
from truthtrace.traces.sampling import SampleConfig, greedy_from_traces, sample_questions


def sample_config(args) -> SampleConfig:
    """The :class:`SampleConfig` of parsed ``sample`` arguments."""
    return SampleConfig(
        model=args.model, model_dtype=args.model_dtype, device=args.device, threads=args.threads,
        prompt_template=args.template or DEFAULT_TEMPLATE, system_prompt=args.system_prompt,
        use_chat_template=not args.no_chat_template, max_new_tokens=args.max_new_tokens,
        max_prompt_tokens=args.max_prompt_tokens, samples=args.samples, temperature=args.temperature,
        top_p=args.top_p, seed=args.seed, batch_size=args.batch_size, sample_batch=args.sample_batch,
        embedding_layer=args.embedding_layer,
        nli_model=args.nli_model, p_true=not args.no_p_true, capture=args.capture, overwrite=args.overwrite)


def cmd_sample(args) -> None:
    """``truthtrace sample``: sample answers per question and store what the sampling baselines read."""
    config = sample_config(args)
    greedy = greedy_from_traces(args.traces) if args.traces else None
    summary = sample_questions(questions_from(args), args.out, config, greedy=greedy)
    summary.pop("config")
    print(json.dumps({**summary, **peak_memory()}, indent=2))


def register(sub) -> None:
    """Add ``sample`` to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    p = sub.add_parser("sample", help="sample K answers per question for semantic entropy, EigenScore, "
                                      "SelfCheckGPT, P(True) and SEP (resumable)")
    add_question_args(p)
    p.add_argument("--out", required=True, help="samples store directory (put it beside the feature store: "
                                                "RUN/samples for RUN/features)")
    g = p.add_argument_group("model and prompt (as for extract)")
    g.add_argument("--model", default=DEFAULT_MODEL, help="embedded name, HF directory, .gguf file or hub id")
    g.add_argument("--model-dtype", default="float32", choices=COMPUTE_DTYPES)
    g.add_argument("--device", default="auto")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--batch-size", type=int, default=16, help="questions per greedy batch")
    g.add_argument("--max-new-tokens", type=int, default=24)
    g.add_argument("--max-prompt-tokens", type=int, default=None)
    g.add_argument("--template", default=None, help="prompt template containing {question}")
    g.add_argument("--system-prompt", default=None)
    g.add_argument("--no-chat-template", action="store_true")
    g.add_argument("--seed", type=int, default=0, help="base seed; each question samples with a hash of it and "
                                                       "its id, so a resumed run gives the same samples")
    s = p.add_argument_group("sampling")
    s.add_argument("--samples", type=int, default=10, help="sampled answers per question (K)")
    s.add_argument("--sample-batch", type=int, default=4,
                   help="questions sampled in one generate call (K rows each); samples do not depend on it")
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--top-p", type=float, default=1.0)
    s.add_argument("--embedding-layer", type=int, default=None,
                   help="hidden-state layer of the EigenScore embedding (default: the middle one)")
    s.add_argument("--nli-model", default=None, metavar="DIR",
                   help="local NLI model folder: cluster answers by bidirectional entailment (default: offline "
                        "normalized-answer equivalence and containment)")
    s.add_argument("--capture", default="forward", choices=CAPTURE_MODES,
                   help="forward: the samples' tensors from one exact pass after generating; generate: from the "
                        "generation steps (faster, equal within round-off)")
    s.add_argument("--no-p-true", action="store_true", help="do not ask the model whether its answer is true")
    s.add_argument("--traces", default=None, metavar="STORE",
                   help="judge the greedy answers of this trace store (the labelled ones) instead of generating")
    s.add_argument("--overwrite", action="store_true", help="delete an existing samples store instead of resuming")
    p.set_defaults(func=cmd_sample)
