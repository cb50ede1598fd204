"""Where the exact answer sits inside a generated answer (LLMsKnow, Orgad et al. 2024).

The probe positions of LLMsKnow are the first and last token of the span of the answer that matched an
accepted alias; when no alias occurs, the answer's core span is used instead: the first token holding a letter
or digit through the last such token (leading chatter such as spaces, and trailing punctuation, are left out).
Everything here works in answer-token indices ``0..A-1``; add ``P`` for absolute positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

_CONTENT = re.compile(r"\w")


@dataclass(frozen=True)
class ExactSpan:
    """First and last answer-token index of the exact answer, and how it was found ("alias" or "core")."""

    first: int
    last: int
    source: str


def token_char_ends(tokenizer, answer_ids: Sequence[int]) -> tuple[str, list[int]]:
    """The decoded answer text and, per answer token, the character offset where its text ends ``(A,)``.

    Decoding every prefix keeps multi-byte characters and merged spaces where the tokenizer puts them.
    """
    ends = [len(tokenizer.decode(list(answer_ids[:j + 1]), skip_special_tokens=True))
            for j in range(len(answer_ids))]
    return tokenizer.decode(list(answer_ids), skip_special_tokens=True), ends


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
    if len(answer_ids) == 0:
        raise ValueError("answer_ids is empty: every stored answer has at least one token")
    text, ends = token_char_ends(tokenizer, answer_ids)
    found = alias_char_span(text, aliases)
    if found is not None:
        return ExactSpan(*chars_to_tokens(found[0], found[1], ends), "alias")
    return ExactSpan(*core_span(text, ends), "core")
