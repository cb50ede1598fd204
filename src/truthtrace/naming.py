"""One naming helper for every capture point, store key, config field and plot label.

Keys look like ``layers.12.hidden`` or ``layers.3.attn`` (TransformerLens-style dotted
names). Hidden-state layer ``0`` is the embedding output and layer ``i`` (1..L) the
residual stream after block ``i-1``, as in ``output_hidden_states`` of transformers;
attention layer ``i`` (0..L-1) is block ``i``'s attention pattern.
"""

from __future__ import annotations

import re

KINDS = ("hidden", "attn")
TOKEN_IDS = "token_ids"
ANSWER_LOGPROBS = "answer_logprobs"
ANSWER_ENTROPY = "answer_entropy"

_KEY_RE = re.compile(r"^layers\.(\d+)\.(hidden|attn)$")


def layer_key(layer: int, kind: str) -> str:
    """Return the key for ``kind`` ("hidden" or "attn") at ``layer``, e.g. ``layers.12.hidden``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if layer < 0:
        raise ValueError(f"layer must be >= 0, got {layer}")
    return f"layers.{layer}.{kind}"


def parse_key(key: str) -> tuple[int, str] | None:
    """Return ``(layer, kind)`` for a layer key, or ``None`` for any other key."""
    m = _KEY_RE.match(key)
    return (int(m.group(1)), m.group(2)) if m else None
