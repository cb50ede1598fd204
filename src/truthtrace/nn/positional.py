"""Position encodings: fixed sinusoidal vectors added to inputs, and rotary embeddings (RoPE) applied to q and k.

Sinusoidal (Vaswani et al., 2017): position ``p`` gets ``sin(p * w_i)`` in column ``2i`` and ``cos(p * w_i)``
in column ``2i + 1``, with ``w_i = base ** (-2i / d)``.

Rotary (Su et al., 2021): each pair of channels ``(j, j + hd/2)`` of a query or key at position ``p`` is
rotated by the angle ``p * w_j``. A rotation by ``m`` then by ``-n`` is a rotation by ``m - n``, so the
score ``q_m . k_n`` depends on the positions only through ``m - n``. The "rotate half" channel pairing of
GPT-NeoX and LLaMA is used.
"""

from __future__ import annotations

import torch
from torch import nn


def inverse_frequencies(dim: int, base: float = 10_000.0) -> torch.Tensor:
    """Angular frequencies ``w_i = base ** (-2i / dim)``, shape ``(dim // 2,)`` float32.

    Raises:
        ValueError: if ``dim`` is not a positive even number or ``base`` is not > 1.
    """
    if not (isinstance(dim, int) and dim > 0 and dim % 2 == 0):
        raise ValueError(f"dim must be a positive even int, got {dim!r}")
    if not base > 1:
        raise ValueError(f"base must be > 1, got {base!r}")
    return base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim).float()


def sinusoidal(n_positions: int, dim: int, base: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal encodings ``(n_positions, dim)`` float32 for positions ``0 .. n_positions - 1``.

    Column ``2i`` holds ``sin(p * w_i)`` and column ``2i + 1`` holds ``cos(p * w_i)``.
    Raises:
        ValueError: if ``n_positions < 1`` or ``dim`` is not a positive even number.
    """
    if not (isinstance(n_positions, int) and n_positions >= 1):
        raise ValueError(f"n_positions must be an int >= 1, got {n_positions!r}")
    angles = torch.arange(n_positions, dtype=torch.float64)[:, None] * inverse_frequencies(dim, base).double()
    out = torch.empty(n_positions, dim, dtype=torch.float64)
    out[:, 0::2], out[:, 1::2] = angles.sin(), angles.cos()
    return out.float()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``(..., hd)`` -> ``(..., hd)``: ``[x1, x2]`` becomes ``[-x2, x1]`` (halves of the last axis)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``(B, H, T, hd)`` by angles whose ``cos``/``sin`` broadcast to it (e.g. ``(T, hd)``)."""
    return (x * cos + rotate_half(x) * sin).to(x.dtype)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding of queries and keys with ``head_dim`` channels per head.

    Holds no trained weights (its frequencies are a non-persistent buffer), so it adds nothing to a
    state dict.

    Args:
        head_dim: channels per head (even).
        base: the frequency base (10,000 as in RoFormer and LLaMA).
    Raises:
        ValueError: if ``head_dim`` is not a positive even number or ``base`` is not > 1.
    """

    def __init__(self, head_dim: int, base: float = 10_000.0):
        super().__init__()
        self.head_dim, self.base = head_dim, float(base)
        self.register_buffer("inv_freq", inverse_frequencies(head_dim, base), persistent=False)

    def angles(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos`` and ``sin`` of shape ``(..., T, head_dim)`` for ``positions`` ``(T,)`` or ``(B, T)``."""
        theta = positions.to(self.inv_freq.device, torch.float32)[..., None] * self.inv_freq  # (..., T, hd/2)
        theta = torch.cat((theta, theta), dim=-1)  # (..., T, hd): channel j and j + hd/2 share an angle
        return theta.cos(), theta.sin()

    def forward(self, q: torch.Tensor, k: torch.Tensor,
                positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate ``q`` ``(B, H, Tq, hd)`` and ``k`` ``(B, H, Tk, hd)`` by their positions.

        Args:
            q, k: queries and keys (self-attention: ``Tq == Tk``).
            positions: ``(T,)`` or ``(B, T)`` positions shared by q and k; default ``0 .. T - 1``.
        Returns:
            The rotated ``(q, k)``, same shapes and dtypes.
        Raises:
            ValueError: if the last axis is not ``head_dim`` or q and k differ in length without positions.
        """
        if q.shape[-1] != self.head_dim or k.shape[-1] != self.head_dim:
            raise ValueError(f"q and k need {self.head_dim} channels per head, got {q.shape[-1]} and {k.shape[-1]}")
        if positions is None:
            if q.shape[-2] != k.shape[-2]:
                raise ValueError("q and k differ in length; pass positions")
            positions = torch.arange(q.shape[-2], device=q.device)
        cos, sin = self.angles(positions)
        if cos.ndim == 3:  # (B, T, hd) -> (B, 1, T, hd), broadcast over heads
            cos, sin = cos[:, None], sin[:, None]
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base:g}"
