"""Exact-answer spans (LLMsKnow): the tokens of the alias that matched, else the answer's core span."""

import pytest

from truthtrace.traces.exact_span import alias_char_span, exact_span


def span_text(tok, ids, span):
    return tok.decode(ids[span.first:span.last + 1], skip_special_tokens=True).strip()


def test_alias_span_covers_exactly_the_alias_tokens(tiny_tokenizer):
    ids = tiny_tokenizer(" The capital is Paris.")["input_ids"]
    span = exact_span(tiny_tokenizer, ids, ["paris", "Paris, France"])
    assert span.source == "alias" and span_text(tiny_tokenizer, ids, span) == "Paris"
    assert 0 < span.first <= span.last < len(ids) - 1  # neither the lead-in nor the final "."


def test_no_alias_falls_back_to_the_core_span(tiny_tokenizer):
    ids = tiny_tokenizer(" Mars, the red planet!!")["input_ids"]
    span = exact_span(tiny_tokenizer, ids, ["Venus"])
    assert span.source == "core" and span_text(tiny_tokenizer, ids, span) == "Mars, the red planet"


def test_longest_alias_wins_and_words_must_be_whole():
    assert alias_char_span("It is New York City.", ["York", "New York City"]) == (6, 19)
    assert alias_char_span("Parisian food", ["Paris"]) is None


def test_stop_token_only_answer_and_empty_answer(tiny_tokenizer):
    eos = tiny_tokenizer.eos_token_id
    assert exact_span(tiny_tokenizer, [eos], ["Paris"]) == exact_span(tiny_tokenizer, [eos], ["x"])
    assert exact_span(tiny_tokenizer, [eos], ["Paris"]).first == 0
    with pytest.raises(ValueError, match="empty"):
        exact_span(tiny_tokenizer, [], ["Paris"])
