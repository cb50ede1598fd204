"""``truthtrace demo``: the web demo (extra ``ui``)."""

from __future__ import annotations

import argparse

from truthtrace.demo import build_app, example_questions, launch
from truthtrace.demo.app import gradio
from truthtrace.dtypes import COMPUTE_DTYPES
from truthtrace.inference import Engine, EngineConfig
from truthtrace.inference.config import GUARD_ACTIONS


def engine_config(args) -> EngineConfig:
    """The :class:`EngineConfig` of parsed ``truthtrace demo`` arguments."""
    cache = None if args.no_cache else (args.cache or "default")
    return EngineConfig(detectors=args.detector, model=args.model, dtype=args.dtype, device=args.device,
                        max_new_tokens=args.max_new_tokens, primary=args.primary, guard=args.guard,
                        guard_action=args.guard_action, cache=cache, threads=args.threads)


def cmd_demo(args) -> None:
    """Load the engine and serve the demo page until Ctrl-C."""
    try:
        gradio()  # before the model loads: a missing extra is said at once
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    engine = Engine(engine_config(args))
    try:
        app = build_app(engine, example_questions(args.examples) if args.examples else [])
        print(f"truthtrace demo: serving http://{args.host}:{args.port} (Ctrl-C stops)", flush=True)
        launch(app, host=args.host, port=args.port, block=True, quiet=True)
    finally:
        engine.close()


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    p = sub.add_parser("demo", help="web demo: live answers coloured by risk, every detector's score (extra ui)",
                       description="Serve a local web page (Gradio) that answers questions with the model and "
                                   "shows the detectors' live risk. Offline; no share link.")
    p.add_argument("--detector", action="append", required=True, metavar="DIR",
                   help="a saved detector or a train output folder (repeat for several)")
    p.add_argument("--model", default=None, help="model spec (default: the model the detectors' traces came from)")
    p.add_argument("--dtype", default="auto", choices=("auto",) + tuple(COMPUTE_DTYPES),
                   help="compute dtype (auto: bfloat16 where it is fast, else float32)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    p.add_argument("--max-new-tokens", type=positive_int, default=None,
                   help="default: as the detectors' traces were generated")
    p.add_argument("--primary", default=None, help="the detector behind the meter (default: best calibrated)")
    p.add_argument("--guard", type=float, default=None, help="flag answers whose risk reaches this probability")
    p.add_argument("--guard-action", default="flag", choices=GUARD_ACTIONS)
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache", default=None, metavar="PATH", help="result cache file (default: the user cache)")
    cache.add_argument("--no-cache", action="store_true", help="answer every question afresh")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--examples", type=int, default=6, help="bundled example questions shown (0: none)")
    p.set_defaults(func=cmd_demo)
