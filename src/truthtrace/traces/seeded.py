"""Sampling where every generated row has its own seed, so a sample does not depend on its batch.

``generate(do_sample=True)`` draws every row's token from torch's one global generator, so which answers a
question gets depends on the rows sampled with it. :class:`SeededSampling` instead perturbs each row's
``logits / temperature`` (top-p filtered) with Gumbel noise from that row's own generator; choosing the
largest perturbed logit (greedy decoding) draws exactly from ``softmax(logits / temperature)`` over the
nucleus (the Gumbel-max trick). Many questions then share one ``generate`` call and each sample still
depends only on its seed and its own logits (up to float round-off between batch shapes).

    rows = SeededSampling([sample_seed(0, "q1", k) for k in range(10)], temperature=1.0, top_p=0.9)
    generate_answers(model, tok, [prompt] * 10, 24, logits_processor=[rows])   # greedy over the noise
"""

from __future__ import annotations

import hashlib

import torch


def sample_seed(seed: int, question_id: str, k: int) -> int:
    """The seed of sample ``k`` of a question: a hash of ``(seed, question id, k)``."""
    return int.from_bytes(hashlib.sha256(f"{seed}\0{question_id}\0{k}".encode()).digest()[:8], "big") >> 1


def top_p_filter(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """``scores`` ``(rows, V)`` with every token outside the top-p nucleus set to -inf (as transformers'
    ``TopPLogitsWarper``: the smallest set of most likely tokens whose probability reaches ``top_p``)."""
    if top_p >= 1:
        return scores
    sorted_scores, order = torch.sort(scores, descending=False)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1] = False  # the most likely token always stays
    return scores.masked_fill(remove.scatter(1, order, remove), float("-inf"))


class SeededSampling:
    """Per-row seeded sampling for greedy ``generate`` (see module docstring).

    A plain callable with ``LogitsProcessor``'s signature (``generate`` calls any such object), so importing
    this module does not load transformers.

    Args:
        seeds: one seed per generated row, in row order.
        temperature: the logits are divided by it.
        top_p: nucleus size (1: no filtering).
    """

    def __init__(self, seeds: list[int], temperature: float = 1.0, top_p: float = 1.0):
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.temperature, self.top_p = float(temperature), float(top_p)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Perturbed scores ``(rows, V)``: each row draws one uniform per token from its generator per step."""
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"SeededSampling has {len(self.generators)} seeds for {scores.shape[0]} rows")
        s = top_p_filter(scores.float() / self.temperature, self.top_p)
        u = torch.stack([torch.rand(s.shape[1], generator=g) for g in self.generators]).to(s.device)
        return s - torch.log(-torch.log(u.clamp_(min=1e-20)))  # + Gumbel(0, 1) noise
