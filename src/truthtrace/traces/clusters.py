"""Semantic clusters of a question's sampled answers, for semantic entropy (Kuhn et al., 2023).

Two answers share a meaning when:

- ``offline`` (default, no model): the content words of one answer are all among the other's ("Paris" and
  "The capital of France is Paris, a big city" for "What is the capital of France?"), as the label rule
  accepts an alias contained in an answer. Content words are the normalized tokens of the answer span
  (:mod:`truthtrace.labels`: SQuAD-style normalization, number words as digits, first sentence) less the
  question's own words and :data:`FUNCTION_WORDS`; answers with no content word compare their normalized
  tokens. The gold aliases are never looked at: the clusters, like semantic entropy, know nothing of the
  label.
- ``nli``: a local natural-language-inference model (a sequence-classification model directory, e.g. a
  DeBERTa MNLI) predicts entailment in both directions between ``question + answer`` texts.

Clustering is greedy as in the paper: each answer joins the first cluster whose first member it is
equivalent to, else opens a new one. Cluster ids count from 0 in order of first appearance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch

from truthtrace.labels import answer_span
from truthtrace.labels.score import normalize_tokens

CLUSTERINGS = ("offline", "nli")
# words that carry no answer: a sentence answer ("It is located in Japan") and a bare one ("Japan") agree
FUNCTION_WORDS = frozenset(
    "i it its is are was were be been being this that these those there here in on at of to for from by with as "
    "and or but so located situated called known named which who what where when answer think believe".split())


def greedy_clusters(answers: Sequence[str], same: Callable[[int, int], bool]) -> list[int]:
    """Cluster id ``(K,)`` of each answer: the first earlier cluster whose first member ``same`` accepts."""
    firsts: list[int] = []  # index of each cluster's first member
    ids = []
    for i in range(len(answers)):
        cid = next((c for c, j in enumerate(firsts) if same(j, i)), None)
        if cid is None:
            cid = len(firsts)
            firsts.append(i)
        ids.append(cid)
    return ids


def content_words(answer: str, question: str = "") -> tuple[list[str], set[str]]:
    """``(normalized tokens of the answer span, its content words)``: the question's words and
    :data:`FUNCTION_WORDS` are not content."""
    tokens = normalize_tokens(answer_span(answer))
    skip = FUNCTION_WORDS | set(normalize_tokens(question))
    return tokens, {t for t in tokens if t not in skip}


def agree(wa: tuple[list[str], set[str]], wb: tuple[list[str], set[str]]) -> bool:
    """Whether two answers' :func:`content_words` say the same: one's content words all among the other's
    (both non-empty), or, when neither has any, equal normalized tokens (two empty answers agree)."""
    (ta, ca), (tb, cb) = wa, wb
    if ca and cb:
        return ca <= cb or cb <= ca
    return not ca and not cb and ta == tb


def equivalent(a: str, b: str, question: str = "") -> bool:
    """Offline equivalence of two answers to ``question`` (see :func:`agree`)."""
    return agree(content_words(a, question), content_words(b, question))


def offline_clusters(answers: Sequence[str], question: str = "") -> list[int]:
    """Cluster ids ``(K,)`` by :func:`equivalent` for answers to ``question``."""
    words = [content_words(a, question) for a in answers]
    return greedy_clusters(answers, lambda j, i: agree(words[j], words[i]))


class NliJudge:
    """Bidirectional entailment with a local sequence-classification model.

    Args:
        path: a local model directory (``AutoModelForSequenceClassification``); its ``id2label`` must name
            an entailment class.
        device: torch device.

    Raises:
        ValueError: the directory does not hold a classification model, or none of its labels is entailment.
    """

    def __init__(self, path: str | Path, device: str = "cpu"):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        root = Path(path)
        if not root.is_dir():
            raise ValueError(f"--nli-model {root}: not a directory (give a local NLI model folder)")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(root)
            self.model = AutoModelForSequenceClassification.from_pretrained(root).to(device).eval()
        except (OSError, ValueError) as err:
            raise ValueError(f"--nli-model {root}: not a sequence-classification model ({err})") from None
        labels = {int(k): str(v).lower() for k, v in self.model.config.id2label.items()}
        hits = [k for k, v in labels.items() if "entail" in v and "not" not in v]
        if not hits:
            raise ValueError(f"--nli-model {root}: no entailment label among {sorted(labels.values())}")
        self.entailment = hits[0]
        self.path = str(root)

    @torch.no_grad()
    def entails(self, premises: list[str], hypotheses: list[str]) -> list[bool]:
        """For each pair, whether the model's most likely class is entailment."""
        enc = self.tokenizer(premises, hypotheses, return_tensors="pt", padding=True, truncation=True)
        logits = self.model(**{k: v.to(self.model.device) for k, v in enc.items()}).logits  # (n, classes)
        return (logits.argmax(-1) == self.entailment).tolist()

    def clusters(self, question: str, answers: Sequence[str]) -> list[int]:
        """Cluster ids ``(K,)``: answers in one cluster entail each other (both directions)."""
        texts = [f"{question} {a}" for a in answers]
        cache: dict[tuple[int, int], bool] = {}

        def same(j: int, i: int) -> bool:
            if (j, i) not in cache:
                both = self.entails([texts[j], texts[i]], [texts[i], texts[j]])
                cache[(j, i)] = both[0] and both[1]
            return cache[(j, i)]

        return greedy_clusters(answers, same)
