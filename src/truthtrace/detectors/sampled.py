"""Training-free detectors over K sampled answers per question (``truthtrace sample``).

Each reads ``sample.*`` keys, which the feature dataset joins by question id from the samples store
(:mod:`truthtrace.features.samples`); without a samples store ``train`` skips them with a message.

- ``semantic_entropy`` (Kuhn et al., 2023; Farquhar et al., 2024): the entropy of the meanings of the
  sampled answers, ``SE = -sum_c p(c) log p(c)`` over the semantic clusters ``c`` stored with the samples.
  ``weighting="discrete"`` (default) takes ``p(c) = |c| / K``; ``"probability"`` takes
  ``p(c) = sum_{s in c} exp(lp_s) / sum_s exp(lp_s)`` with ``lp_s`` each sample's length-normalized
  (mean token) log-prob.
- ``selfcheck_ngram`` (SelfCheckGPT, Manakul et al., 2023, unigram variant): a unigram model is counted
  over the K samples and the greedy answer itself (as SelfCheckGPT adds the passage), with add-``k``
  smoothing ``p(w) = (n(w) + k) / (N + k V)``; the score is the greedy answer's average negative
  log-prob per token (``aggregate="avg"``) or its largest (``"max"``). Tokens are lowercased words and
  punctuation marks.
- ``p_true`` (Kadavath et al., 2022): ``1 - P(True)``, the model's probability that its greedy answer is
  false, asked at sampling time (it needs the LLM) and stored.

Scores are higher for answers more likely hallucinated. ``fit`` chooses nothing; it reports the validation
AUROC.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from truthtrace import metrics
from truthtrace.detectors.base import Batch, Detector, register
from truthtrace.features.samples import MissingSamplesError
from truthtrace.naming import (
    SAMPLE_CLUSTER_IDS,
    SAMPLE_GREEDY,
    SAMPLE_LOGPROB_MEAN,
    SAMPLE_P_TRUE,
    SAMPLE_TEXTS,
)

WEIGHTINGS = ("discrete", "probability")
AGGREGATES = ("avg", "max")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def semantic_entropy(cluster_ids: Sequence[int], logprob_mean: Sequence[float] | None = None) -> float:
    """Entropy (nats) over the clusters of K sampled answers.

    Args:
        cluster_ids: ``(K,)`` the cluster of each sample.
        logprob_mean: ``(K,)`` each sample's mean token log-prob, or None for the discrete estimate
            ``p(c) = |c| / K``.
    Returns:
        ``-sum_c p(c) log p(c)``; 0 when every sample means the same.
    """
    ids = np.asarray(cluster_ids, dtype=np.int64)
    if logprob_mean is None:
        weights = np.ones(len(ids))
    else:
        lp = np.asarray(logprob_mean, dtype=np.float64)
        weights = np.exp(lp - lp.max())  # normalized over samples below, so the shift cancels
    p = np.array([weights[ids == c].sum() for c in np.unique(ids)]) / weights.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def unigram_tokens(text: str) -> list[str]:
    """Lowercased words and punctuation marks of ``text``."""
    return _TOKEN.findall(text.lower())


def selfcheck_unigram(answer: str, samples: Sequence[str], k: float = 0.0, aggregate: str = "avg") -> float:
    """SelfCheckGPT's unigram score of ``answer`` against its ``samples``.

    Args:
        answer: the judged (greedy) answer.
        samples: the K sampled answers.
        k: add-k smoothing pseudo-count (0: SelfCheckGPT's default).
        aggregate: "avg" (mean negative log-prob over the answer's tokens) or "max" (the largest).
    Returns:
        The score; an answer with no tokens scores as a token seen once, the highest score possible.
    """
    tokens = unigram_tokens(answer)
    counts = Counter(tokens)
    for s in samples:
        counts.update(unigram_tokens(s))
    n, vocab = sum(counts.values()), len(counts) + 1  # + 1: the unknown token, as SelfCheckGPT counts it
    if not tokens:
        return -math.log(1.0 / max(n, 1))
    nll = [-math.log((counts[t] + k) / (n + k * vocab)) for t in tokens]
    return float(np.mean(nll) if aggregate == "avg" else np.max(nll))


class SampledDetector(Detector):
    """A training-free score per trace computed from its batch's ``sample.*`` keys; subclasses set
    ``inputs`` and implement :meth:`batch_scores`."""

    family = "training-free"

    def batch_scores(self, batch: Batch) -> np.ndarray:
        """``(B,)`` float64 scores of one batch."""
        raise NotImplementedError

    def score(self, batches: Iterable[Batch]) -> np.ndarray:
        """Return ``(n,)`` float64 scores, in batch order."""
        out = [self.batch_scores(b) for b in batches]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float64)

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Report the validation AUROC; ``train`` is not read.

        Raises:
            MissingSamplesError: every validation score is NaN (e.g. P(True) was not asked at sampling time;
                ``train`` skips the detector with this message).
        """
        batches = list(val)
        scores = self.score(iter(batches))
        y = np.concatenate([np.asarray(b["label"]) for b in batches]) if batches else np.zeros(0)
        if len(scores) and np.isnan(scores).all():
            raise MissingSamplesError(f"{self.name}: no finite scores on val: the samples store holds no "
                                      f"{', '.join(self.inputs)} (sampled with --no-p-true?)")
        with warnings.catch_warnings(record=True):  # one-class val: NaN is the answer
            return {"val_auroc": metrics.auroc(scores, y)}


@register("semantic_entropy")
class SemanticEntropyDetector(SampledDetector):
    """Semantic entropy of the sampled answers (see module docstring); ``weighting`` in :data:`WEIGHTINGS`."""

    inputs = (SAMPLE_CLUSTER_IDS, SAMPLE_LOGPROB_MEAN)

    def __init__(self, weighting: str = "discrete"):
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        self.weighting = weighting

    def args(self) -> dict:
        return {"weighting": self.weighting}

    def describe(self) -> str:
        return f"{self.weighting} SE over K samples"

    def batch_scores(self, batch: Batch) -> np.ndarray:
        """``(B,)`` semantic entropies from ``sample.cluster_ids`` ``(B, K)`` (and ``sample.logprob_mean``)."""
        ids, lp = np.asarray(batch[SAMPLE_CLUSTER_IDS]), np.asarray(batch[SAMPLE_LOGPROB_MEAN])
        weighted = self.weighting == "probability"
        return np.array([semantic_entropy(ids[i], lp[i] if weighted else None) for i in range(len(ids))])


@register("selfcheck_ngram")
class SelfCheckNgramDetector(SampledDetector):
    """SelfCheckGPT unigram score of the greedy answer against its samples (see module docstring)."""

    inputs = (SAMPLE_TEXTS, SAMPLE_GREEDY)

    def __init__(self, k: float = 0.0, aggregate: str = "avg"):
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        if not k >= 0:
            raise ValueError(f"k must be >= 0, got {k}")
        self.k, self.aggregate = float(k), aggregate

    def args(self) -> dict:
        return {"k": self.k, "aggregate": self.aggregate}

    def batch_scores(self, batch: Batch) -> np.ndarray:
        """``(B,)`` scores from ``sample.greedy`` (B strings) and ``sample.texts`` (B lists of K strings)."""
        return np.array([selfcheck_unigram(g, s, self.k, self.aggregate)
                         for g, s in zip(batch[SAMPLE_GREEDY], batch[SAMPLE_TEXTS])], dtype=np.float64)


@register("p_true")
class PTrueDetector(SampledDetector):
    """``1 - P(True)``: the model's own doubt that its greedy answer is true (stored by ``truthtrace sample``)."""

    inputs = (SAMPLE_P_TRUE,)

    def batch_scores(self, batch: Batch) -> np.ndarray:
        """``(B,)`` from ``sample.p_true`` ``(B,)``."""
        return 1.0 - np.asarray(batch[SAMPLE_P_TRUE], dtype=np.float64).reshape(-1)
