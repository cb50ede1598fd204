"""The one reader and writer of ``labels.csv``: one row per trace with its match scores and verdict.

Columns are :data:`COLUMNS` (``docs/FORMAT.md``); ``hallucinated`` is 1 - ``correct``. Writes are
atomic. Every stage that reads labels comes here: :func:`read_labels` for whole rows (the label
stage's own files), :func:`read_label_csv` for ``{trace_id: hallucinated}`` (any CSV with those two
columns), :func:`label_lines` for a check that reports every problem instead of stopping at the
first (``truthtrace validate``), and :func:`labels_beside` for the file that goes with a store.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from truthtrace.data.textio import check_input_file, text_lines
from truthtrace.fileio import write_text_atomic

LABELS_FILE = "labels.csv"
LABEL_COLUMNS = ("trace_id", "hallucinated")  # what a labels CSV from elsewhere must have
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
    reader = _csv_reader(path)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{path}: line 1: missing columns {missing}")
    out: dict[str, dict] = {}
    for row in _rows(reader, path):
        where = f"{path}: line {reader.line_num}"
        if None in row or any(v is None for v in row.values()):
            raise ValueError(f"{where}: row has {'too many' if None in row else 'too few'} fields")
        if row["trace_id"] in out:
            raise ValueError(f"{where}: duplicate trace_id {row['trace_id']!r}")
        out[row["trace_id"]] = _parse_row(row, where)
    return out


def _csv_reader(path: str | Path) -> csv.DictReader:
    """A DictReader over the UTF-8 file ``path`` (ValueError naming file, line and column of a non-UTF-8 byte)."""
    check_input_file(Path(path), "labels CSV")
    reader = csv.DictReader(text_lines(Path(path), newline=""))
    try:
        reader.fieldnames
    except csv.Error as err:
        raise ValueError(f"{path}: line 1: not a readable CSV row ({err})") from None
    return reader


def _rows(reader: csv.DictReader, path: str | Path) -> Iterator[dict]:
    """The reader's rows; a CSV syntax error names the file and line."""
    try:
        yield from reader
    except csv.Error as err:
        raise ValueError(f"{path}: line {reader.line_num}: not a readable CSV row ({err})") from None


def default_labels_path(store_path: str | Path) -> Path:
    """Where the labels of a store go by default: ``labels.csv`` beside the store directory."""
    return Path(store_path).parent / LABELS_FILE


def labels_beside(store_path: str | Path) -> Path | None:
    """The ``labels.csv`` that goes with a store: beside its directory, else inside it; None if neither."""
    for candidate in (default_labels_path(store_path), Path(store_path) / LABELS_FILE):
        if candidate.is_file():
            return candidate
    return None


def label_lines(path: str | Path) -> Iterator[tuple[int, str, str]]:
    """``(line number, trace_id, hallucinated text)`` of every row of a labels CSV, unchecked values.

    Raises:
        ValueError: naming the file and field when the header lacks a column of :data:`LABEL_COLUMNS`.
        ValueError: also for a directory, a byte that is not UTF-8 or a CSV syntax error (file and line).
        OSError: the file cannot be read.
    """
    reader = _csv_reader(path)
    for col in LABEL_COLUMNS:
        if col not in (reader.fieldnames or []):
            raise ValueError(f"{path}: field {col!r} missing from the header")
    for line, row in enumerate(_rows(reader, path), start=2):
        yield line, row["trace_id"], (row["hallucinated"] or "").strip()


def read_label_csv(path: str | Path) -> dict[str, int]:
    """Return ``{trace_id: hallucinated}`` from a labels CSV; blank labels are skipped.

    Raises:
        ValueError: naming the file and field for a missing column, a duplicate
            ``trace_id`` or a ``hallucinated`` value other than 0/1.
    """
    out: dict[str, int] = {}
    for line, tid, value in label_lines(path):
        if value == "":
            continue
        if value not in ("0", "1"):
            raise ValueError(f"{path}:{line}: field 'hallucinated' must be 0 or 1, got {value!r}")
        if tid in out:
            raise ValueError(f"{path}:{line}: field 'trace_id' {tid!r} is duplicated")
        out[tid] = int(value)
    return out
