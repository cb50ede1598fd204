"""A pre-norm transformer encoder block on :class:`~truthtrace.nn.attention.MultiHeadAttention`."""

from __future__ import annotations

import torch
from torch import nn

from truthtrace.nn.attention import MultiHeadAttention
from truthtrace.nn.positional import RotaryEmbedding


class EncoderBlock(nn.Module):
    """``x + attn(LN(x))`` then ``x + FFN(LN(x))``: ``(B, T, d)`` -> ``(B, T, d)``.

    Args:
        d_model: width ``d``.
        n_heads: attention heads.
        ff: hidden width of the GELU feed-forward layer.
        dropout: dropout after the attention and feed-forward outputs and inside the feed-forward layer.
        backend: attention backend (see :mod:`truthtrace.nn.attention`).
        rotary: RoPE applied to q and k, or None.
        attn_dropout: dropout on the attention weights; 0 by default, as the fused CPU kernels (flash)
            take no dropout and SDPA would fall back to the math kernel while training.
    Raises:
        ValueError: for a bad width, head count, dropout or backend (from the attention module), or ``ff < 1``.
    """

    def __init__(self, d_model: int, n_heads: int, ff: int, dropout: float = 0.0, backend: str = "auto",
                 rotary: RotaryEmbedding | None = None, attn_dropout: float = 0.0):
        super().__init__()
        if ff < 1:
            raise ValueError(f"ff must be >= 1, got {ff}")
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads, dropout=attn_dropout, backend=backend, rotary=rotary)
        self.ffn = nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None = None, causal: bool = False,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T, d)`` -> ``(B, T, d)``; ``key_padding`` ``(B, T)`` bool (True = real), ``positions`` for RoPE."""
        x = x + self.drop(self.attn(self.norm1(x), key_padding=key_padding, causal=causal, positions=positions))
        return x + self.drop(self.ffn(self.norm2(x)))
