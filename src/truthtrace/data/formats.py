"""Readers of the named question formats: TriviaQA, NQ-open, SQuAD and TruthfulQA records.

Each turns the records of a file into :data:`Raw` tuples ``(where, id or None, question, answers,
category, context)`` whose text fields are checked by :mod:`truthtrace.data.fields`; the files
themselves are opened by :mod:`truthtrace.data.loaders`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from truthtrace.data.fields import answer_list, describe, get_field, require_text, text_field
from truthtrace.data.textio import Record

# Each reader yields (where, id or None, question, answers, category, context), all text checked by text_field.
Raw = tuple[str, Any, str, list[str], str, "str | None"]


def triviaqa_records(records: Iterator[Record]) -> Iterator[Raw]:
    """TriviaQA records: ``question``, ``answer.value``, ``answer.aliases``, ``question_id``."""
    for where, rec in records:
        question = require_text(get_field(rec, "question"), where, "question")
        answer = get_field(rec, "answer")
        if not isinstance(answer, dict):
            raise ValueError(f"{where}: missing field 'answer' (an object with value/aliases)")
        value = text_field(get_field(answer, "value"), where, "answer.value")
        aliases = get_field(answer, "aliases") or []
        if not isinstance(aliases, list):
            raise ValueError(f"{where}: field 'answer.aliases' must be a list")
        answers = answer_list(([value] if value else []) + aliases, where, "answer.aliases")
        qid = text_field(get_field(rec, "question_id"), where, "question_id")
        yield where, qid, question, answers, "triviaqa", None


def nq_open_records(records: Iterator[Record]) -> Iterator[Raw]:
    """NQ-open records: ``question`` and an ``answer`` list (no ids; they are numbered)."""
    for where, rec in records:
        question = require_text(get_field(rec, "question"), where, "question")
        answers = answer_list(get_field(rec, "answer"), where, "answer")
        yield where, text_field(get_field(rec, "id"), where, "id"), question, answers, "nq_open", None


def squad_records(path: Path, data: Any) -> Iterator[Raw]:
    """SQuAD v1/v2: ``data[].paragraphs[].qas[]``; unanswerable (v2) questions are skipped."""
    articles = get_field(data, "data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise ValueError(f"{path}: missing field 'data' (a list of articles)")
    n = 0
    for a, article in enumerate(articles):
        for p, para in enumerate(_objects(article, "paragraphs", f"{path}: data[{a}]")):
            for k, qa in enumerate(_objects(para, "qas", f"{path}: data[{a}].paragraphs[{p}]")):
                n += 1
                where = f"{path}: record {n} (data[{a}].paragraphs[{p}].qas[{k}])"
                if not isinstance(qa, dict):
                    raise ValueError(f"{where}: expected a JSON object, got {describe(qa)}")
                if qa.get("is_impossible"):
                    continue
                question = require_text(qa.get("question"), where, "question")
                texts = [ans.get("text") for ans in qa.get("answers") or [] if isinstance(ans, dict)]
                answers = answer_list(texts, where, "answers")
                context = text_field(para.get("context"), f"{path}: data[{a}].paragraphs[{p}]", "context")
                yield where, text_field(qa.get("id"), where, "id"), question, answers, "squad", context


def _objects(parent: Any, key: str, where: str) -> list:
    """``parent[key]`` of a SQuAD file as a list ([] when absent); ValueError naming ``where`` otherwise."""
    if not isinstance(parent, dict):
        raise ValueError(f"{where}: expected a JSON object, got {describe(parent)}")
    value = parent.get(key) or []
    if not isinstance(value, list):
        raise ValueError(f"{where}: field {key!r} is {describe(value)}, expected a list")
    return value


def truthfulqa_records(records: Iterator[Record]) -> Iterator[Raw]:
    """TruthfulQA CSV: the best answer plus the ``;``-separated correct answers."""
    for where, rec in records:
        question = require_text(rec["Question"], where, "Question")
        best = require_text(rec["Best Answer"], where, "Best Answer")
        answers = answer_list([best] + rec["Correct Answers"].split(";"), where, "Correct Answers")
        yield where, None, question, answers, rec["Category"].strip() or "truthfulqa", None
