"""Where the prompt and the answer sit in a stored trace, and the per-position hidden states.

A trace of ``T`` tokens (``P`` prompt + ``A`` answer) may keep only a suffix of its
positions (``kept_start`` = ``k0`` > 0): hidden states are then ``(K, d)`` with
``K = T - k0`` and attention maps ``(H, K, T)`` (rows: kept positions, columns: all
positions). Everything here works in *kept* row indices ``0..K-1`` (absolute ``k0..T-1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from truthtrace.naming import SEQ_EXACT_FIRST, SEQ_EXACT_LAST, SEQ_LAST_ANSWER, SEQ_LAST_PROMPT, SEQ_MEAN_ANSWER


@dataclass(frozen=True)
class TokenLayout:
    """Token positions of one trace.

    ``answer_start`` is ``P``, except that a trace without answer tokens uses its last
    token as a one-token answer span, so every answer statistic is defined. ``exact`` is the
    exact-answer span in answer-token indices (the trace meta's ``exact_span``); None: the whole answer.
    """

    n_tokens: int  # T
    n_prompt: int  # P
    kept_start: int  # k0
    exact: tuple[int, int] | None = None  # (first, last) answer-token indices

    @property
    def n_kept(self) -> int:
        """K, the number of stored positions."""
        return self.n_tokens - self.kept_start

    @property
    def answer_start(self) -> int:
        """Absolute position of the first answer token (``T - 1`` when there is none)."""
        return min(self.n_prompt, self.n_tokens - 1)

    def answer_rows(self) -> slice:
        """Kept row indices of the stored answer tokens (at least the last token)."""
        return slice(max(self.answer_start - self.kept_start, 0), self.n_kept)

    def exact_rows(self) -> tuple[int, int]:
        """Kept rows of the first and last exact-answer token, clamped into the stored answer rows (a span past
        the answer, e.g. of a longer answer's prefix, ends at its last token)."""
        top = max(self.n_tokens - self.n_prompt - 1, 0)  # the last answer-token index
        first, last = self.exact if self.exact is not None else (0, top)
        lo = self.answer_rows().start

        def row(i: int) -> int:
            return min(max(self.answer_start + min(i, top) - self.kept_start, lo), self.n_kept - 1)

        return row(first), row(last)

    def last_prompt_row(self) -> int:
        """Kept row of the last prompt token; the first kept row when it was not kept."""
        return max(self.n_prompt - 1 - self.kept_start, 0)


def layout_of(meta: dict, n_kept: int, where: str) -> TokenLayout:
    """The TokenLayout of a trace from its meta, checked against the ``n_kept`` stored rows.

    Raises:
        ValueError: naming ``where`` (the trace) when a meta field is missing or the
            counts do not match the stored tensors.
    """
    try:
        n_prompt, n_answer = int(meta["n_prompt_tokens"]), int(meta["n_answer_tokens"])
        k0 = int(meta.get("kept_start", 0))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: meta lacks a valid token count ({err})") from None
    layout = TokenLayout(n_prompt + n_answer, n_prompt, k0, exact_of(meta, where))
    if n_prompt < 1 or n_answer < 0 or not 0 <= k0 < layout.n_tokens or layout.n_kept != n_kept:
        raise ValueError(f"{where}: meta says {n_prompt} prompt + {n_answer} answer tokens, kept_start {k0}, "
                         f"but the hidden states have {n_kept} rows")
    return layout


def exact_of(meta: dict, where: str) -> tuple[int, int] | None:
    """The meta's ``exact_span`` ``[first, last]`` as a tuple; None when the trace has none (an empty answer, or a
    store extracted before exact spans were recorded: the exact positions are then the answer's first and last).

    Raises:
        ValueError: naming ``where`` for a span that is not two ints ``0 <= first <= last``.
    """
    span = meta.get("exact_span")
    if span is None:
        return None
    if (not isinstance(span, (list, tuple)) or len(span) != 2 or not all(type(i) is int for i in span)
            or not 0 <= span[0] <= span[1]):
        raise ValueError(f"{where}: meta field 'exact_span' must be [first, last] ints with 0 <= first <= last, "
                         f"got {span!r}")
    return int(span[0]), int(span[1])


def sequence_features(hidden: torch.Tensor, layout: TokenLayout) -> dict[str, torch.Tensor]:
    """Hidden states at the five positions of the contract, for every stored layer.

    Args:
        hidden: ``(Lh, K, d)`` float32 hidden states of the stored layers.
        layout: where prompt, answer and exact answer sit.
    Returns:
        ``{"seq.last_answer", "seq.mean_answer", "seq.last_prompt", "seq.exact_first", "seq.exact_last"}``,
        each ``(Lh, d)``.
    """
    rows = layout.answer_rows()
    first, last = layout.exact_rows()
    return {SEQ_LAST_ANSWER: hidden[:, -1].contiguous(),
            SEQ_MEAN_ANSWER: hidden[:, rows].mean(dim=1),
            SEQ_LAST_PROMPT: hidden[:, layout.last_prompt_row()].contiguous(),
            SEQ_EXACT_FIRST: hidden[:, first].contiguous(),
            SEQ_EXACT_LAST: hidden[:, last].contiguous()}
