"""Labels under several rules at once, recomputed from the answers and aliases stored in ``labels.csv``.

``labels.csv`` (:mod:`truthtrace.labels.io`) keeps each trace's generation and its accepted answers, so
any rule of :data:`truthtrace.labels.rules.LABEL_RULES` can be applied again without the trace store;
``evaluate --label-rules`` grades every detector under each set of labels side by side.
"""

from __future__ import annotations

from typing import Sequence

from truthtrace.labels.judge import Judge
from truthtrace.labels.rules import parse_rule, parse_rules, verdict
from truthtrace.labels.score import SPANS, answer_span, score_answer


def row_answer(row: dict, span: str = "sentence") -> tuple[str, list[str]]:
    """``(answer span, aliases)`` of one ``labels.csv`` row (``answers`` is "|"-joined).

    Raises:
        ValueError: naming the trace when the row has no aliases.
    """
    aliases = [a for a in str(row.get("answers", "")).split("|") if a.strip()]
    if not aliases:
        raise ValueError(f"labels.csv: trace {row.get('trace_id')!r}: field 'answers' is empty, nothing to "
                         "score the answer against")
    return answer_span(str(row.get("generation", "")), span), aliases


def rule_labels(rows: dict[str, dict], rules: Sequence[str] | str, span: str = "sentence",
                judge: Judge | None = None, progress: bool = False) -> dict[str, dict[str, int]]:
    """``{rule: {trace_id: hallucinated}}`` for every rule, from :func:`~truthtrace.labels.io.read_labels` rows.

    Args:
        rows: ``{trace_id: row}`` with ``generation`` and ``answers``.
        rules: rule strings (or one comma-separated string).
        span: the part of each generation scored (:data:`~truthtrace.labels.score.SPANS`).
        judge: the loaded judge for the ``judge`` rule.
    Raises:
        ValueError: a bad rule or span, a row without aliases, or ``judge`` asked for without a judge model.
    """
    rules = parse_rules(rules)
    if span not in SPANS:
        raise ValueError(f"span must be one of {SPANS}, got {span!r}")
    ids = list(rows)
    answers = [row_answer(rows[t], span) for t in ids]
    scores = [score_answer(a, al) for a, al in answers]
    out: dict[str, dict[str, int]] = {}
    for rule in rules:
        if parse_rule(rule)[0].needs_judge:
            if judge is None:
                raise ValueError("label rule 'judge' needs a local instruction model: give --judge-model DIR "
                                 "(EvalConfig.judge_model)")
            correct = judge.verdicts([a for a, _ in answers], [al for _, al in answers], progress)
        else:
            correct = [verdict(rule, s) for s in scores]
        out[rule] = {t: 1 - int(c) for t, c in zip(ids, correct)}
    return out
