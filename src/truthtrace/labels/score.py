"""The ``label`` stage: score each trace's generation against its accepted answers.

A trace is *correct* when its answer matches one of the question's aliases under the
configured rule, and *hallucinated* otherwise. Scores are SQuAD-style (exact match and
token F1 on normalized text) plus a token-boundary ``contains`` and ROUGE-L F1. Only the
answer span is scored: chat artefacts are stripped and, by default, only the first
sentence of the first non-empty line is kept, so "Paris." and "The capital of France is
Paris." both contain "Paris" while a long ramble cannot collect credit for later guesses.

Output is ``labels.csv`` with the columns in :data:`truthtrace.labels.io.COLUMNS`, written atomically.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from truthtrace.labels.io import write_labels
from truthtrace.labels.rules import DEFAULT_RULE, LABEL_RULE_HELP, parse_rule, verdict  # noqa: F401 (CLI reads both here)
from truthtrace.store import TraceStore

SPANS = ("sentence", "line", "full")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SPECIAL = re.compile(r"<\|[^|>]*\|>|</?s>")
_PREFIX = re.compile(r"^\s*(answer|a)\s*:\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_ABBREV = re.compile(r"(?:\b[A-Z]\.|\b(?:St|Dr|Mr|Mrs|Ms|Jr|Sr|Mt|No|vs|Prof|Gen|Ft)\.)$")
_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER_WORDS = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}


def normalize(text: str) -> str:
    """Return SQuAD-style normalized ``text``.

    Folds accents (NFKD), lowercases, drops thousands separators and zero decimals
    ("1,000.0" == "1000") but keeps other decimal points ("3.14"), drops apostrophes and
    abbreviation dots ("U.S." == "US"), turns other punctuation and symbols into spaces
    (so hyphens keep token boundaries), removes the articles a/an/the and collapses
    whitespace.
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"(?<=\d)\.0+(?![\d.])", "", text)
    text = re.sub(r"(?<=\d)\.(?=\d)", "\0", text)  # protect decimal points from the next step
    text = re.sub(r"['\u2018\u2019\u02bc.]", "", text)
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    return " ".join(_ARTICLES.sub(" ", text).split()).replace("\0", ".")


def normalize_tokens(text: str) -> list[str]:
    """Normalized tokens with number words below 100 as digits ("twenty five" -> "25")."""
    out: list[str] = []
    after_tens = False  # previous token came from a tens word, so "five" may join it
    for tok in normalize(text).split():
        value = _NUMBER_WORDS.get(tok)
        if value is not None and after_tens and 0 < value < 10:
            out[-1] = str(int(out[-1]) + value)
        else:
            out.append(tok if value is None else str(value))
        after_tens = value is not None and value >= 20
    return out


def answer_span(generation: str, span: str = "sentence") -> str:
    """Return the part of ``generation`` that is scored.

    Args:
        generation: raw model output; anything after an end-of-turn marker such as
            ``<|im_end|>`` is dropped and other special tokens are removed.
        span: "full" keeps everything, "line" the first non-empty line, "sentence" the
            first sentence of that line (abbreviations like "St." or "J." don't split).
    """
    text = re.split(r"<\|(?:im_end|endoftext|eot_id)\|>", generation)[0]
    text = _SPECIAL.sub("", text).strip()
    if span == "full":
        return text
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = _PREFIX.sub("", line)
    if span == "line":
        return line
    for m in _SENTENCE_END.finditer(line):
        if not _ABBREV.search(line[:m.start()]):
            return line[:m.start()]
    return line


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of token lists ``a`` and ``b``."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _f_measure(overlap: float, n_pred: int, n_ref: int) -> float:
    """Harmonic mean of precision ``overlap/n_pred`` and recall ``overlap/n_ref``."""
    if overlap == 0:
        return 0.0
    precision, recall = overlap / n_pred, overlap / n_ref
    return 2 * precision * recall / (precision + recall)


def _contains(pred: list[str], ref: list[str]) -> bool:
    """True if ``ref`` occurs as a contiguous run of whole tokens in ``pred``."""
    k = len(ref)
    return any(pred[i:i + k] == ref for i in range(len(pred) - k + 1))


def score_answer(prediction: str, aliases: Sequence[str]) -> dict:
    """Score ``prediction`` against every alias and keep the best value of each metric.

    Args:
        prediction: the answer text (already cut to the answer span if wanted).
        aliases: accepted answers; aliases that normalize to nothing are ignored.

    Returns:
        ``{"exact_match": 0/1, "contains": 0/1, "f1": float, "rougeL": float}``; all
        zero when the prediction is empty.

    Raises:
        ValueError: if ``aliases`` is empty or a plain string.
    """
    if isinstance(aliases, str) or not aliases:
        raise ValueError(f"aliases must be a non-empty sequence of strings, got {aliases!r}")
    pred = normalize_tokens(prediction)
    best = {"exact_match": 0, "contains": 0, "f1": 0.0, "rougeL": 0.0}
    for ref in (normalize_tokens(a) for a in aliases):
        if not ref or not pred:
            continue
        common = sum((Counter(pred) & Counter(ref)).values())
        best["exact_match"] = max(best["exact_match"], int(pred == ref))
        best["contains"] = max(best["contains"], int(_contains(pred, ref)))
        best["f1"] = max(best["f1"], _f_measure(common, len(pred), len(ref)))
        best["rougeL"] = max(best["rougeL"], _f_measure(_lcs(pred, ref), len(pred), len(ref)))
    return best


@dataclass
class LabelConfig:
    """Configuration of the ``label`` stage.

    Attributes:
        rule: "contains_or_exact" (default), "exact", "contains", or a threshold
            "<metric>:<t>" / "<metric>>=<t>" with metric "f1" or "rougeL" and t in [0, 1].
        span: which part of the generation is scored, one of :data:`SPANS`.
    """

    rule: str = DEFAULT_RULE
    span: str = "sentence"

    def __post_init__(self) -> None:
        if parse_rule(self.rule)[0].needs_judge:
            raise ValueError(f"rule {self.rule!r}: the label stage scores against aliases only; judge labels "
                             "come from `truthtrace evaluate --label-rules ...,judge --judge-model DIR`")
        if self.span not in SPANS:
            raise ValueError(f"span must be one of {SPANS}, got {self.span!r}")

    @property
    def metric(self) -> str:
        """The score the rule reads: "contains_or_exact", "exact_match", "contains", "f1"..."""
        return parse_rule(self.rule)[0].reads

    @property
    def threshold(self) -> float:
        """Minimum score counted as correct (1.0 for the 0/1 rules)."""
        return parse_rule(self.rule)[1]

    def is_correct(self, scores: dict) -> bool:
        """Apply the rule to a :func:`score_answer` result."""
        return bool(verdict(self.rule, scores))


def _aliases(trace_id: str, meta: dict) -> list[str]:
    """The accepted answers of one meta, as a list; ValueError names the trace."""
    for field in ("question_id", "answers", "generation"):
        if field not in meta:
            raise ValueError(f"trace {trace_id!r}: meta is missing field {field!r}")
    answers = meta["answers"]
    answers = [answers] if isinstance(answers, str) else [str(a) for a in answers]
    if not answers:
        raise ValueError(f"trace {trace_id!r}: field 'answers' is empty")
    return answers


def label_metas(metas: Iterable[tuple[str, dict]], config: LabelConfig) -> list[dict]:
    """Return one label row (keys :data:`COLUMNS`) per ``(trace_id, meta)`` pair.

    ``meta`` needs ``question_id``, ``answers`` (list of aliases or one string) and
    ``generation``; ``category`` defaults to "unknown".

    Raises:
        ValueError: on a missing field, empty answers or a repeated trace id.
    """
    rows, seen = [], set()
    for trace_id, meta in metas:
        trace_id = str(trace_id)
        if trace_id in seen:
            raise ValueError(f"duplicate trace id {trace_id!r}")
        seen.add(trace_id)
        aliases = _aliases(trace_id, meta)
        generation = answer_span(str(meta["generation"]), "full")
        scores = score_answer(answer_span(generation, config.span), aliases)
        correct = int(config.is_correct(scores))
        rows.append({"trace_id": trace_id, "question_id": str(meta["question_id"]),
                     "category": str(meta.get("category") or "unknown"), **scores,
                     "correct": correct, "hallucinated": 1 - correct,
                     "generation": generation, "answers": "|".join(aliases)})
    return rows


def _stats(rows: Sequence[dict]) -> dict:
    correct = sum(r["correct"] for r in rows)
    return {"n": len(rows), "correct": correct, "hallucinated": len(rows) - correct,
            "rate_correct": correct / len(rows) if rows else 0.0}


def summarize(rows: Sequence[dict]) -> dict:
    """Counts and rate correct overall and per category (key ``per_category``)."""
    cats = sorted({r["category"] for r in rows})
    return {**_stats(rows),
            "per_category": {c: _stats([r for r in rows if r["category"] == c]) for c in cats}}


def label_store(store_path: str | Path, out_csv: str | Path,
                config: LabelConfig | None = None, *,
                metas: Callable[[], Iterable[tuple[str, dict]]] | Iterable | None = None) -> dict:
    """Label every trace of a store and write ``out_csv``; return :func:`summarize` + rule.

    Args:
        store_path: a trace store directory (read with ``TraceStore(path).metas()``).
        out_csv: where ``labels.csv`` goes.
        config: the labelling rule (default ``LabelConfig()``).
        metas: optional ``(trace_id, meta)`` iterable (or a callable returning one) used
            instead of opening the store, for tests and custom sources.
    """
    config = config or LabelConfig()
    if metas is None:
        metas = TraceStore(store_path).metas()
    elif callable(metas):
        metas = metas()
    rows = label_metas(metas, config)
    write_labels(rows, out_csv)
    return {**summarize(rows), "rule": config.rule, "labels": str(out_csv)}
