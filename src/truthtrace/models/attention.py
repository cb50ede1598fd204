"""Attention backends for trace capture: eager where attention maps are kept, SDPA elsewhere.

transformers runs one attention function per model, named by ``config._attn_implementation`` and
looked up in its ``AttentionInterface``. :func:`hybrid_implementation` registers one that branches on
``module.layer_idx``: the layers whose maps are kept run the model's own eager attention and return
their weights, every other layer runs ``scaled_dot_product_attention`` and returns none. The same name
is registered in ``AttentionMaskInterface`` with the eager (additive float) mask, which both kernels
accept: a name missing there silently gives the model no causal mask at all.

With ``output_attentions`` a hybrid model's ``out.attentions`` holds only the eager layers' maps, in
layer order; :func:`attention_by_layer` gives them back their layer indices. transformers is imported
where a backend is registered, not when this module loads (the CLI starts without it).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from functools import partial
from typing import Iterable, Sequence

ATTN_BACKENDS = ("auto", "eager", "sdpa", "hybrid")
HYBRID_PREFIX = "truthtrace_hybrid"
_HYBRID_LAYERS: dict[str, tuple[int, ...]] = {}  # registered implementation name -> layers run eager


def check_backend(backend: str, attentions: bool) -> None:
    """ValueError unless ``backend`` is one of :data:`ATTN_BACKENDS` and can return the maps asked for."""
    if backend not in ATTN_BACKENDS:
        raise ValueError(f"attn_backend must be one of {', '.join(ATTN_BACKENDS)}, got {backend!r}")
    if backend == "sdpa" and attentions:
        raise ValueError("attn_backend 'sdpa' returns no attention maps: keep none (--no-attentions / "
                         "attentions=False) or use 'auto', 'hybrid' or 'eager'")


def resolve_backend(backend: str, kept_layers: Sequence[int], n_layers: int) -> str:
    """The backend a run uses: ``backend`` itself, or for "auto" the cheapest one returning the kept maps.

    Args:
        backend: one of :data:`ATTN_BACKENDS`.
        kept_layers: the layers whose attention maps are stored (empty when none are).
        n_layers: the model's number of blocks L.

    Returns:
        "sdpa" when no map is kept, "eager" when every layer's is, else "hybrid" (for "auto").
    """
    if backend != "auto":
        return backend
    if not kept_layers:
        return "sdpa"
    return "eager" if set(range(n_layers)) <= set(kept_layers) else "hybrid"


def implementation_name(backend: str, kept_layers: Sequence[int]) -> str:
    """transformers' ``attn_implementation`` for a resolved ``backend`` ("eager", "sdpa" or "hybrid")."""
    if backend == "hybrid":
        return hybrid_implementation(kept_layers)
    if backend in ("eager", "sdpa"):
        return backend
    raise ValueError(f"no attention implementation for backend {backend!r} (resolve 'auto' first)")


def hybrid_implementation(eager_layers: Iterable[int]) -> str:
    """Register (once) the hybrid attention running ``eager_layers`` eager and the rest SDPA; returns its name.

    The name (``truthtrace_hybrid_0_4``, ``truthtrace_hybrid_none``) is valid for ``from_pretrained(...,
    attn_implementation=name)`` and ``model.set_attn_implementation(name)``.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    layers = tuple(sorted({int(i) for i in eager_layers}))
    name = HYBRID_PREFIX + ("".join(f"_{i}" for i in layers) if layers else "_none")
    if name not in _HYBRID_LAYERS:
        AttentionInterface.register(name, partial(hybrid_attention_forward, frozenset(layers)))
        AttentionMaskInterface.register(name, eager_mask)  # else: no causal mask
        _HYBRID_LAYERS[name] = layers
    return name


def hybrid_layers(implementation: str | None) -> tuple[int, ...] | None:
    """The layers a registered hybrid implementation runs eager; None for any other implementation."""
    return _HYBRID_LAYERS.get(implementation or "")


def hybrid_attention_forward(eager_layers: frozenset, module, query, key, value, attention_mask, **kwargs):
    """One layer's attention: eager with weights for ``eager_layers`` when maps are requested, else SDPA.

    Args:
        module: the attention module (its ``layer_idx`` picks the kernel).
        query: ``(B, H, Q, D)``; key, value: ``(B, H_kv, K, D)``.
        attention_mask: the additive float mask ``(B, 1, Q, K)`` (or None).

    Returns:
        ``(output (B, Q, H, D), weights (B, H, Q, K) or None)`` as every transformers attention function.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    layer = getattr(module, "layer_idx", None)
    if layer is None:
        raise ValueError(f"{type(module).__name__} has no layer_idx: the hybrid attention backend cannot tell "
                         "its layer; use --attn-backend eager")
    wanted = kwargs.get("output_attentions", getattr(module.config, "output_attentions", False))
    if wanted and layer in eager_layers:
        return eager_forward_of(module)(module, query, key, value, attention_mask, **kwargs)
    kwargs.pop("output_attentions", None)  # SDPA warns when asked for weights it cannot return
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def eager_forward_of(module):
    """The eager attention function of ``module``'s model family (Llama's when its module defines none)."""
    from transformers.models.llama.modeling_llama import eager_attention_forward

    return getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", eager_attention_forward)


def attention_by_layer(model, attentions) -> dict:
    """A forward pass's ``out.attentions`` keyed by true layer index.

    Args:
        model: the model that ran (its implementation tells which layers returned maps).
        attentions: a tuple of ``(B, H, Q, K)`` maps: one per layer (None for layers without one), or —
            under a hybrid implementation — one per eager layer, in layer order. None = no maps.

    Returns:
        ``{layer: (B, H, Q, K)}`` for the layers that returned a map.
    """
    if not attentions:
        return {}
    n_layers = model.config.num_hidden_layers
    if len(attentions) == n_layers:
        return {i: a for i, a in enumerate(attentions) if a is not None}
    impl = getattr(model.config, "_attn_implementation", None)
    layers = hybrid_layers(impl)
    if layers is None or len(layers) != len(attentions):
        raise ValueError(f"{len(attentions)} attention maps from a model of {n_layers} layers running "
                         f"attention {impl!r}: cannot tell which layers they belong to")
    return dict(zip(layers, attentions))


@contextmanager
def attention_implementation(model, name: str):
    """Run the block with ``model`` switched to attention implementation ``name``, then switch back.

    Raises:
        ValueError: the model cannot switch (transformers leaves it unchanged and only logs a warning).
    """
    before = getattr(model.config, "_attn_implementation", None)
    if before == name:
        yield model
        return
    switch_attention(model, name)
    try:
        yield model
    finally:
        if before is not None:
            switch_attention(model, before)


def switch_attention(model, name: str) -> None:
    """``model.set_attn_implementation(name)``, checked (ValueError when the model kept another one)."""
    setter = getattr(model, "set_attn_implementation", None)
    if setter is not None:
        setter(name)
    now = getattr(model.config, "_attn_implementation", None)
    if now != name:
        raise ValueError(f"{type(model).__name__} cannot switch its attention to {name!r} (it runs {now!r}); "
                         "load it with that implementation, or use --attn-backend eager")
