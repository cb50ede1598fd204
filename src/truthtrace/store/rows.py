"""Rows a chunk shares with the same key of its shard's first trace (chunk codec ``zstd-planes-4``).

Traces of one model asked with one chat template begin with the same prompt tokens (system
prompt, role markers), and a causal model computes nearly the same hidden states and attention
rows for the same prefix: bit for bit in the first layers, while deeper layers differ in a few
low bits after a few rows (the matrix products of another sequence length sum in another order).
Measured on 32 traces of the embedded model (``bench/bench_store.py``): layer 0 shares 24-27 rows
with the shard's first trace, layer 1 10 hidden and 13 attention rows, deeper layers 0-7; 10.1% of
the packed elements in all, 0.824x of pickle+gzip instead of 0.917x. A chunk may therefore leave out
its first ``shared_rows`` rows and take them from the chunk of the
same key in the first trace of its shard (the shard's *base*, always stored whole). What counts
as a row depends on the layout of the stored body:

- a dense 2-D ``layers.*`` tensor ``(T, d)`` (hidden states): row ``r`` is ``body[r]``;
- a ``tril`` attention body ``(..., T*(T+1)/2)``: row ``r`` of every map, i.e. the elements
  ``r*(r+1)/2 .. (r+1)*(r+2)/2 - 1`` of the last axis.

Rows are compared as bit patterns (so ``-0.0`` differs from ``0.0`` and a NaN only equals the very
same NaN): sharing is lossless by construction, and a row shared is exactly the base's row.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from truthtrace.store.planes import ChecksumError

_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _bits(t: torch.Tensor) -> np.ndarray:
    """An unsigned-integer numpy view of a CPU tensor's elements (same shape)."""
    return t.contiguous().view(torch.uint8).numpy().view(_BITS[t.element_size()]).reshape(t.shape)


def _tri(n: int) -> int:
    """Elements of the first ``n`` rows of a lower triangle."""
    return n * (n + 1) // 2


def _rows_within(elements: int) -> int:
    """Whole triangle rows held by the first ``elements`` elements of a row-by-row lower triangle."""
    return (math.isqrt(8 * elements + 1) - 1) // 2


def can_share(key: str, layout: str, body: torch.Tensor, base: torch.Tensor | None) -> bool:
    """True when ``body`` may take rows from ``base`` (the same key's stored body in the shard's first trace):
    a ``layers.*`` tensor, dense 2-D or ``tril``, of the base's dtype and non-row dimensions."""
    if base is None or not key.startswith("layers.") or body.dtype != base.dtype or body.dim() != base.dim():
        return False
    if layout == "tril":
        return body.dim() >= 1 and body.shape[:-1] == base.shape[:-1]
    return body.dim() == 2 and body.shape[1] == base.shape[1]


def shared_rows(layout: str, body: torch.Tensor, base: torch.Tensor) -> int:
    """How many leading rows ``body`` and ``base`` hold bit for bit (see the module docstring for rows).

    Rows are compared in blocks that double from 4, so the cost follows the rows shared, not the trace's length.

    Args:
        body, base: stored bodies that :func:`can_share`: ``(T, d)`` and ``(Tb, d)``, or ``(..., T*(T+1)/2)``
            and ``(..., Tb*(Tb+1)/2)``.
    """
    tril = layout == "tril"
    a, b = _bits(body), _bits(base)
    if tril:
        m = min(_rows_within(body.shape[-1]), _rows_within(base.shape[-1]))
        a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])  # (maps, P)
    else:
        m = min(body.shape[0], base.shape[0])
    n, step = 0, 4
    while n < m:
        k = min(m, n + step)
        if tril:  # every map must agree on every element of rows n..k-1
            same = (a[:, _tri(n):_tri(k)] == b[:, _tri(n):_tri(k)]).all(axis=0)
            if not same.all():
                return _rows_within(_tri(n) + int(np.argmin(same)))
        else:
            same = (a[n:k] == b[n:k]).all(axis=1)
            if not same.all():
                return n + int(np.argmin(same))
        n, step = k, 2 * step
    return m


def rest_planes(layout: str, planes: list[np.ndarray], body_shape: list[int], n: int) -> list[np.ndarray]:
    """The byte planes (``truthtrace.store.planes.split_planes`` of a body of ``body_shape``) of what a chunk stores
    after its first ``n`` shared rows: ``body[n:]`` of a ``(T, d)`` body, ``body[..., n*(n+1)/2:]`` of a triangle."""
    if n == 0:
        return planes
    if layout == "tril":
        lead, cut = math.prod(body_shape[:-1]), _tri(n)
        return [np.ascontiguousarray(p.reshape(lead, body_shape[-1])[:, cut:]).reshape(-1) for p in planes]
    row = math.prod(body_shape[1:])
    return [p[n * row:] for p in planes]


def entry_rows(entry: dict) -> int:
    """An entry's ``shared_rows`` (0 when absent); ValueError unless an int in ``0..T`` of its shape."""
    n, shape = entry.get("shared_rows", 0), entry["shape"]
    rows = shape[-1] if entry["layout"] == "tril" else (shape[0] if shape else 0)
    if type(n) is not int or not 0 <= n <= rows or (n and entry["layout"] != "tril" and len(shape) != 2):
        raise ValueError(f"shared_rows {n!r} does not fit a {entry['layout']} chunk of shape {shape}")
    return n


def rest_size(layout: str, shape: list[int], n: int) -> int:
    """Elements a chunk of logical ``shape`` stores after ``n`` shared rows (:func:`rest_planes`)."""
    if layout == "tril":
        return math.prod(shape[:-2]) * (_tri(shape[-1]) - _tri(n))
    return (shape[0] - n) * math.prod(shape[1:])


def join(layout: str, words: np.ndarray, base: torch.Tensor, n: int, shape: list[int]) -> np.ndarray:
    """The whole body's elements (an integer view, flat) from a chunk's stored ``words`` and ``n`` rows of ``base``.

    Args:
        words: the chunk's stored elements as an unsigned-integer array, flat.
        base: the shard base's stored body of the same key (``(Tb, d)`` or ``(..., Tb*(Tb+1)/2)``).
        shape: the chunk's logical shape (``(T, d)`` or ``(..., T, T)``).
    Raises:
        ChecksumError: when ``base`` cannot hold ``n`` rows of this chunk's shape: the chunk and its base
            disagree, so the shard is damaged.
    """
    bits = _bits(base)
    words = words.view(bits.dtype)
    if layout == "tril":
        lead, width, cut = math.prod(shape[:-2]), _tri(shape[-1]), _tri(n)
        if bits.shape[-1] < cut or math.prod(bits.shape[:-1]) != lead or n > shape[-1]:
            raise ChecksumError(f"{n} shared rows do not fit the shard's first trace {tuple(base.shape)}")
        out = np.empty((lead, width), dtype=words.dtype)
        out[:, :cut] = bits.reshape(lead, -1)[:, :cut]
        out[:, cut:] = words.reshape(lead, width - cut)
        return out.reshape(-1)
    if bits.shape[0] < n or list(bits.shape[1:]) != list(shape[1:]) or n > shape[0]:
        raise ChecksumError(f"{n} shared rows do not fit the shard's first trace {tuple(base.shape)}")
    return np.concatenate([bits[:n].reshape(-1), words.reshape(-1)])
