"""Our own int8 weight serialization: int8 values plus per-row fp32 scales in plain safetensors.

Used for linear layers (one scale per output channel) and for embedding tables (one scale per
64 values of a token row), where torchao's checkpoints do not reload. The lm_head of SmolLM2 is tied to the
embeddings: tied tensors are stored once and re-tied on load (see ``split_tied``). On load the
weights are dequantized to the compute dtype, so latency stays at the dense model's level.
"""

from __future__ import annotations

import torch

SCALE_SUFFIX = ".int8_scale"
# Embedding rows get one scale per 64 values: the tied table is also the output layer, where a
# per-row scale set by a few outliers costs top-1 agreement (0.955 -> see BENCHMARKS); 1.8 MB of scales.
EMBED_GROUP = 64


def quantize_rows(w: torch.Tensor, group: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row (or per-group within each row) int8 quantization.

    Args:
        w: (rows, cols) float weight (rows = output channels or vocabulary entries).
        group: columns sharing one scale (must divide cols); None = one scale per row.

    Returns:
        ``(q, scale)``: q (rows, cols) int8 in [-127, 127]; scale (rows,) float32, or (rows, cols // group)
        with ``group``; w ~= q * scale broadcast over each row (group).
    """
    rows, cols = w.shape
    g = cols if group is None or cols % group else group
    wg = w.detach().float().reshape(rows, cols // g, g)
    # an all-zero row (e.g. fully pruned) gets scale 1 so it dequantizes to exact zeros
    amax = wg.abs().amax(dim=2)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    q = torch.round(wg / scale[..., None]).clamp_(-127, 127).to(torch.int8).reshape(rows, cols)
    return q, (scale[:, 0] if g == cols else scale)


def dequantize_rows(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Inverse of ``quantize_rows``: (rows, cols) int8, (rows,) or (rows, groups) scales -> (rows, cols) ``dtype``."""
    rows, cols = q.shape
    s = scale.float().reshape(rows, -1)
    out = q.float().reshape(rows, s.shape[1], -1)
    out.mul_(s[..., None])  # in place: one fp32 copy of the table at a time (the same fp32 product as before)
    return out.reshape(rows, cols).to(dtype)


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


def pack_state_dict(state: dict[str, torch.Tensor], quantized: dict[str, tuple[torch.Tensor, torch.Tensor]]
                    ) -> dict[str, torch.Tensor]:
    """Replace each quantized entry of ``state`` by its int8 values and a ``<name>.int8_scale`` tensor.

    Raises:
        ValueError: a quantized name missing from ``state`` (e.g. a tied alias was dropped instead).
    """
    packed = dict(state)
    for name, (q, scale) in quantized.items():
        if name not in packed:
            raise ValueError(f"int8 tensor {name!r} is not in the state dict to save")
        packed[name] = q.contiguous()
        packed[name + SCALE_SUFFIX] = scale.contiguous()
    return packed


def dequantize_state_dict(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Turn every int8 tensor with a ``<name>.int8_scale`` companion back into ``dtype`` floats.

    Empties ``state`` as it goes, so each int8 tensor is freed once dequantized (peak memory is the
    float model plus one table, not the float model plus the whole int8 file); in the int8 format no
    returned tensor shares memory with ``state``.

    Raises:
        ValueError: an int8 tensor without its scale, or a scale of the wrong length.
    """
    out = {}
    # safetensors may hand out views of one mapping of the whole file: a kept view (a norm weight)
    # would keep the int8 file resident, so in the int8 format the few float tensors are copied
    copy_rest = any(t.dtype == torch.int8 for t in state.values())
    for name in [n for n in state if not n.endswith(SCALE_SUFFIX)]:
        t = state.pop(name)
        if t.dtype != torch.int8 and copy_rest:
            t = t.clone()
        if t.dtype == torch.int8:
            scale = state.pop(name + SCALE_SUFFIX, None)
            if scale is None or scale.shape[0] != t.shape[0] or t.shape[1] % scale[0].numel():
                raise ValueError(f"int8 tensor {name!r} {tuple(t.shape)} lacks a matching {SCALE_SUFFIX} tensor")
            t = dequantize_rows(t, scale, dtype)
        out[name] = t
    return out
