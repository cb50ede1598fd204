"""Magnitude pruning and thresholding of linear layers, made permanent, with the achieved sparsity.

Only ``nn.Linear`` weights are touched; a linear layer whose weight is tied to the embedding
table (SmolLM2's lm_head) is skipped, since pruning it would prune the embeddings as well.
Pruning a small model hurts a lot (30% L1 on SmolLM2-135M: perplexity 15.0 -> 25.5); the
achieved sparsity is reported so results are plain.
"""

from __future__ import annotations

import torch


def prunable_linears(model) -> list[tuple[str, torch.nn.Linear]]:
    """``(name, module)`` of every linear layer whose weight is not tied to an embedding table."""
    embeds = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and id(m.weight) not in embeds]


def prune_linear(model, amount: float, scope: str = "global") -> dict:
    """L1 unstructured pruning of the linear layers of ``model``, in place and permanent.

    Args:
        model: a torch module (fp32 weights recommended).
        amount: fraction of weights to zero, 0..0.9.
        scope: "global" (smallest |w| over all layers together) or "layer" (``amount`` in each layer).

    Returns:
        ``sparsity_report`` of the pruned layers.

    Raises:
        ValueError: bad ``amount`` or ``scope``, or no linear layer to prune.
    """
    from torch.nn.utils import prune

    if not 0.0 <= amount <= 0.9:
        raise ValueError(f"prune amount must be in [0, 0.9], got {amount}")
    layers = prunable_linears(model)
    if not layers:
        raise ValueError("the model has no linear layer to prune")
    if scope == "global":
        prune.global_unstructured([(m, "weight") for _, m in layers], pruning_method=prune.L1Unstructured,
                                  amount=amount)
    elif scope == "layer":
        for _, m in layers:
            prune.l1_unstructured(m, "weight", amount=amount)
    else:
        raise ValueError(f"prune scope must be 'global' or 'layer', got {scope!r}")
    for _, m in layers:
        prune.remove(m, "weight")  # weight_orig * mask -> a plain weight with zeros
    return sparsity_report(model)


def zero_below(model, threshold: float) -> dict:
    """Set every linear weight with ``|w| < threshold`` to 0, in place.

    Returns:
        ``sparsity_report`` of the linear layers.
    """
    if threshold <= 0:
        raise ValueError(f"zero_below threshold must be > 0, got {threshold}")
    with torch.no_grad():
        for _, m in prunable_linears(model):
            m.weight.masked_fill_(m.weight.abs() < threshold, 0.0)
    return sparsity_report(model)


def sparsity_report(model) -> dict:
    """Fraction of exact zeros in the prunable linear weights.

    Returns:
        ``{"global": float, "per_layer": {name: float}, "n_weights": int, "n_zero": int,
        "model": float}`` where "model" counts zeros over all parameters.
    """
    per_layer, zeros, total = {}, 0, 0
    for name, m in prunable_linears(model):
        z = int((m.weight == 0).sum())
        per_layer[name] = z / m.weight.numel()
        zeros += z
        total += m.weight.numel()
    params = {id(p): p for p in model.parameters()}.values()
    all_zero = sum(int((p == 0).sum()) for p in params)
    all_n = sum(p.numel() for p in params)
    return {"global": zeros / max(total, 1), "per_layer": per_layer, "n_weights": total, "n_zero": zeros,
            "model": all_zero / max(all_n, 1)}
