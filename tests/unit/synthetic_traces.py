"""Synthetic traces shaped like a tiny model's, shared by the store tests."""

import torch

from truthtrace.naming import layer_key


def make_trace(seed: int, n_tokens: int = 12, layers: int = 2, heads: int = 2, d: int = 16) -> dict:
    """Tensors of one trace: hidden (T, d) x (L+1), causal attn (H, T, T) x L, ids and answer stats."""
    g = torch.Generator().manual_seed(seed)
    tensors = {layer_key(i, "hidden"): torch.randn(n_tokens, d, generator=g) for i in range(layers + 1)}
    mask = torch.ones(n_tokens, n_tokens, dtype=torch.bool).triu(1)
    for i in range(layers):
        scores = torch.randn(heads, n_tokens, n_tokens, generator=g).masked_fill(mask, float("-inf"))
        tensors[layer_key(i, "attn")] = scores.softmax(-1)
    tensors["token_ids"] = torch.randint(0, 1000, (n_tokens,), generator=g)
    tensors["answer_logprobs"] = -torch.rand(4, generator=g)
    tensors["answer_entropy"] = torch.rand(4, generator=g)
    return tensors
