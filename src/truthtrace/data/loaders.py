"""Read user question files into :class:`~truthtrace.data.questions.Question` lists.

Formats (``fmt``): ``jsonl``, ``csv``, ``json`` (a list of records) with column mapping;
``triviaqa`` (``{"Data": [...]}`` JSON or JSONL, either casing of the keys);
``nq_open`` (JSONL with ``question`` and an ``answer`` list); ``squad`` (v1/v2 JSON,
unanswerable v2 questions skipped, the paragraph kept as ``context``); ``truthfulqa``
(the TruthfulQA CSV). ``auto`` picks one from the extension and the fields present.

Duplicate ids are rejected by default (``duplicates="error"``) because ids key traces
and labels; ``duplicates="rename"`` appends ``~2``, ``~3``, ... instead.
Every problem raises ``ValueError`` naming the file, the line or record and the field.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterator

from truthtrace.data.questions import Question

FORMATS = ("auto", "jsonl", "csv", "json", "triviaqa", "nq_open", "squad", "truthfulqa")
TRUTHFULQA_COLUMNS = ("Type", "Category", "Question", "Best Answer", "Correct Answers",
                      "Incorrect Answers", "Source")
_DEFAULTS = {"question": ("question", "query", "prompt"), "answers": ("answers", "answer", "aliases"),
             "id": ("id", "question_id", "qid"), "category": ("category",), "context": ("context",)}
DEFAULT_CATEGORY = "default"

Record = tuple[str, dict]  # (where, record) where "where" is e.g. "line 3" or "record 3"


def _get(record: dict, path: str) -> Any:
    """Value at dotted ``path`` in ``record``, keys matched ignoring case and underscores
    (so ``question_id`` finds ``QuestionId``); ``None`` when absent."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        keys = {k.lower().replace("_", ""): k for k in value}
        value = value.get(keys.get(part.lower().replace("_", ""), part))
    return value


def _pick(record: dict, field: str | None, role: str) -> Any:
    """The value for ``role`` from the explicit ``field`` or the first default present."""
    for name in [field] if field else _DEFAULTS[role]:
        value = _get(record, name)
        if value is not None:
            return value
    return None


def _answer_list(value: Any, split_csv: bool, where: str, field: str) -> list[str]:
    """Turn an answers value (list, string, number) into a non-empty list of strings."""
    if isinstance(value, str) and split_csv:
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else text.split("|")
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: field {field!r} is not a valid JSON list ({e.msg})") from None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(a, (str, int, float)) for a in value):
        raise ValueError(f"{where}: field {field!r} must be a string or a list of strings")
    out = list(dict.fromkeys(str(a).strip() for a in value if str(a).strip()))
    if not out:
        raise ValueError(f"{where}: field {field!r} is empty")
    return out


def _iter_jsonl(path: Path) -> Iterator[Record]:
    """Objects of a JSONL file, skipping blank lines."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: line {lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}: line {lineno}: expected a JSON object")
            yield f"{path}: line {lineno}", record


def _load_json(path: Path) -> Any:
    """Parsed JSON; a syntax error names the line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from None


def _iter_json(path: Path, data: Any = None) -> Iterator[Record]:
    """Objects of a JSON list, or of the list under a top-level ``data``/``Data`` key."""
    data = _load_json(path) if data is None else data
    if isinstance(data, dict) and isinstance(_get(data, "data"), list):
        data = _get(data, "data")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records (or {{'Data': [...]}})")
    for i, record in enumerate(data, 1):
        if not isinstance(record, dict):
            raise ValueError(f"{path}: record {i}: expected a JSON object")
        yield f"{path}: record {i}", record


def _iter_csv(path: Path, required: tuple[str, ...] = ()) -> Iterator[Record]:
    """Rows of a CSV file as header -> cell dicts; short or long rows are errors."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
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


def _require(value: Any, where: str, field: str) -> str:
    """``value`` as a stripped non-empty string, else ValueError naming ``field``."""
    if value is None or not str(value).strip():
        raise ValueError(f"{where}: missing field {field!r}")
    return str(value).strip()


# Each reader yields (where, id or None, question, answers, category, context).
Raw = tuple[str, Any, str, list[str], str, "str | None"]


def _generic(records: Iterator[Record], fields: dict, split_csv: bool) -> Iterator[Raw]:
    """Records with column mapping ``fields`` (role -> field name or None for defaults)."""
    for where, rec in records:
        question = _require(_pick(rec, fields["question"], "question"), where,
                            fields["question"] or "question")
        raw = _pick(rec, fields["answers"], "answers")
        if raw is None:
            raise ValueError(f"{where}: missing field {fields['answers'] or 'answers'!r}")
        answers = _answer_list(raw, split_csv, where, fields["answers"] or "answers")
        qid, category = _pick(rec, fields["id"], "id"), _pick(rec, fields["category"], "category")
        context = _pick(rec, fields["context"], "context")
        for role, value in (("id", qid), ("category", category), ("context", context)):
            if fields[role] and (value is None or not str(value).strip()):
                raise ValueError(f"{where}: missing field {fields[role]!r}")
        context = str(context) if context is not None and str(context).strip() else None
        yield where, qid, question, answers, str(category or DEFAULT_CATEGORY), context


def _triviaqa(records: Iterator[Record]) -> Iterator[Raw]:
    """TriviaQA records: ``question``, ``answer.value``, ``answer.aliases``, ``question_id``."""
    for where, rec in records:
        question = _require(_get(rec, "question"), where, "question")
        answer = _get(rec, "answer")
        if not isinstance(answer, dict):
            raise ValueError(f"{where}: missing field 'answer' (an object with value/aliases)")
        value, aliases = _get(answer, "value"), _get(answer, "aliases") or []
        if not isinstance(aliases, list):
            raise ValueError(f"{where}: field 'answer.aliases' must be a list")
        answers = _answer_list(([value] if value else []) + aliases, False, where, "answer.aliases")
        yield where, _get(rec, "question_id"), question, answers, "triviaqa", None


def _nq_open(records: Iterator[Record]) -> Iterator[Raw]:
    """NQ-open records: ``question`` and an ``answer`` list (no ids; they are numbered)."""
    for where, rec in records:
        question = _require(_get(rec, "question"), where, "question")
        answers = _answer_list(_get(rec, "answer"), False, where, "answer")
        yield where, _get(rec, "id"), question, answers, "nq_open", None


def _squad(path: Path, data: Any) -> Iterator[Raw]:
    """SQuAD v1/v2: ``data[].paragraphs[].qas[]``; unanswerable (v2) questions are skipped."""
    articles = _get(data, "data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise ValueError(f"{path}: missing field 'data' (a list of articles)")
    n = 0
    for a, article in enumerate(articles):
        for p, para in enumerate(article.get("paragraphs") or []):
            for k, qa in enumerate(para.get("qas") or []):
                n += 1
                where = f"{path}: record {n} (data[{a}].paragraphs[{p}].qas[{k}])"
                if qa.get("is_impossible"):
                    continue
                question = _require(qa.get("question"), where, "question")
                texts = [ans.get("text") for ans in qa.get("answers") or [] if isinstance(ans, dict)]
                answers = _answer_list(texts, False, where, "answers")
                yield where, qa.get("id"), question, answers, "squad", para.get("context")


def _truthfulqa(records: Iterator[Record]) -> Iterator[Raw]:
    """TruthfulQA CSV: the best answer plus the ``;``-separated correct answers."""
    for where, rec in records:
        question = _require(rec["Question"], where, "Question")
        best = _require(rec["Best Answer"], where, "Best Answer")
        answers = _answer_list([best] + rec["Correct Answers"].split(";"), False, where,
                               "Correct Answers")
        yield where, None, question, answers, rec["Category"].strip() or "truthfulqa", None


def detect_format(path: str | Path) -> str:
    """Guess the format of ``path`` from its extension and its first record's fields;
    ValueError for an extension other than .jsonl/.ndjson/.json/.csv."""
    return _detect(Path(path))[0]


def _detect(path: Path) -> tuple[str, Any]:
    """``(format, parsed JSON or None)`` so a .json file is parsed only once."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
        return ("truthfulqa" if {"Question", "Best Answer", "Correct Answers"} <= set(header)
                else "csv"), None
    if suffix in (".jsonl", ".ndjson"):
        first = next((rec for _, rec in _iter_jsonl(path)), {})
        nq = isinstance(first.get("answer"), list) and "answers" not in first
        return ("triviaqa" if isinstance(_get(first, "answer"), dict) else
                "nq_open" if nq else "jsonl"), None
    if suffix == ".json":
        data = _load_json(path)
        records = _get(data, "data") if isinstance(data, dict) else data
        first = records[0] if isinstance(records, list) and records else {}
        if isinstance(first, dict) and "paragraphs" in first:
            return "squad", data
        return ("triviaqa" if isinstance(first, dict) and isinstance(_get(first, "answer"), dict)
                else "json"), data
    raise ValueError(f"{path}: cannot detect the format from extension {suffix!r}; pass fmt= "
                     f"one of {FORMATS[1:]}")


def _raw_records(path: Path, fmt: str, fields: dict) -> tuple[str, Iterator[Raw]]:
    """Resolve ``fmt`` ("auto" included) and return it with its reader's output."""
    data = None
    if fmt == "auto" and any(fields.values()):  # a column mapping means a generic file
        fmt = {".csv": "csv", ".json": "json"}.get(path.suffix.lower(), "jsonl")
    elif fmt == "auto":
        fmt, data = _detect(path)
    if fmt not in ("jsonl", "json", "csv") and any(fields.values()):
        raise ValueError(f"*_field arguments apply to jsonl/csv/json files, not fmt={fmt!r}")
    if fmt == "squad":
        return fmt, _squad(path, _load_json(path) if data is None else data)
    if fmt in ("csv", "truthfulqa"):
        rows = _iter_csv(path, TRUTHFULQA_COLUMNS if fmt == "truthfulqa" else ())
    elif fmt == "json" or (fmt == "triviaqa" and path.suffix.lower() == ".json"):
        rows = _iter_json(path, data)
    else:
        rows = _iter_jsonl(path)
    readers = {"triviaqa": _triviaqa, "nq_open": _nq_open, "truthfulqa": _truthfulqa}
    if fmt in readers:
        return fmt, readers[fmt](rows)
    return fmt, _generic(rows, fields, split_csv=fmt == "csv")


def load_questions(path: str | Path, fmt: str = "auto", *, question_field: str | None = None,
                   answers_field: str | None = None, id_field: str | None = None,
                   category_field: str | None = None, context_field: str | None = None,
                   limit: int | None = None, duplicates: str = "error") -> list[Question]:
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

    Raises:
        ValueError: naming the file, line or record and field for malformed input.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if duplicates not in ("error", "rename"):
        raise ValueError(f"duplicates must be 'error' or 'rename', got {duplicates!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    fields = {"question": question_field, "answers": answers_field, "id": id_field,
              "category": category_field, "context": context_field}
    fmt, raw = _raw_records(path, fmt, fields)
    out: list[Question] = []
    first_seen: dict[str, str] = {}  # id -> where it was first seen
    for n, (where, qid, question, answers, category, context) in enumerate(raw, 1):
        qid = str(qid).strip() if qid is not None and str(qid).strip() else f"{fmt}-{n:05d}"
        qid = _unique(qid, first_seen, where, duplicates)
        out.append(Question(qid, question, tuple(answers), category, context))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise ValueError(f"{path}: no questions in the file (format {fmt})")
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
