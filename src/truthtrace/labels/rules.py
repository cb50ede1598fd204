"""The one table of label rules: how an answer's match scores (or a judge model) decide correct vs hallucinated.

A rule is written as its name (``contains_or_exact``, ``exact``, ``contains``, ``judge``) or, for the
thresholded metrics, ``<name>:<t>`` / ``<name>>=<t>`` with ``t`` in [0, 1] (``f1:0.5``, ``rougeL:0.5``).
``label`` applies one rule; ``evaluate --label-rules`` applies several to the same stored answers and
grades every detector under each (:mod:`truthtrace.labels.relabel`). CLI help and ``choices`` come
from :data:`LABEL_RULES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class LabelRule:
    """One label rule.

    Attributes:
        name: what the user writes (before ``:<t>`` for thresholded rules).
        reads: the key of :func:`truthtrace.labels.score.score_answer` it reads ("judge": a judge model).
        thresholded: True if it needs ``:<t>``; else a 0/1 verdict.
        help: one line for ``--help`` and the report.
        needs_judge: True if a local judge model decides (``--judge-model DIR``).
    """

    name: str
    reads: str
    thresholded: bool
    help: str
    needs_judge: bool = False


LABEL_RULES: dict[str, LabelRule] = {r.name: r for r in (
    LabelRule("contains_or_exact", "contains_or_exact", False,
              "normalized exact match, or an alias contained on word boundaries"),
    LabelRule("exact", "exact_match", False, "normalized exact match with an alias"),
    LabelRule("contains", "contains", False, "an alias contained on word boundaries"),
    LabelRule("f1", "f1", True, "SQuAD token F1 with the best alias >= t"),
    LabelRule("rougeL", "rougeL", True, "ROUGE-L F1 (longest common token subsequence) with the best alias >= t"),
    LabelRule("judge", "judge", False, "a local instruction model answers whether the answer matches an alias",
              needs_judge=True),
)}
DEFAULT_RULE = "contains_or_exact"
DEFAULT_EVAL_RULES = ("contains_or_exact", "exact", "f1:0.5", "rougeL:0.5")
LABEL_RULE_HELP = ", ".join(f"{r.name}:0.5" if r.thresholded else r.name for r in LABEL_RULES.values())
_THRESHOLD = re.compile(r"(\w+)\s*(?::|>=)\s*(\d*\.?\d+)")


def parse_rule(rule: str) -> tuple[LabelRule, float]:
    """``(LabelRule, threshold)`` of a rule string (threshold 1.0 for 0/1 rules).

    Raises:
        ValueError: naming ``rule`` and the known rules for an unknown name, a missing or extra threshold,
            or a threshold outside [0, 1].
    """
    text = str(rule).strip()
    if text in LABEL_RULES and not LABEL_RULES[text].thresholded:
        return LABEL_RULES[text], 1.0
    m = _THRESHOLD.fullmatch(text)
    found = LABEL_RULES.get(m.group(1)) if m else None
    if found is None or not found.thresholded:
        raise ValueError(f"rule must be one of {LABEL_RULE_HELP} (thresholds in [0, 1]), got {rule!r}")
    threshold = float(m.group(2))
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"rule threshold must be in [0, 1], got {rule!r}")
    return found, threshold


def parse_rules(rules) -> tuple[str, ...]:
    """Rule strings from a comma-separated string or a sequence, each checked, duplicates dropped.

    Raises:
        ValueError: an empty list or a bad rule (see :func:`parse_rule`).
    """
    items = rules.split(",") if isinstance(rules, str) else list(rules)
    out = tuple(dict.fromkeys(str(r).strip() for r in items if str(r).strip()))
    if not out:
        raise ValueError(f"label rules must name at least one rule ({LABEL_RULE_HELP}), got {rules!r}")
    for r in out:
        parse_rule(r)
    return out


def verdict(rule: str, scores: dict) -> int:
    """1 if ``scores`` (a :func:`~truthtrace.labels.score.score_answer` result) count as correct under ``rule``.

    Raises:
        ValueError: ``rule`` needs a judge model (its verdict is not a function of the match scores).
    """
    found, threshold = parse_rule(rule)
    if found.needs_judge:
        raise ValueError(f"rule {rule!r} needs a judge model (truthtrace evaluate --label-rules ...,judge "
                         "--judge-model DIR)")
    if found.reads == "contains_or_exact":
        return int(bool(scores["exact_match"] or scores["contains"]))
    return int(scores[found.reads] >= threshold)
