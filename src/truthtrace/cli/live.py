"""``truthtrace ask``, ``truthtrace score`` and ``truthtrace cache``: live detection from the command line.

``ask`` answers one question (the answer coloured by risk, every detector's score) or a question file
(``--questions FILE --out answers.jsonl``: in batches, resumable). ``score`` scores answers that already
exist with one teacher-forced pass. ``cache stats|clear`` look after the result cache.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from functools import partial
from pathlib import Path

from rich.console import Console
from tqdm.auto import tqdm

from truthtrace.cli.args import add_placement_args, add_question_args, model_spec, placement_from, questions_from
from truthtrace.detectors.calibration import METHODS
from truthtrace.dtypes import COMPUTE_DTYPES
from truthtrace.fileio import check_output_apart, json_safe
from truthtrace.inference import Engine, EngineConfig
from truthtrace.inference.answers_io import append_results, read_answers, read_done
from truthtrace.inference.cache import ResultCache
from truthtrace.inference.config import CACHE_FILE, auto_dtype
from truthtrace.inference.render import TokenPrinter, print_details, print_result, results_table
from truthtrace.inference.results import error_result
from truthtrace.models.load import load_model
from truthtrace.models.resolve import cache_dir, pick_device
from truthtrace.training.compile import COMPILE_MODES


def engine_from(args) -> Engine:
    """The :class:`Engine` the detector, model, guard and cache options of ``args`` describe."""
    if args.abstain and args.guard is None:
        raise ValueError("--abstain needs --guard P (the risk at which to withhold the answer)")
    cache = None if args.no_cache else (args.cache or "default")
    spec, placement = model_spec(args), placement_from(args)
    model = tok = None
    if placement is not None:  # accelerate/bitsandbytes place the weights; the engine takes the model as is
        if spec is None:
            raise ValueError("--device-map/--load-in need --model (the model the detectors' traces came from)")
        dtype = auto_dtype(pick_device(args.device)) if args.dtype == "auto" else args.dtype
        model, tok = load_model(spec, dtype, args.device, placement=placement)
    return Engine(EngineConfig(detectors=tuple(args.detector), model=spec, dtype=args.dtype,
                               device=args.device, max_batch=args.batch_size, max_new_tokens=args.max_new_tokens,
                               calibration=args.calibration, primary=args.primary, guard=args.guard,
                               guard_action="abstain" if args.abstain else "flag", cache=cache, threads=args.threads,
                               compile=args.compile), model=model, tokenizer=tok)


def print_json(obj) -> None:
    """``obj`` as indented strict JSON on stdout."""
    print(json.dumps(json_safe(obj), indent=2, allow_nan=False))


def answer_batch(engine: Engine, questions: list) -> list[dict]:
    """Results of ``questions`` (with ``.id`` and ``.question``), in order."""
    return engine.answer([q.question for q in questions], ids=[q.id for q in questions])


def score_batch(engine: Engine, rows: list) -> list[dict]:
    """Results of answer ``rows`` (with ``.id``, ``.question`` and ``.answer``), in order."""
    return engine.score([(r.question, r.answer) for r in rows], ids=[r.id for r in rows])


def safe_run(run, items: list) -> list[dict]:
    """``run(items)``; if that raises, each item alone, one that still fails becoming an error result."""
    try:
        return run(items)
    except Exception as err:  # one bad request must never stop the others
        if len(items) == 1:
            return [error_result(items[0], f"could not run: {type(err).__name__}: {err}")]
        return [r for item in items for r in safe_run(run, [item])]


def serve_file(items: list, run, out: Path | None, batch_size: int, desc: str) -> tuple[list[dict], dict]:
    """Run ``items`` (with ``.id``) in batches, appending each batch to ``out``; skip ids already there.

    Returns ``(results of this run, summary)``.
    """
    done, dropped = read_done(out) if out else (set(), False)
    if dropped:
        print(f"{out}: dropped a truncated last line (an interrupted run); that request runs again", file=sys.stderr)
    todo = [it for it in items if it.id not in done]
    started, results = time.perf_counter(), []
    with tqdm(total=len(items), initial=len(items) - len(todo), desc=desc, unit="q", file=sys.stderr) as bar:
        for start in range(0, len(todo), batch_size):
            batch = safe_run(run, todo[start:start + batch_size])
            if out:
                append_results(out, batch)
            results += batch
            bar.update(len(batch))
    return results, summarize(results, len(items) - len(todo), time.perf_counter() - started)


def summarize(results: list[dict], skipped: int, wall_s: float) -> dict:
    """Counts of a file run: answered, skipped, errors, flagged, mean risk, wall time and peak memory."""
    risks = [r["risk"] for r in results if r.get("risk") is not None]
    return {"answered": sum(1 for r in results if not r.get("error")), "skipped": skipped,
            "errors": sum(1 for r in results if r.get("error")), "flagged": sum(1 for r in results if r.get("flagged")),
            "mean_risk": sum(risks) / len(risks) if risks else None, "wall_s": wall_s,
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def summary_line(s: dict, out: Path | None) -> str:
    """The last line of a file run."""
    risk = "-" if s["mean_risk"] is None else f"{s['mean_risk']:.3f}"
    return (f"answered {s['answered']}, skipped {s['skipped']} (already done), errors {s['errors']}, flagged "
            f"{s['flagged']}, mean risk {risk}, {s['wall_s']:.1f} s, peak memory {s['peak_memory_mb']:.0f} MB"
            + (f" -> {out}" if out else ""))


def ask_one(engine: Engine, question: str, as_json: bool) -> int:
    """Answer one question and print it: streamed token by token (rich), or the result as JSON.

    An answer the guard may withhold is not streamed: it is printed once the guard has seen all of it.
    """
    if as_json or engine.config.guard_action == "abstain":
        [result] = engine.answer([question])
        if as_json:
            print_json(result)
        elif not result.get("error"):
            print_result(Console(), result)
    else:
        result = stream_one(engine, question, Console())
    if result.get("error") and not as_json:
        raise ValueError(result["error"])
    return 0


def stream_one(engine: Engine, question: str, console: Console) -> dict:
    """Print the answer's tokens as they are generated, then the scores; the result."""
    printer = TokenPrinter(console, lambda ids: engine.tokenizer.decode(ids, skip_special_tokens=True),
                           engine.token_detector)
    for event in engine.stream(question):
        if event["type"] == "token":
            printer.token(event)
            continue
        result = event["result"]
        if not result.get("error"):
            console.print()
            print_details(console, result)
        return result
    raise RuntimeError("the engine's stream ended without a result")


def cmd_ask(args) -> int:
    """``truthtrace ask``: answer one question or a question file and score every answer."""
    if args.question is not None and args.questions is not None:
        raise ValueError("give either a question or --questions FILE, not both")
    if args.question is None and args.questions is None:
        raise ValueError('give a question (truthtrace ask --detector DIR "Who wrote Hamlet?") or --questions FILE')
    if args.questions is not None and args.out is None:
        raise ValueError("--questions needs --out FILE.jsonl (the answers are appended there; a rerun resumes)")
    if args.out:
        check_output_apart(args.out, {"--questions": args.questions if args.questions != "bundled" else None})
    questions = questions_from(args, require_answers=False) if args.questions is not None else None
    engine = engine_from(args)
    try:
        if questions is None:
            return ask_one(engine, args.question, args.json)
        _, summary = serve_file(questions, partial(answer_batch, engine), Path(args.out), args.batch_size, "ask")
    finally:
        engine.close()
    print(summary_line(summary, Path(args.out)))
    return 0


def cmd_score(args) -> int:
    """``truthtrace score``: score existing question + answer pairs (one teacher-forced pass each)."""
    out = Path(args.out) if args.out else None
    if out:
        check_output_apart(out, {"--answers": args.answers})
    rows = read_answers(args.answers)
    engine = engine_from(args)
    try:
        results, summary = serve_file(rows, partial(score_batch, engine), out, args.batch_size, "score")
    finally:
        engine.close()
    if args.json and not out:
        print_json(results)
        return 0
    if not out:
        Console(width=200).print(results_table(results))
    print(summary_line(summary, out))
    return 0


def cache_path(args) -> Path:
    """``--cache PATH``, else the engine's default cache file (``$TRUTHTRACE_CACHE/results.sqlite``)."""
    return Path(args.cache) if args.cache else cache_dir() / CACHE_FILE


def cmd_cache(args) -> int:
    """``truthtrace cache stats|clear``: the result cache's statistics, or delete every row."""
    path = cache_path(args)
    if not path.exists():  # never create a cache just to look at it
        stats, cleared = dict(ResultCache(None).stats(), path=str(path)), 0
    else:
        cache = ResultCache(path)
        try:
            cleared = cache.clear() if args.action == "clear" else 0
            stats = cache.stats()
        finally:
            cache.close()
    if args.action == "clear":
        print(json.dumps({"path": str(path), "deleted": cleared}) if args.json else
              f"deleted {cleared} rows from {path}")
    elif args.json:
        print_json(stats)
    else:
        for key in ("path", "rows", "bytes", "max_bytes", "hits", "misses", "evictions", "corrupt"):
            print(f"  {key:<10} {stats.get(key)}")
    return 0


def add_engine_args(p) -> None:
    """The detector, model, guard, batching and cache options of ``ask`` and ``score``."""
    p.add_argument("--detector", action="append", required=True, metavar="DIR",
                   help="a saved detector or a train output folder (all its detectors); repeatable")
    p.add_argument("--model", default=None, help="model spec (default: the model the detectors' traces came from)")
    add_placement_args(p)
    p.add_argument("--dtype", default="auto", choices=("auto", *COMPUTE_DTYPES),
                   help="compute dtype; auto: bfloat16 where it is fast, else float32")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES,
                   help="torch.compile the model's forward (default, reduce-overhead, max-autotune; eager with a "
                        "warning where it fails); give the question first or write --compile=MODE")
    p.add_argument("--batch-size", type=int, default=8, help="requests per batch")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: as the detectors' traces were made")
    p.add_argument("--calibration", default="platt", choices=METHODS)
    p.add_argument("--primary", default=None, help="detector behind the risk (default: best calibrated one)")
    p.add_argument("--guard", type=float, default=None, metavar="P", help="flag answers whose risk reaches P")
    p.add_argument("--abstain", action="store_true", help="with --guard: withhold such answers instead")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache", default=None, metavar="PATH",
                       help="SQLite result cache (default: $TRUTHTRACE_CACHE/results.sqlite)")
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")
    p.add_argument("--json", action="store_true", help="print the result(s) as JSON")


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    p = sub.add_parser("ask", help="answer a question (or a file) and score the answer with trained detectors")
    p.add_argument("question", nargs="?", default=None, help="the question (or use --questions FILE)")
    add_question_args(p)
    p.add_argument("--out", default=None, help="with --questions: JSONL file results are appended to (resumable)")
    add_engine_args(p)
    p.set_defaults(func=cmd_ask, seed=0)

    p = sub.add_parser("score", help="score existing question + answer pairs (JSONL, CSV or JSON) without generating")
    p.add_argument("--answers", required=True, help="file with 'question' and 'answer' (or generation, response, "
                   "output) fields, optional 'id'")
    p.add_argument("--out", default=None, help="JSONL file results are appended to (resumable)")
    add_engine_args(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("cache", help="statistics of the live result cache, or clear it")
    p.add_argument("action", choices=("stats", "clear"))
    p.add_argument("--cache", default=None, metavar="PATH", help="default: $TRUTHTRACE_CACHE/results.sqlite")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cache)
