"""CLI subcommands: validate, inspect, import.

``validate`` exits 1 when the store (or its labels) has an error, 0 otherwise (warnings
alone pass); like every command, bad arguments give exit code 2.
"""

from __future__ import annotations

import json
import sys

from truthtrace.dtypes import STORAGE_DTYPES
from truthtrace.fileio import json_safe
from truthtrace.machine import peak_memory, peak_memory_line
from truthtrace.traces.importing.run import ImportConfig, import_traces
from truthtrace.traces.inspect import inspect_store, inspect_trace, render_overview, render_trace
from truthtrace.traces.validate.stage import ValidateConfig, validate_store

MAX_SHOWN = 40  # problems listed in the terminal; --json has them all


def _console():
    from rich.console import Console

    return Console(width=160)


def render_validation(report) -> list:
    """``rich`` renderables for a :class:`~truthtrace.traces.validate.stage.ValidationReport`: checks, then problems."""
    from rich.table import Table

    summary = Table(title=f"validate {report.path}")
    for col in ("check", "status", "errors", "warnings"):
        summary.add_column(col, justify="left" if col in ("check", "status") else "right")
    for check, n in report.by_check().items():
        status = "[red]FAIL[/]" if n["error"] else "[yellow]warn[/]" if n["warning"] else "[green]ok[/]"
        summary.add_row(check, status, str(n["error"]), str(n["warning"]))
    out = [summary]
    if report.problems:
        table = Table(title=f"problems ({len(report.problems)})")
        for col in ("severity", "check", "shard", "trace", "key", "message"):
            table.add_column(col, overflow="fold")
        for p in report.problems[:MAX_SHOWN]:
            table.add_row(p.severity, p.check, p.shard or "", p.trace_id or "", p.key or "", p.message)
        if len(report.problems) > MAX_SHOWN:
            table.caption = f"... and {len(report.problems) - MAX_SHOWN} more (use --json for all)"
        out.append(table)
    c = report.counts
    verdict = "[green]OK[/]" if report.ok else "[red]FAILED[/]"
    out.append(f"{verdict}: {len(report.errors)} errors, {len(report.warnings)} warnings; {c['traces']} traces, "
               f"{c['tensors']} tensors in {c['shards']} shards, {c['bytes_read'] / 2**20:.1f} MB read "
               f"in {report.seconds:.1f} s")
    return out


def cmd_validate(args) -> int:
    """Run the validate stage and print its report; returns the exit code (1 if any error, else 0)."""
    config = ValidateConfig(attn_tolerance=args.attn_tolerance, causal=not args.not_causal,
                            check_values=not args.quick, progress=not args.json)
    report = validate_store(args.store, labels=args.labels, config=config)
    if args.json:
        print(json.dumps({**report.to_dict(), **peak_memory()}, indent=2))
    else:
        console = _console()
        for item in render_validation(report):
            console.print(item)
        print(peak_memory_line())
    return 0 if report.ok else 1  # cli.main() passes an int return on as the exit code


def cmd_inspect(args) -> None:
    """Print a store overview, or one trace token by token (``--trace``)."""
    if args.trace is not None:
        info = inspect_trace(args.store, args.trace, labels=args.labels, decode_tokens=not args.no_decode)
        render = render_trace
    else:
        info = inspect_store(args.store, labels=args.labels, sample=args.sample, seed=args.seed)
        render = render_overview
    if args.json:
        print(json.dumps(json_safe(info), indent=2))
        return
    console = _console()
    for item in render(info):
        console.print(item)


def cmd_import(args) -> int:
    """``truthtrace import``: other tools' trace files into a store (resumable).

    Returns 1 when any file was refused or unreadable (the good ones are stored all the same), else 0.
    """
    config = ImportConfig(model=args.model, trust_pickle=args.trust_pickle, storage_dtype=args.storage_dtype,
                          labels_csv=args.labels_out)
    summary = import_traces(args.sources, args.out, config)
    failed = summary["failed_files"]
    if args.json:
        print(json.dumps({**summary, **peak_memory()}, indent=2))
        return 1 if failed else 0
    print(f"read {summary['files_read']}/{summary['files']} files, {summary['records']} records: "
          f"{summary['imported']} imported, {summary['already_stored']} already stored, "
          f"{len(summary['skipped'])} skipped -> {summary['store']}; {peak_memory_line()}")
    for f in summary["failed_files"]:
        print(f"  unreadable {f['file']}: {f['reason']}")
    for s in summary["skipped"][:20]:
        print(f"  skipped {s['file']} record {s['index']} (id {s['id']}): {s['reason']}")
    if len(summary["skipped"]) > 20:
        print(f"  ... and {len(summary['skipped']) - 20} more skipped (use --json for all)")
    if "labels" in summary:
        print(f"labels: {summary['n_labels']} rows -> {summary['labels']}")
    if "labels_error" in summary:
        print(f"labels: {summary['labels_error']}")
    if failed:
        print(f"truthtrace import: {len(failed)} of {summary['files']} files refused or unreadable "
              "(listed above); the others were imported", file=sys.stderr)
    return 1 if failed else 0


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    p = sub.add_parser("validate", help="check every shard, trace and tensor of a store (exit 1 if anything is wrong)")
    p.add_argument("store")
    p.add_argument("--labels", default=None, help="labels.csv that must hold every trace id exactly once")
    p.add_argument("--json", action="store_true", help="print a machine-readable report")
    p.add_argument("--attn-tolerance", type=float, default=None,
                   help="allowed |attention row sum - 1| (default: 4 eps of the stored/model dtype)")
    p.add_argument("--not-causal", action="store_true", help="allow attention above the diagonal")
    p.add_argument("--quick", action="store_true", help="checksums, shapes and token counts only (no decoding)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("inspect", help="overview of a trace store, or one trace with --trace")
    p.add_argument("store")
    p.add_argument("--trace", default=None, help="show this trace: texts, label, answer tokens and log-probs")
    p.add_argument("--labels", default=None, help="labels.csv (default: labels.csv beside the store)")
    p.add_argument("--sample", type=int, default=64, help="traces decoded for per-layer statistics")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-decode", action="store_true", help="show token ids without loading the tokenizer")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("import", help="convert *.pkl / *.pkl.gz / *.pt trace files into a trace store (resumable)")
    p.add_argument("sources", nargs="+", help="files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="trace store directory")
    p.add_argument("--model", default="unknown", help="model name recorded in the schema")
    p.add_argument("--trust-pickle", action="store_true", help="load pickles that may run code (trusted files only)")
    p.add_argument("--storage-dtype", default="float16", choices=STORAGE_DTYPES)
    p.add_argument("--labels-out", default=None, help="labels CSV path (default: labels.csv beside the store)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import)
