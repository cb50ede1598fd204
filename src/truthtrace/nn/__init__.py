"""Small neural building blocks of truthtrace's own, used by the detectors (no LLM here).

- :mod:`truthtrace.nn.attention`: multi-head self-attention ``(B, T, d) -> (B, T, d)`` on
  ``scaled_dot_product_attention`` with a chosen kernel (flash, memory-efficient, math, xformers when
  installed, or ``auto``-detected for the device), padding and causal masks.
- :mod:`truthtrace.nn.positional`: sinusoidal encodings ``(T, d)`` and rotary embeddings (RoPE) applied
  to queries and keys ``(B, H, T, hd)``.
- :mod:`truthtrace.nn.encoder`: a pre-norm transformer encoder block.

    from truthtrace.nn import EncoderBlock, MultiHeadAttention, RotaryEmbedding
"""

from truthtrace.nn.attention import (
    BACKENDS,
    MultiHeadAttention,
    attention,
    available_backends,
    check_backend,
    resolve_backend,
)
from truthtrace.nn.encoder import EncoderBlock
from truthtrace.nn.positional import RotaryEmbedding, apply_rotary, sinusoidal

__all__ = ["BACKENDS", "EncoderBlock", "MultiHeadAttention", "RotaryEmbedding", "apply_rotary", "attention",
           "available_backends", "check_backend", "resolve_backend", "sinusoidal"]
