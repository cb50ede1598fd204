"""Read user question files into :class:`~truthtrace.data.questions.Question` lists.

Formats (``fmt``): ``jsonl``, ``csv``, ``json`` (a list of records) with column mapping;
``triviaqa`` (``{"Data": [...]}`` JSON or JSONL, either casing of the keys);
``nq_open`` (JSONL with ``question`` and an ``answer`` list); ``squad`` (v1/v2 JSON,
unanswerable v2 questions skipped, the paragraph kept as ``context``); ``truthfulqa``
(the TruthfulQA CSV). ``auto`` picks one from the extension and the fields present.

Duplicate ids are rejected by default (``duplicates="error"``) because ids key traces
and labels; ``duplicates="rename"`` appends ``~2``, ``~3``, ... instead.
Every problem raises ``ValueError`` naming the file, the line or record and the field: a list
or an object where text is expected (the question, id, category, context or one answer) is refused,
never stored as its Python repr. Text decoding and CSV rows are in :mod:`truthtrace.data.textio`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from truthtrace.data.fields import answer_list, get_field, require_text, text_field
from truthtrace.data.formats import Raw, nq_open_records, squad_records, triviaqa_records, truthfulqa_records
from truthtrace.data.questions import Question
from truthtrace.data.textio import (
    Record,
    check_input_file,
    csv_header,
    csv_rows,
    json_records,
    jsonl_records,
    load_json,
)

FORMATS = ("auto", "jsonl", "csv", "json", "triviaqa", "nq_open", "squad", "truthfulqa")
TRUTHFULQA_COLUMNS = ("Type", "Category", "Question", "Best Answer", "Correct Answers",
                      "Incorrect Answers", "Source")
_DEFAULTS = {"question": ("question", "query", "prompt"), "answers": ("answers", "answer", "aliases"),
             "id": ("id", "question_id", "qid"), "category": ("category",), "context": ("context",)}
DEFAULT_CATEGORY = "default"


def _pick(record: dict, field: str | None, role: str) -> Any:
    """The value for ``role`` from the explicit ``field`` or the first default present."""
    for name in [field] if field else _DEFAULTS[role]:
        value = get_field(record, name)
        if value is not None:
            return value
    return None


def _csv_answers(value: Any, where: str, field: str) -> Any:
    """A CSV answers cell: a JSON list (``["a", "b"]``) or ``|``-separated answers."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return json.loads(text) if text.startswith("[") else text.split("|")
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{where}: field {field!r} is not a valid JSON list ({getattr(e, 'msg', e)})") from None


def generic_records(records: Iterator[Record], fields: dict, split_csv: bool,
                    require_answers: bool = True) -> Iterator[Raw]:
    """Records with column mapping ``fields`` (role -> field name or None for defaults)."""
    for where, rec in records:
        question = require_text(_pick(rec, fields["question"], "question"), where, fields["question"] or "question")
        raw = _pick(rec, fields["answers"], "answers")
        name = fields["answers"] or "answers"
        if raw is None and require_answers:
            raise ValueError(f"{where}: missing field {name!r}")
        answers = [] if raw is None else answer_list(_csv_answers(raw, where, name) if split_csv else raw, where, name)
        qid, category, context = (text_field(_pick(rec, fields[role], role), where, fields[role] or role)
                                  for role in ("id", "category", "context"))
        for role, value in (("id", qid), ("category", category), ("context", context)):
            if fields[role] and value is None:
                raise ValueError(f"{where}: missing field {fields[role]!r}")
        yield where, qid, question, answers, category or DEFAULT_CATEGORY, context


def detect_format(path: str | Path) -> str:
    """Guess the format of ``path`` from its extension and its first record's fields;
    ValueError for an extension other than .jsonl/.ndjson/.json/.csv."""
    check_input_file(Path(path))
    return _detect(Path(path))[0]


def _detect(path: Path) -> tuple[str, Any]:
    """``(format, parsed JSON or None)`` so a .json file is parsed only once."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header = csv_header(path)
        return ("truthfulqa" if {"Question", "Best Answer", "Correct Answers"} <= set(header)
                else "csv"), None
    if suffix in (".jsonl", ".ndjson"):
        first = next((rec for _, rec in jsonl_records(path)), {})
        nq = isinstance(first.get("answer"), list) and "answers" not in first
        return ("triviaqa" if isinstance(get_field(first, "answer"), dict) else
                "nq_open" if nq else "jsonl"), None
    if suffix == ".json":
        data = load_json(path)
        records = get_field(data, "data") if isinstance(data, dict) else data
        first = records[0] if isinstance(records, list) and records else {}
        if isinstance(first, dict) and "paragraphs" in first:
            return "squad", data
        return ("triviaqa" if isinstance(first, dict) and isinstance(get_field(first, "answer"), dict)
                else "json"), data
    raise ValueError(f"{path}: cannot detect the format from extension {suffix!r}; pass fmt= "
                     f"one of {FORMATS[1:]}")


def _raw_records(path: Path, fmt: str, fields: dict, require_answers: bool = True) -> tuple[str, Iterator[Raw]]:
    """Resolve ``fmt`` ("auto" included) and return it with its reader's output."""
    data = None
    if fmt == "auto" and any(fields.values()):  # a column mapping means a generic file
        fmt = {".csv": "csv", ".json": "json"}.get(path.suffix.lower(), "jsonl")
    elif fmt == "auto":
        fmt, data = _detect(path)
    if fmt not in ("jsonl", "json", "csv") and any(fields.values()):
        raise ValueError(f"*_field arguments apply to jsonl/csv/json files, not fmt={fmt!r}")
    if fmt == "squad":
        return fmt, squad_records(path, load_json(path) if data is None else data)
    if fmt in ("csv", "truthfulqa"):
        rows = csv_rows(path, TRUTHFULQA_COLUMNS if fmt == "truthfulqa" else ())
    elif fmt == "json" or (fmt == "triviaqa" and path.suffix.lower() == ".json"):
        rows = json_records(path, data)
    else:
        rows = jsonl_records(path)
    readers = {"triviaqa": triviaqa_records, "nq_open": nq_open_records, "truthfulqa": truthfulqa_records}
    if fmt in readers:
        return fmt, readers[fmt](rows)
    return fmt, generic_records(rows, fields, split_csv=fmt == "csv", require_answers=require_answers)


def load_questions(path: str | Path, fmt: str = "auto", *, question_field: str | None = None,
                   answers_field: str | None = None, id_field: str | None = None,
                   category_field: str | None = None, context_field: str | None = None,
                   limit: int | None = None, duplicates: str = "error", require_answers: bool = True) -> list[Question]:
    """Load questions from a user file.

    Args:
        path: the file.
        fmt: one of :data:`FORMATS`; "auto" uses :func:`detect_format`, or the generic
            format of the extension when any ``*_field`` is given.
        question_field, answers_field, id_field, category_field, context_field: field
            names (dotted paths allowed, e.g. ``answer.aliases``) for jsonl/csv/json.
            Defaults: question from question/query/prompt, answers from
            answers/answer/aliases, id from id/question_id/qid, category from category,
            context from context. In CSV an answers cell is a JSON list or
            ``|``-separated. Missing ids become ``<fmt>-00001``... (numbered in file
            order); a missing category becomes "default".
        limit: stop after this many questions.
        duplicates: "error" rejects a repeated id; "rename" makes it unique with ``~2``...
        require_answers: False accepts records without gold answers (jsonl/csv/json), e.g. to answer them live.

    Raises:
        ValueError: naming the file, line or record and field for malformed input.
    """
    path = Path(path)
    check_input_file(path)
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if duplicates not in ("error", "rename"):
        raise ValueError(f"duplicates must be 'error' or 'rename', got {duplicates!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    fields = {"question": question_field, "answers": answers_field, "id": id_field,
              "category": category_field, "context": context_field}
    fmt, raw = _raw_records(path, fmt, fields, require_answers)
    return build_questions(raw, fmt, str(path), limit, duplicates)


def build_questions(raw: Iterator[Raw], fmt: str, source: str, limit: int | None = None,
                    duplicates: str = "error") -> list[Question]:
    """Questions from reader tuples ``raw``: missing ids numbered ``<fmt>-00001``..., repeats refused or renamed.

    Args:
        raw: :data:`~truthtrace.data.formats.Raw` tuples from a format reader.
        fmt: the format name used for numbered ids.
        source: the file or dataset named when there is no question at all.
        limit: stop after this many questions (the rest of ``raw`` is never read).
        duplicates: "error" or "rename" (see :func:`load_questions`).

    Raises:
        ValueError: a duplicate id (``duplicates="error"``) or no question.
    """
    out: list[Question] = []
    first_seen: dict[str, str] = {}  # id -> where it was first seen
    for n, (where, qid, question, answers, category, context) in enumerate(raw, 1):
        qid = str(qid).strip() if qid is not None and str(qid).strip() else f"{fmt}-{n:05d}"
        qid = _unique(qid, first_seen, where, duplicates)
        out.append(Question(qid, question, tuple(answers), category, context))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise ValueError(f"{source}: no questions in the file (format {fmt})")
    return out


def _unique(qid: str, first_seen: dict[str, str], where: str, duplicates: str) -> str:
    """Return ``qid`` or a renamed copy; record it in ``first_seen`` (id -> where)."""
    if qid in first_seen and duplicates == "error":
        raise ValueError(f"{where}: duplicate id {qid!r} (first at {first_seen[qid]}); "
                         f"pass duplicates='rename' to suffix repeats with ~2, ~3, ...")
    base, k = qid, 2
    while qid in first_seen:
        qid, k = f"{base}~{k}", k + 1
    first_seen[qid] = where
    return qid
