"""Multi-head attention on ``torch.nn.functional.scaled_dot_product_attention`` with a chosen kernel.

Backends (``backend=``):

- ``"flash"``, ``"efficient"``, ``"math"``: SDPA restricted to one kernel through
  ``torch.nn.attention.sdpa_kernel`` (``SDPBackend.FLASH_ATTENTION``, ``EFFICIENT_ATTENTION``, ``MATH``).
  Flash has a CPU kernel in torch >= 2.3 and a CUDA one; memory-efficient attention is CUDA only.
- ``"xformers"``: ``xformers.ops.memory_efficient_attention`` (CUDA), used only when the package is installed.
- ``"auto"``: the backends that run on the inputs' device and dtype, in the order flash, efficient,
  xformers, math. The SDPA ones are handed to ``sdpa_kernel`` together, so torch still falls back to the
  next one for inputs a fused kernel rejects (e.g. an arbitrary mask on CUDA flash).

Which backends run on a device is found by one tiny probe call per (device type, dtype), cached.
Masks are boolean with ``True`` = may attend, as in SDPA. Every query must see at least one key.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from truthtrace.nn.positional import RotaryEmbedding

BACKENDS = ("auto", "flash", "efficient", "math", "xformers")
AUTO_ORDER = ("flash", "efficient", "xformers", "math")
SDPA_KERNELS = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                "math": SDPBackend.MATH}


def check_backend(backend: str) -> str:
    """``backend`` if it is one of :data:`BACKENDS`; ValueError naming the choices otherwise."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def combine_masks(mask: torch.Tensor | None, causal: bool, tq: int, tk: int, device: torch.device) -> torch.Tensor:
    """One boolean mask broadcasting to ``(B, H, Tq, Tk)``: ``mask`` and, when ``causal``, key <= query.

    The causal part is aligned to the end (query ``i`` of ``Tq`` sees keys ``<= i + Tk - Tq``), as in SDPA.
    """
    out = mask
    if causal:
        tri = torch.ones(tq, tk, dtype=torch.bool, device=device).tril(diagonal=tk - tq)
        out = tri if out is None else out & tri
    return out


def padding_mask(key_padding: torch.Tensor) -> torch.Tensor:
    """Key padding ``(B, Tk)`` bool (True = a real token) -> attention mask ``(B, 1, 1, Tk)``."""
    if key_padding.dtype != torch.bool or key_padding.ndim != 2:
        raise ValueError(f"key_padding must be a (B, T) bool tensor, got {key_padding.dtype} "
                         f"{tuple(key_padding.shape)}")
    return key_padding[:, None, None, :]


def xformers_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                       causal: bool, dropout_p: float) -> torch.Tensor:
    """Attention through xformers: ``(B, H, T, hd)`` in and out; ``mask`` broadcasts to ``(B, H, Tq, Tk)``."""
    import xformers.ops as xops  # optional: only this backend needs it

    bias = None
    if mask is not None:
        mask = combine_masks(mask, causal, q.shape[-2], k.shape[-2], q.device)
        shape = (q.shape[0], q.shape[1], q.shape[-2], k.shape[-2])
        bias = torch.zeros(shape, dtype=q.dtype, device=q.device).masked_fill(~mask.expand(shape), float("-inf"))
    elif causal:
        bias = xops.LowerTriangularMask()
    out = xops.memory_efficient_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                          attn_bias=bias, p=dropout_p)
    return out.transpose(1, 2)


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, causal: bool,
         dropout_p: float, kernels: list[SDPBackend]) -> torch.Tensor:
    """SDPA restricted to ``kernels`` (tried in that order): ``(B, H, Tq, hd)`` -> ``(B, H, Tq, hd)``."""
    if mask is not None and causal:  # SDPA takes one or the other
        mask, causal = combine_masks(mask, True, q.shape[-2], k.shape[-2], q.device), False
    with sdpa_kernel(kernels, set_priority=True):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=causal)


def run_backend(backend: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                causal: bool = False, dropout_p: float = 0.0) -> torch.Tensor:
    """Attention with exactly one concrete ``backend`` (not ``"auto"``): ``(B, H, Tq, hd)`` out."""
    if backend == "xformers":
        return xformers_attention(q, k, v, mask, causal, dropout_p)
    return sdpa(q, k, v, mask, causal, dropout_p, [SDPA_KERNELS[backend]])


@functools.lru_cache(maxsize=None)
def probe_backend(backend: str, device_type: str, dtype: torch.dtype) -> str:
    """Why ``backend`` cannot run on ``device_type``/``dtype`` ("" if it can); one tiny call, cached."""
    if backend == "xformers" and importlib.util.find_spec("xformers") is None:
        return "xformers is not installed (pip install xformers)"
    x = torch.randn(1, 1, 8, 8, device=device_type).to(dtype)
    try:
        with warnings.catch_warnings():  # torch warns about each kernel it rejects
            warnings.simplefilter("ignore")
            run_backend(backend, x, x, x)
    except (RuntimeError, NotImplementedError, ImportError) as err:
        return f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"
    return ""


def available_backends(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[str, ...]:
    """The concrete backends that run on ``device`` with ``dtype``, in :data:`AUTO_ORDER`."""
    device_type = torch.device(device).type
    return tuple(b for b in AUTO_ORDER if not probe_backend(b, device_type, dtype))


def resolve_backend(backend: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> str:
    """The concrete backend ``backend`` means on ``device``: the first available one for ``"auto"``.

    Raises:
        ValueError: for an unknown name, or an explicit backend that cannot run here (with the reason).
    """
    check_backend(backend)
    if backend == "auto":
        return available_backends(device, dtype)[0]  # math always runs
    reason = probe_backend(backend, torch.device(device).type, dtype)
    if reason:
        raise ValueError(f"attention backend {backend!r} is not available on {torch.device(device).type} "
                         f"with {dtype}: {reason}; use backend='auto'")
    return backend


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
              causal: bool = False, dropout_p: float = 0.0, backend: str = "auto") -> torch.Tensor:
    """``softmax(q k^T / sqrt(hd) + mask) v`` with the chosen backend.

    Args:
        q: ``(B, H, Tq, hd)``; k, v: ``(B, H, Tk, hd)``.
        mask: bool, broadcasting to ``(B, H, Tq, Tk)``, True = may attend.
        causal: also mask keys after each query.
        dropout_p: attention dropout (pass 0 in eval).
        backend: one of :data:`BACKENDS`.
    Returns:
        ``(B, H, Tq, hd)``.
    Raises:
        ValueError: for an unknown backend or an explicit one unavailable on ``q``'s device and dtype.
    """
    chosen = resolve_backend(backend, q.device, q.dtype)
    if backend == "auto" and chosen != "xformers":
        sdpa_ok = [SDPA_KERNELS[b] for b in available_backends(q.device, q.dtype) if b in SDPA_KERNELS]
        return sdpa(q, k, v, mask, causal, dropout_p, sdpa_ok)
    return run_backend(chosen, q, k, v, mask, causal, dropout_p)


class MultiHeadAttention(nn.Module):
    """Self-attention ``(B, T, d)`` -> ``(B, T, d)`` with ``n_heads`` heads and optional RoPE on q and k.

    Args:
        d_model: model width ``d`` (a multiple of ``n_heads``).
        n_heads: heads ``H``; each has ``hd = d / H`` channels.
        dropout: attention-weight dropout while training.
        backend: attention kernel, one of :data:`BACKENDS`; resolved on the inputs' device at each call.
        rotary: a :class:`~truthtrace.nn.positional.RotaryEmbedding` of ``hd`` channels, or None.
        bias: biases in the q/k/v and output projections.
    Raises:
        ValueError: if ``d_model`` is not a multiple of ``n_heads``, ``dropout`` is not in [0, 1),
        ``backend`` is unknown or ``rotary`` has another head size.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, backend: str = "auto",
                 rotary: RotaryEmbedding | None = None, bias: bool = True):
        super().__init__()
        if not (n_heads >= 1 and d_model >= 1 and d_model % n_heads == 0):
            raise ValueError(f"d_model must be a positive multiple of n_heads, got {d_model} and {n_heads}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if rotary is not None and rotary.head_dim != d_model // n_heads:
            raise ValueError(f"rotary has head_dim {rotary.head_dim}, the heads have {d_model // n_heads}")
        self.n_heads, self.dropout, self.backend = n_heads, float(dropout), check_backend(backend)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)
        self.rotary = rotary

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None = None, causal: bool = False,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        """Attend over ``x`` ``(B, T, d)``.

        Args:
            key_padding: ``(B, T)`` bool, True = a real token; padded tokens are never attended to.
            causal: each token sees only itself and earlier tokens.
            positions: ``(T,)`` or ``(B, T)`` RoPE positions (default ``0 .. T - 1``); ignored without rotary.
        Returns:
            ``(B, T, d)``.
        """
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)  # (B, H, T, hd)
        if self.rotary is not None:
            q, k = self.rotary(q, k, positions)
        mask = None if key_padding is None else padding_mask(key_padding)
        y = attention(q, k, v, mask, causal, self.dropout if self.training else 0.0, self.backend)
        return self.out(y.transpose(1, 2).reshape(b, t, d))

    def extra_repr(self) -> str:
        return f"n_heads={self.n_heads}, dropout={self.dropout}, backend={self.backend!r}"
