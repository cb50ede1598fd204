"""Our own int8 weight format: int8 values plus per-row (or per-group) fp32 scales in plain safetensors.

A quantized tensor ``<name>`` is stored as int8 beside ``<name>.int8_scale``; on load every such pair
is dequantized to the compute dtype, so latency stays at the dense model's level. This module owns
the format (both directions); which tensors to quantize is decided in ``truthtrace.compress.quantize``.
"""

from __future__ import annotations

import torch

SCALE_SUFFIX = ".int8_scale"


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
