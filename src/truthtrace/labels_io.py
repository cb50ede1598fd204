"""Read and write ``labels.csv``: one row per trace with its match scores and verdict.

Columns are :data:`COLUMNS`; ``hallucinated`` is 1 - ``correct``. Writes are atomic.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from truthtrace.fileio import write_text_atomic

COLUMNS = ("trace_id", "question_id", "category", "exact_match", "contains", "f1",
           "rougeL", "correct", "hallucinated", "generation", "answers")
_INT_COLS = ("exact_match", "contains", "correct", "hallucinated")
_FLOAT_COLS = ("f1", "rougeL")


def write_labels(rows: Iterable[dict], path: str | Path) -> None:
    """Write label rows to ``path`` as CSV (header :data:`COLUMNS`), atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, buf.getvalue())


def _parse_row(row: dict, where: str) -> dict:
    """Convert the numeric columns of one CSV row; ValueError names ``where`` and the column."""
    out = dict(row)
    for col, cast in [(c, int) for c in _INT_COLS] + [(c, float) for c in _FLOAT_COLS]:
        try:
            out[col] = cast(row[col])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: column {col!r} has bad value {row[col]!r}") from None
    if out["correct"] not in (0, 1) or out["hallucinated"] != 1 - out["correct"]:
        raise ValueError(f"{where}: columns 'correct'/'hallucinated' must be 0/1 and opposite")
    return out


def read_labels(path: str | Path) -> dict[str, dict]:
    """Read a ``labels.csv`` into ``{trace_id: row}`` with numeric columns converted.

    Raises:
        ValueError: naming the file and line for a missing column, a short row, a bad
            number or a duplicate trace id.
    """
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: line 1: missing columns {missing}")
        out: dict[str, dict] = {}
        for row in reader:
            where = f"{path}: line {reader.line_num}"
            if None in row or any(v is None for v in row.values()):
                raise ValueError(f"{where}: row has {'too many' if None in row else 'too few'} fields")
            if row["trace_id"] in out:
                raise ValueError(f"{where}: duplicate trace_id {row['trace_id']!r}")
            out[row["trace_id"]] = _parse_row(row, where)
    return out


def read_label_csv(path: str | Path) -> dict[str, int]:
    """Return ``{trace_id: hallucinated}`` from a labels CSV; blank labels are skipped.

    Raises:
        ValueError: naming the file and field for a missing column, a duplicate
            ``trace_id`` or a ``hallucinated`` value other than 0/1.
    """
    out: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for col in ("trace_id", "hallucinated"):
            if col not in (reader.fieldnames or []):
                raise ValueError(f"{path}: field {col!r} missing from the header")
        for line, row in enumerate(reader, start=2):
            tid, value = row["trace_id"], (row["hallucinated"] or "").strip()
            if value == "":
                continue
            if value not in ("0", "1"):
                raise ValueError(f"{path}:{line}: field 'hallucinated' must be 0 or 1, got {value!r}")
            if tid in out:
                raise ValueError(f"{path}:{line}: field 'trace_id' {tid!r} is duplicated")
            out[tid] = int(value)
    return out
