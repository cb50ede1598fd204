"""Question files as text: UTF-8 lines and CSV rows whose every error names the file, the line and the column.

Files are decoded with ``errors="surrogateescape"`` so a byte that is not UTF-8 survives as a lone
surrogate; the first one found is reported as ``questions.jsonl: line 3: not UTF-8 text (byte 0xff at
column 7)`` instead of Python's ``'utf-8' codec can't decode byte ...``, which names neither.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Iterator

from truthtrace.data.fields import describe, get_field

Record = tuple[str, dict]  # (where, record) where "where" is e.g. "path: line 3" or "path: record 3"

_BAD_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape turns an undecodable byte into


def check_input_file(path: Path, what: str = "question file") -> None:
    """ValueError naming ``path`` when it is a directory or another non-file (a missing file is left to open())."""
    wanted = "a .jsonl, .csv or .json file" if what == "question file" else f"a {what}"
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a {what}; pass the path of {wanted}")
    if path.exists() and not path.is_file():
        raise ValueError(f"{path}: is not a regular file; pass the path of {wanted}")


def _not_utf8(path: Path, lineno: int, line: str, pos: int) -> ValueError:
    """The error for the undecodable byte at character ``pos`` of ``line``."""
    byte = ord(line[pos]) - 0xDC00
    return ValueError(f"{path}: line {lineno}: not UTF-8 text (byte 0x{byte:02x} at column {pos + 1}); "
                      "save the file as UTF-8")


def text_lines(path: Path, newline: str | None = None, bom: bool = False) -> Iterator[str]:
    """Lines of the UTF-8 file ``path`` (``bom``: skip a leading byte-order mark), read lazily.

    Raises:
        ValueError: naming the file, line and column of the first byte that is not UTF-8.
    """
    with open(path, encoding="utf-8-sig" if bom else "utf-8", errors="surrogateescape", newline=newline) as f:
        for lineno, line in enumerate(f, 1):
            bad = _BAD_BYTE.search(line)
            if bad:
                raise _not_utf8(path, lineno, line, bad.start())
            yield line


def read_text(path: Path) -> str:
    """The whole UTF-8 file ``path``; ValueError naming the line and column of a byte that is not UTF-8."""
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    bad = _BAD_BYTE.search(text)
    if bad:
        start = text.rfind("\n", 0, bad.start()) + 1
        raise _not_utf8(path, text.count("\n", 0, bad.start()) + 1, text[start:], bad.start() - start)
    return text


def csv_header(path: Path) -> list[str]:
    """The first row of a CSV file ([] if empty)."""
    try:
        return next(csv.reader(text_lines(path, newline="", bom=True)), [])
    except csv.Error as err:
        raise ValueError(f"{path}: line 1: not a readable CSV row ({err})") from None


def csv_rows(path: Path, required: tuple[str, ...] = ()) -> Iterator[Record]:
    """Rows of a CSV file as header -> cell dicts; short or long rows and CSV syntax errors name the line."""
    reader = csv.reader(text_lines(path, newline="", bom=True))
    try:
        header = next(reader, None)
        if not header:
            raise ValueError(f"{path}: line 1: empty file, expected a header row")
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}: line 1: missing columns {missing}")
        for row in reader:
            where = f"{path}: line {reader.line_num}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                hint = f" (missing field {header[len(row)]!r})" if len(row) < len(header) else ""
                raise ValueError(f"{where}: row has {len(row)} fields, header has {len(header)}{hint}")
            yield where, dict(zip(header, row))
    except csv.Error as err:  # e.g. a field over the csv module's size limit
        raise ValueError(f"{path}: line {reader.line_num}: not a readable CSV row ({err})") from None


def jsonl_records(path: Path) -> Iterator[Record]:
    """Objects of a JSONL file, blank lines skipped, each with ``file: line N``.

    Raises:
        ValueError: naming the file and line of invalid JSON or of a value that is not an object.
    """
    for lineno, line in enumerate(text_lines(path), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: line {lineno}: not valid JSON ({e.msg})") from None
        except RecursionError:
            raise ValueError(f"{path}: line {lineno}: JSON nested too deeply") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}: line {lineno}: expected a JSON object, got {describe(record)}")
        yield f"{path}: line {lineno}", record


def load_json(path: Path):
    """The parsed JSON document of ``path``; a syntax error names the file and line."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply") from None


def json_records(path: Path, data=None) -> Iterator[Record]:
    """Objects of a JSON list, or of the list under a top-level ``data``/``Data`` key, each with ``file: record N``
    (``data``: the document, when already parsed).

    Raises:
        ValueError: naming the file (and record) when the document is no such list or a record no object.
    """
    data = load_json(path) if data is None else data
    if isinstance(data, dict) and isinstance(get_field(data, "data"), list):
        data = get_field(data, "data")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records (or {{'data': [...]}})")
    for i, record in enumerate(data, 1):
        if not isinstance(record, dict):
            raise ValueError(f"{path}: record {i}: expected a JSON object, got {describe(record)}")
        yield f"{path}: record {i}", record
