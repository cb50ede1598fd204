"""Which weights our int8 format quantizes, and quantizing a live model in place (format: ``truthtrace.models.int8``).

Used for linear layers (one scale per output channel) and for embedding tables (one scale per
64 values of a token row), where torchao's checkpoints do not reload. The lm_head of SmolLM2 is tied to the
embeddings: tied tensors are stored once and re-tied on load (see ``split_tied``). On load the
weights are dequantized to the compute dtype, so latency stays at the dense model's level.
"""

from __future__ import annotations

import torch

from truthtrace.models.int8 import dequantize_rows, quantize_rows

# Embedding rows get one scale per 64 values: the tied table is also the output layer, where a
# per-row scale set by a few outliers costs top-1 agreement (0.955 -> see BENCHMARKS); 1.8 MB of scales.
EMBED_GROUP = 64


def int8_targets(model, embeddings: bool) -> list[str]:
    """Parameter names to quantize: every ``nn.Linear`` weight, plus ``nn.Embedding`` weights if asked.

    Tied weights appear once (the first name ``named_parameters`` gives, the embedding for SmolLM2).
    """
    seen: set[int] = set()
    names: list[str] = []
    types = (torch.nn.Linear, torch.nn.Embedding) if embeddings else (torch.nn.Linear,)
    for mod_name, module in model.named_modules():
        w = getattr(module, "weight", None)
        if not isinstance(module, types) or w is None or w.dim() != 2 or id(w) in seen:
            continue
        if isinstance(module, torch.nn.Linear) and _is_tied_to_embedding(model, w) and not embeddings:
            continue  # quantizing a tied lm_head would silently quantize the embedding table too
        seen.add(id(w))
        names.append(f"{mod_name}.weight" if mod_name else "weight")
    return names


def _is_tied_to_embedding(model, w) -> bool:
    return any(isinstance(m, torch.nn.Embedding) and m.weight is w for m in model.modules())


def quantize_model_int8(model, embeddings: bool) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Quantize the targets of ``model`` in place (weights replaced by their dequantized values).

    Linear weights get one scale per output channel, embedding tables one per ``EMBED_GROUP`` values of a row.

    Returns:
        ``{param_name: (q int8 (rows, cols), scale float32 (rows,) or (rows, cols // EMBED_GROUP))}``,
        to be written by ``pack_state_dict``.
    """
    out = {}
    with torch.no_grad():
        embeds = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
        for name in int8_targets(model, embeddings):
            param = model.get_parameter(name)
            q, scale = quantize_rows(param, EMBED_GROUP if id(param) in embeds else None)
            param.copy_(dequantize_rows(q, scale, param.dtype))
            out[name] = (q, scale)
    return out
