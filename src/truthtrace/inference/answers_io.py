"""Answer files: question + answer pairs to score, and the resumable JSONL file results are appended to.

Answers to score (``truthtrace score --answers``) come as JSONL, CSV or JSON (a list of records, or
``{"data": [...]}``) with a ``question`` field, the answer in ``answer``, ``generation``, ``response`` or
``output``, and an optional ``id``. A malformed record (bad JSON, a missing field, a list where text
belongs, a repeated id) rejects the whole file before anything runs, naming the file, the line or record
and the field; text decoding is that of the question loaders (:mod:`truthtrace.data.textio`).

Results go to a JSONL file one line each, appended a batch at a time and fsynced, so a kill loses at
most the batch in flight. :func:`read_done` reads the ids already there; a truncated last line (the
kill hit mid-write) is dropped by rewriting the file atomically without it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from truthtrace.data.fields import describe, get_field, text_field
from truthtrace.data.textio import Record, check_input_file, csv_rows, json_records, jsonl_records
from truthtrace.fileio import json_safe, parse_json_object, write_bytes_atomic

ANSWER_FIELDS = ("answer", "generation", "response", "output")
ANSWERS_FILE = "JSONL, CSV or JSON answers file"


@dataclass(frozen=True)
class AnswerRow:
    """One answer to score: its id, question and answer, and where it was read (``file: line 3``)."""

    id: str
    question: str
    answer: str
    where: str


def _records(path: Path) -> Iterator[Record]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return jsonl_records(path)
    if suffix == ".csv":
        return csv_rows(path)
    if suffix == ".json":
        return json_records(path)
    raise ValueError(f"{path}: cannot tell the format from the extension {suffix!r}; "
                     "name the file .jsonl, .csv or .json")


def _text(record: dict, names: tuple[str, ...], where: str) -> str:
    """The first of ``names`` present in ``record`` as text (kept as given, may be blank: the engine says so)."""
    for name in names:
        value = get_field(record, name)
        if value is None:
            continue
        if isinstance(value, (list, dict, bool)):
            raise ValueError(f"{where}: field {name!r} is {describe(value)}, expected a string")
        return str(value)
    raise ValueError(f"{where}: missing field {' or '.join(repr(n) for n in names)}")


def read_answers(path: str | Path) -> list[AnswerRow]:
    """Question + answer pairs of the answers file ``path`` (see the module docstring), in file order.

    Ids missing from the file become ``answer-00001``, ... (numbered in file order).

    Raises:
        ValueError: naming the file, the line or record and the field of the first malformed record.
    """
    path = Path(path)
    check_input_file(path, ANSWERS_FILE)
    rows, seen = [], {}
    for n, (where, record) in enumerate(_records(path), 1):
        qid = text_field(get_field(record, "id"), where, "id")
        qid = qid.strip() if qid else f"answer-{n:05d}"
        if qid in seen:
            raise ValueError(f"{where}: duplicate id {qid!r} (first at {seen[qid]}); ids must be unique")
        seen[qid] = where
        rows.append(AnswerRow(qid, _text(record, ("question",), where), _text(record, ANSWER_FIELDS, where), where))
    if not rows:
        raise ValueError(f"{path}: no answers in the file")
    return rows


def _line_id(line: bytes, where: str) -> str:
    """The ``id`` of one result line; ValueError when it is not a result."""
    record = parse_json_object(line, where)
    if not isinstance(record.get("id"), str):
        raise ValueError(f"{where}: no 'id' field: not a truthtrace results file")
    return record["id"]


def read_done(path: str | Path) -> tuple[set[str], bool]:
    """``(ids already in the results file path, whether a truncated last line was dropped)``.

    A missing file holds none. A last line without its newline is kept when it is a whole record,
    else dropped, and the file is rewritten atomically with every line complete.

    Raises:
        ValueError: a line before the last is not a result (names the file and line).
    """
    path = Path(path)
    if not path.exists():
        return set(), False
    check_input_file(path, "JSONL results file")
    *lines, tail = path.read_bytes().split(b"\n")
    ids, keep = set(), list(lines)
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            ids.add(_line_id(line, f"{path}: line {lineno}"))
        except ValueError as err:
            raise ValueError(f"{err}; move the file away or choose another --out") from None
    if not tail.strip():
        return ids, False
    try:
        ids.add(_line_id(tail, "last line"))
        keep.append(tail)
        dropped = False
    except ValueError:  # cut short by a kill mid-write
        dropped = True
    write_bytes_atomic(path, b"".join(line + b"\n" for line in keep))
    return ids, dropped


def append_results(path: str | Path, results: list[dict]) -> None:
    """Append ``results`` to the JSONL file ``path``, one line each, flushed and fsynced before returning."""
    text = "".join(json.dumps(json_safe(r), allow_nan=False) + "\n" for r in results)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
