"""The ``truthtrace`` command line: one subcommand per stage, each a thin shell over its Python API.

Each module of this package registers one group of subcommands (``register(sub)``):
:mod:`.traces` (questions, extract, label, model), :mod:`.look` (validate, inspect, import),
:mod:`.viz` (visualize), :mod:`.features` (preprocess), :mod:`.detect` (train, evaluate, run),
:mod:`.compress` (compress) and :mod:`.compare` (compare-models); shared options are in :mod:`.args`.
"""

from __future__ import annotations

import os

# Before torch starts OpenMP: idle threads sleep instead of spinning. On 2 shared cores a
# busy neighbour process otherwise collapses torch (measured 1.27 vs 0.15 questions/s).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402

from truthtrace.cli import compare, compress, detect, features, look, traces, viz  # noqa: E402
from truthtrace.store import StoreError  # noqa: E402

COMMAND_GROUPS = (traces, detect, look, viz, features, compress, compare)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every stage as a subcommand."""
    parser = argparse.ArgumentParser(prog="truthtrace", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``truthtrace`` console script."""
    args = build_parser().parse_args(argv)
    try:
        rc = args.func(args)  # a command may return an exit code (validate: 1 when the store is damaged)
    except (ValueError, FileNotFoundError, StoreError) as exc:
        print(f"truthtrace {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return rc if isinstance(rc, int) else 0




if __name__ == "__main__":
    sys.exit(main())
