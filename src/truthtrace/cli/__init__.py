"""The ``truthtrace`` command line: one subcommand per stage, each a thin shell over its Python API.

Each module of this package registers one group of subcommands (``register(sub)``):
:mod:`.traces` (questions, extract, label, model), :mod:`.look` (validate, inspect, import),
:mod:`.viz` (visualize), :mod:`.features` (preprocess), :mod:`.detect` (train, evaluate, run),
:mod:`.compress` (compress), :mod:`.compare` (compare-models), :mod:`.live` (ask, score, cache) and
:mod:`.demo` (demo), :mod:`.profile` (profile), :mod:`.sample` (sample), :mod:`.stores` (merge-stores);
shared options are in :mod:`.args`.

Every failure ends in one line on stderr, ``truthtrace <command>: error: <file>: <what is wrong; what to do>``,
and exit code 2 (``validate`` exits 1 for findings); ``--debug`` prints the traceback instead, and an
interrupt (Ctrl-C) exits 130. See ``docs/ERRORS.md``.
"""

from __future__ import annotations

import os

# Before torch starts OpenMP: idle threads sleep instead of spinning. On 2 shared cores a
# busy neighbour process otherwise collapses torch (measured 1.27 vs 0.15 questions/s).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import errno  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

from truthtrace.cli import (  # noqa: E402
    compare, compress, demo, detect, diffuse, features, live, look, profile, sample, stores, traces, viz)
from truthtrace.store import StoreError  # noqa: E402

COMMAND_GROUPS = (traces, sample, detect, look, viz, features, compress, compare, live, demo, profile, diffuse,
                  stores)
DEBUG_HELP = "on an error, print the full traceback instead of one line"
EXIT_ERROR, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 130, 141  # 141 = 128 + SIGPIPE, as a shell reports it
# what to do about an OSError, by errno (after the system's own words, e.g. "No space left on device")
OS_HINTS = {
    errno.ENOSPC: "free some disk space or write somewhere else",
    errno.EDQUOT: "free some space within your disk quota or write somewhere else",
    errno.EACCES: "check the permissions or choose another path",
    errno.EPERM: "check the permissions or choose another path",
    errno.EROFS: "write somewhere else",
    errno.ENOENT: "check the path",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EEXIST: "something is in the way: move it or choose another path",
}
_TEMP_NAME = re.compile(r"^\.(.+)\.[A-Za-z0-9_]+\.tmp$")  # an atomic write's temp file: name its target


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every stage as a subcommand; ``--debug`` goes before or after the subcommand."""
    parser = argparse.ArgumentParser(prog="truthtrace", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    for command in {id(p): p for p in sub.choices.values()}.values():
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def one_line(message: str) -> str:
    """``message`` on one line: a heading ending in ":" keeps its colon, further lines are joined by "; "."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return lines[0] + " " + "; ".join(lines[1:])
    return "; ".join(lines)


def os_error_line(err: OSError) -> str:
    """``<file>: <what happened>; <what to do>`` for an OSError that names a file, else its message."""
    if err.filename is None:
        return one_line(str(err))
    path = Path(str(err.filename))
    temp = _TEMP_NAME.match(path.name)
    where = str(path.with_name(temp.group(1)) if temp else path)
    if err.filename2 is not None:
        where += f" -> {err.filename2}"
    return f"{where}: {err.strerror or err}; {OS_HINTS.get(err.errno, 'check the path and try again')}"


def error_line(exc: BaseException) -> str:
    """The one line ``main`` prints for ``exc`` (after ``truthtrace <command>: ``)."""
    if isinstance(exc, (ValueError, StoreError)):
        return f"error: {one_line(str(exc))}"
    if isinstance(exc, OSError):
        return f"error: {os_error_line(exc)}"
    if isinstance(exc, ImportError):  # an optional dependency: its message names the extra to install
        return f"error: {one_line(str(exc))}"
    if isinstance(exc, MemoryError):
        return "error: out of memory; try a smaller --batch-size or fewer questions, layers or detectors"
    return (f"internal error: {type(exc).__name__}: {one_line(str(exc))} "
            "(run with --debug for the traceback)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``truthtrace`` console script: the command's exit code, 2 on an error, 130 on Ctrl-C."""
    args = build_parser().parse_args(argv)
    try:
        rc = args.func(args)  # a command may return an exit code (validate: 1 when the store is damaged)
    except BrokenPipeError:  # the reader went away (``truthtrace ... | head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print(f"truthtrace {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
            return EXIT_ERROR
        print(f"truthtrace {args.command}: {error_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
