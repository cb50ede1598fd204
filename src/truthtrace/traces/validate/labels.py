"""The ``labels`` check of ``truthtrace validate``: a labels CSV covers every trace of the store exactly once.

The CSV is read by :func:`truthtrace.labels.io.label_lines`, the one reader every stage uses, so
validate passes only what ``preprocess`` and ``train`` accept.
"""

from __future__ import annotations

import csv

from truthtrace.labels.io import label_lines
from truthtrace.traces.validate.report import ValidationReport


def check_labels(path, trace_ids: list[str], report: ValidationReport) -> None:
    """Labels CSV covers every trace id exactly once; duplicates, orphans and gaps become problems.

    Args:
        path: a labels CSV (``trace_id`` and ``hallucinated`` columns, read by ``truthtrace.labels.io``).
        trace_ids: the store's ids.
        report: where problems are added (check ``labels``).
    """
    add = report.add
    try:
        lines = _label_lines(path, add)
    except (OSError, UnicodeDecodeError, csv.Error) as err:  # before ValueError: a UnicodeDecodeError is one
        add("labels", "error", f"{path}: cannot read ({err})")
        return
    except ValueError as err:  # a header without the columns
        add("labels", "error", str(err))
        return
    known = set(trace_ids)
    for tid, where in lines.items():
        if len(where) > 1:
            add("labels", "error", f"{path}: trace {tid!r} is labelled {len(where)} times (lines {where})",
                trace_id=tid)
        if tid not in known:
            add("labels", "error", f"{path}: line {where[0]}: orphan label, trace {tid!r} is not in the store",
                trace_id=tid)
    for tid in trace_ids:
        if tid not in lines:
            add("labels", "error", f"{path}: trace {tid!r} has no label", trace_id=tid)


def _label_lines(path, add) -> dict[str, list[int]]:
    """``{trace id: [CSV line numbers]}``, reporting every label that is not 0 or 1."""
    lines: dict[str, list[int]] = {}
    for line, tid, value in label_lines(path):
        lines.setdefault(tid, []).append(line)
        if value not in ("0", "1"):
            add("labels", "error", f"{path}: line {line}: label {value!r} is not 0 or 1", trace_id=tid)
    return lines
