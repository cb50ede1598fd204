"""Where the exact answer sits inside a generated answer (LLMsKnow, Orgad et al. 2024).

The probe positions of LLMsKnow are the first and last token of the exact answer inside a longer generation
("The capital of France is **Paris**."). Two finders:

- :func:`answer_span` — what the pipeline stores (``exact_span`` in every trace's meta) and the live engine uses:
  it reads only the question and the answer, never the gold answers. The span runs from the first to the last
  *new* word of the answer: a word of letters or digits that is neither in the question nor a function word
  ("the", "is", ...). With no new word it is the core span: the first through the last token holding a letter
  or digit (leading spaces and trailing punctuation left out).
- :func:`exact_span` — LLMsKnow's offline definition: the tokens of the accepted alias that occurs in the answer,
  else the core span. It needs the gold answers, so it cannot run at inference, and its ``source`` ("alias")
  *is* the label under the ``contains`` rules: a probe at these positions would learn where the span came from.
  It is kept for analysis only.

Everything here works in answer-token indices ``0..A-1``; add ``P`` for absolute positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

_CONTENT = re.compile(r"\w")
_WORD = re.compile(r"\w+")
# function words that never make an answer on their own (the answer's new words are the rest)
FUNCTION_WORDS = frozenset("""a an the is are was were be been being it its it's this that these those there here
of in on at to for from by with as and or but not no yes i you he she we they his her their our my your me him them
who whom whose what which when where why how do does did has have had can could will would shall should may might
must answer correct so called known named also one""".split())


@dataclass(frozen=True)
class ExactSpan:
    """First and last answer-token index of the exact answer, and how it was found ("new", "alias" or "core")."""

    first: int
    last: int
    source: str


def prefix_texts(tokenizer, answer_ids: Sequence[int]) -> list[str]:
    """The text of every answer prefix ``ids[:j + 1]``, ``(A,)`` strings (the last is the whole answer).

    Decoding every prefix keeps multi-byte characters and merged spaces where the tokenizer puts them.
    """
    return [tokenizer.decode(list(answer_ids[:j + 1]), skip_special_tokens=True) for j in range(len(answer_ids))]


def token_char_ends(tokenizer, answer_ids: Sequence[int]) -> tuple[str, list[int]]:
    """The decoded answer text and, per answer token, the character offset where its text ends ``(A,)``."""
    texts = prefix_texts(tokenizer, answer_ids)
    return (texts[-1] if texts else ""), [len(t) for t in texts]


def alias_char_span(text: str, aliases: Sequence[str]) -> tuple[int, int] | None:
    """``(start, end)`` characters of the first alias occurrence on word boundaries (case-insensitive);
    longer aliases first, so "New York City" wins over "York". None when no alias occurs."""
    for alias in sorted({a.strip() for a in aliases if a.strip()}, key=lambda a: (-len(a), a)):
        m = re.search(r"(?<!\w)" + re.escape(alias) + r"(?!\w)", text, flags=re.IGNORECASE)
        if m:
            return m.start(), m.end()
    return None


def chars_to_tokens(start: int, end: int, ends: list[int]) -> tuple[int, int]:
    """Answer-token indices ``(first, last)`` of the tokens overlapping characters ``[start, end)``."""
    first = next(j for j, e in enumerate(ends) if e > start)
    last = next((j for j, e in enumerate(ends) if e >= end), len(ends) - 1)
    return first, last


def core_span(text: str, ends: list[int]) -> tuple[int, int]:
    """``(first, last)`` tokens from the first through the last token whose text holds a letter or digit
    (the whole answer when none does)."""
    starts = [0] + ends[:-1]
    content = [j for j, (s, e) in enumerate(zip(starts, ends)) if _CONTENT.search(text[s:e])]
    return (content[0], content[-1]) if content else (0, len(ends) - 1)


def exact_span(tokenizer, answer_ids: Sequence[int], aliases: Sequence[str]) -> ExactSpan:
    """The exact-answer span of one answer.

    Args:
        tokenizer: the model's tokenizer (decodes the answer tokens).
        answer_ids: ``(A,)`` answer token ids, A >= 1.
        aliases: accepted answers of the question.
    Returns:
        :class:`ExactSpan` with ``0 <= first <= last < A``.
    Raises:
        ValueError: for an empty answer.
    """
    return _span(*token_char_ends(tokenizer, answer_ids), lambda text: alias_char_span(text, aliases), "alias")


def _span(text: str, ends: list[int], find, source: str) -> ExactSpan:
    """The tokens (``ends``: each one's end in ``text``) of the characters ``find(text)`` picks (``source``), else
    the core span."""
    if not ends:
        raise ValueError("answer_ids is empty: every stored answer has at least one token")
    found = find(text)
    if found is not None:
        return ExactSpan(*chars_to_tokens(found[0], found[1], ends), source)
    return ExactSpan(*core_span(text, ends), "core")


def new_words_char_span(text: str, question: str) -> tuple[int, int] | None:
    """``(start, end)`` characters from the first through the last word of ``text`` that is neither in
    ``question`` nor a function word (case-insensitive); None when there is no such word."""
    known = {w.lower() for w in _WORD.findall(question)} | FUNCTION_WORDS
    new = [m for m in _WORD.finditer(text) if m.group().lower() not in known]
    return (new[0].start(), new[-1].end()) if new else None


def answer_span(tokenizer, answer_ids: Sequence[int], question: str) -> ExactSpan:
    """The exact-answer span of one answer from the question and the answer alone (no gold answers).

    Args:
        tokenizer: the model's tokenizer (decodes the answer tokens).
        answer_ids: ``(A,)`` answer token ids, A >= 1.
        question: the question text (its words are not the answer).
    Returns:
        :class:`ExactSpan` with ``0 <= first <= last < A``; ``source`` "new" or "core".
    Raises:
        ValueError: for an empty answer.
    """
    return _span(*token_char_ends(tokenizer, answer_ids), lambda text: new_words_char_span(text, question), "new")


def span_meta(tokenizer, answer_ids: Sequence[int], question: str) -> list[int] | None:
    """The ``exact_span`` meta field of a trace: ``[first, last]`` answer-token indices of :func:`answer_span`,
    or None for an answer without tokens."""
    if len(answer_ids) == 0:
        return None
    span = answer_span(tokenizer, answer_ids, question)
    return [span.first, span.last]


def prefix_spans(tokenizer, answer_ids: Sequence[int], question: str) -> list[list[int] | None]:
    """:func:`span_meta` of every answer prefix ``ids[:a]``, ``a = 0..A`` (None for the empty one): the spans a
    token-by-token stream sees, each found on its own prefix. Every prefix is decoded once (A decodes, not A^2/2):
    prefix ``a``'s text and token ends are the first ``a`` of the whole answer's."""
    texts = prefix_texts(tokenizer, answer_ids)
    ends, find = [len(t) for t in texts], lambda text: new_words_char_span(text, question)
    spans = [_span(texts[a - 1], ends[:a], find, "new") for a in range(1, len(texts) + 1)]
    return [None] + [[s.first, s.last] for s in spans]
