"""The exact-answer positions (LLMsKnow) end to end: the label-free span finder, the layout rows it gives, the
``seq.exact_*`` features of preprocess, and ``probe_exact`` finding a signal that sits only at the exact answer."""

import warnings

import numpy as np
import pytest
import torch
from planted_store import planted_direction, planted_labels, planted_schema

from truthtrace import metrics
from truthtrace.detectors import get_detector
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.features.dataset import FeatureDataset, make_loader
from truthtrace.features.sequences import TokenLayout, layout_of, sequence_features
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS, SEQ_EXACT_FIRST, SEQ_EXACT_LAST, TOKEN_IDS, layer_key
from truthtrace.store import TraceStore, TraceWriter
from truthtrace.traces.exact_span import answer_span, prefix_spans, span_meta


def _text(tok, ids, span):
    return tok.decode(ids[span.first:span.last + 1], skip_special_tokens=True).strip()


def test_answer_span_is_the_new_words_without_gold_answers(tiny_tokenizer):
    ids = tiny_tokenizer(" The capital of France is Paris.")["input_ids"]
    span = answer_span(tiny_tokenizer, ids, "What is the capital of France?")
    assert span.source == "new" and _text(tiny_tokenizer, ids, span) == "Paris"
    short = tiny_tokenizer(" Paris")["input_ids"]
    assert _text(tiny_tokenizer, short, answer_span(tiny_tokenizer, short, "What is the capital of France?")) == "Paris"


def test_answer_span_falls_back_to_the_core_when_every_word_is_known(tiny_tokenizer):
    ids = tiny_tokenizer(" the capital of France!!")["input_ids"]
    span = answer_span(tiny_tokenizer, ids, "What is the capital of France?")
    assert span.source == "core" and _text(tiny_tokenizer, ids, span) == "the capital of France"


def test_span_meta_and_prefix_spans(tiny_tokenizer):
    ids = tiny_tokenizer(" It is Mars, the red planet")["input_ids"]
    q = "Which planet is known as the red planet?"
    assert span_meta(tiny_tokenizer, [], q) is None
    first, last = span_meta(tiny_tokenizer, ids, q)
    assert tiny_tokenizer.decode(ids[first:last + 1]).strip() == "Mars"
    spans = prefix_spans(tiny_tokenizer, ids, q)
    assert len(spans) == len(ids) + 1 and spans[0] is None and spans[-1] == [first, last]
    assert all(s == span_meta(tiny_tokenizer, ids[:a], q) for a, s in enumerate(spans))


def test_exact_rows_follow_the_span_and_are_clamped():
    lay = TokenLayout(n_tokens=10, n_prompt=4, kept_start=0, exact=(1, 3))  # answer tokens at 4..9
    assert lay.exact_rows() == (5, 7)
    assert TokenLayout(10, 4, 0).exact_rows() == (4, 9)  # no span: the whole answer
    assert TokenLayout(10, 4, 6, exact=(0, 1)).exact_rows() == (0, 0)  # rows before the kept ones: the first kept
    assert TokenLayout(6, 4, 0, exact=(1, 5)).exact_rows() == (5, 5)  # a prefix shorter than the span
    assert TokenLayout(4, 4, 0, exact=None).exact_rows() == (3, 3)  # no answer token: the last token
    hidden = torch.arange(2 * 10 * 3, dtype=torch.float32).reshape(2, 10, 3)
    feats = sequence_features(hidden, lay)
    assert torch.equal(feats[SEQ_EXACT_FIRST], hidden[:, 5]) and torch.equal(feats[SEQ_EXACT_LAST], hidden[:, 7])


@pytest.mark.parametrize("bad", [[3, 1], [1], "1,2", [0.5, 1], [-1, 2]])
def test_a_malformed_span_names_the_trace_and_field(bad):
    meta = {"n_prompt_tokens": 4, "n_answer_tokens": 6, "exact_span": bad}
    with pytest.raises(ValueError, match=r"trace 't7'.*exact_span"):
        layout_of(meta, 10, "trace 't7'")


def _exact_store(root, n=240, layers=2, d=24, shift=2.5, seed=0, with_spans=True):
    """Traces whose label is planted only in the hidden state of the exact answer's last token (layer 1), a
    spread shift: the last answer token and the answer mean carry (almost) nothing."""
    labels, direction = planted_labels(n, seed), planted_direction(d, seed)
    with TraceWriter(root, planted_schema(layers, 2, d), shard_max_traces=64, overwrite=True) as w:
        for i, label in enumerate(labels):
            g = torch.Generator().manual_seed(seed * 7919 + i)
            p, a = 5, 8
            first = int(torch.randint(0, 4, (1,), generator=g))
            last = first + int(torch.randint(0, 3, (1,), generator=g))
            tensors = {layer_key(j, "hidden"): torch.randn(p + a, d, generator=g) for j in range(layers + 1)}
            if label:
                tensors[layer_key(1, "hidden")][p + last] += shift * direction
            for j in range(layers):
                tensors[layer_key(j, "attn")] = torch.randn(2, p + a, p + a, generator=g).tril().softmax(-1)
            tensors[TOKEN_IDS] = torch.randint(0, 1000, (p + a,), generator=g, dtype=torch.int32)
            tensors[ANSWER_LOGPROBS], tensors[ANSWER_ENTROPY] = -torch.rand(a, generator=g), torch.rand(a, generator=g)
            meta = {"question_id": f"q{i:03d}", "question": "?", "answers": ["x"], "category": "c",
                    "n_prompt_tokens": p, "n_answer_tokens": a, "kept_start": 0}
            if with_spans:
                meta["exact_span"] = [first, last]
            w.add(f"t{i:03d}", tensors, meta)
    return {f"t{i:03d}": y for i, y in enumerate(labels)}


def _auroc(name, feats, labels):
    det = get_detector(name)
    loader = lambda split: make_loader(FeatureDataset(feats, split, labels=labels, keys=det.inputs),  # noqa: E731
                                       batch_size=64, num_workers=0)
    det.fit(iter(loader("train")), iter(loader("val")))
    scores, y = det.score(iter(loader("test"))), np.concatenate([b["label"].numpy() for b in loader("test")])
    return metrics.auroc(scores, y)


def test_probe_exact_finds_a_signal_only_at_the_exact_answer(tmp_path):
    labels = _exact_store(tmp_path / "traces")
    preprocess(tmp_path / "traces", tmp_path / "features", PreprocessConfig(graphs=False, split_seed=0),
               progress=False)
    exact, last = _auroc("probe_exact", tmp_path / "features", labels), _auroc("probe", tmp_path / "features", labels)
    assert exact > 0.9 and last < 0.7, (exact, last)


def test_a_store_without_spans_warns_and_uses_the_answer_ends(tmp_path):
    _exact_store(tmp_path / "traces", n=12, with_spans=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        preprocess(tmp_path / "traces", tmp_path / "features", PreprocessConfig(graphs=False), progress=False)
    assert any("exact_span" in str(w.message) for w in caught)
    src, feats = TraceStore(tmp_path / "traces"), TraceStore(tmp_path / "features")
    trace, rec = src.get("t003"), feats.get("t003").tensors()
    hidden = torch.stack([trace[layer_key(j, "hidden")].float() for j in range(3)])
    assert torch.allclose(rec[SEQ_EXACT_FIRST].float(), hidden[:, 5], atol=2e-3)  # first answer token
    assert torch.allclose(rec[SEQ_EXACT_LAST].float(), hidden[:, -1], atol=2e-3)  # last answer token
