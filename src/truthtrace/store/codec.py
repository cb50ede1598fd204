"""One tensor <-> one chunk of bytes: dtype policy, triangle packing, byte planes, zstd.

A chunk is what one ``(trace, key)`` pair becomes on disk. Encoding runs:

1. dtype policy: floating tensors whose key starts with ``layers.`` are cast to the
   store's ``storage_dtype``; if a finite value would not fit (``|x| > 65504`` for
   float16) the tensor is stored in ``overflow_dtype`` instead and the entry records why.
2. triangle packing: a ``*.attn`` tensor ``(..., T, T)`` whose strict upper triangle is
   all zero bits is stored as its lower triangle ``(..., T*(T+1)/2)`` (layout ``tril``).
3. byte planes: the ``n`` elements of ``itemsize`` bytes are split into ``itemsize``
   planes of ``n`` bytes (plane ``j`` holds byte ``j`` of every element, little-endian).
   Exponent bytes compress well, mantissa noise does not; keeping them apart lets zstd
   build a good entropy table for each.
4. each plane becomes its own zstd frame, with zstd's content checksum (XXH64), so
   every decompress checks the bytes it returns. The chunk is the frames back to back;
   the entry lists their lengths in ``planes``.

Decoding is the reverse and is bit-exact for the stored dtype.
"""

from __future__ import annotations

import math
import sys
import threading
from functools import lru_cache

import numpy as np
import torch
import zstandard

from truthtrace.dtypes import TENSOR_DTYPES, dtype_name

CODEC = "zstd-planes"
LAYER_PREFIX = "layers."
ATTN_SUFFIX = ".attn"
# same-width integer views, used to look at bit patterns (so -0.0 counts as non-zero)
_BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}

if sys.byteorder != "little":  # planes are defined on little-endian element bytes
    raise ImportError("truthtrace.store needs a little-endian machine")


def compressor(level: int) -> zstandard.ZstdCompressor:
    """A zstd compressor at ``level`` writing content checksums (reuse it: not thread-safe)."""
    return zstandard.ZstdCompressor(level=level, write_checksum=True)


_local = threading.local()


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's zstd decompressor; reused because a fresh context costs ~75 us per chunk."""
    if not hasattr(_local, "dctx"):
        _local.dctx = zstandard.ZstdDecompressor()
    return _local.dctx


def _overflow(t: torch.Tensor, target: torch.dtype) -> float | None:
    """Largest finite ``|x|`` in ``t`` if some finite value exceeds ``target``'s range, else None."""
    limit = torch.finfo(target).max
    if t.numel() == 0 or t.dtype == target or torch.finfo(t.dtype).max <= limit:
        return None
    low, high = (float(v) for v in torch.aminmax(t))  # one pass; NaN fails both tests below
    if -limit <= low and high <= limit:
        return None
    mag = t.abs()
    finite = mag[(mag > limit) & torch.isfinite(t)]  # inf is not an overflow: it stays inf
    return float(finite.max()) if finite.numel() else None


def storage_cast(key: str, t: torch.Tensor, storage_dtype: str,
                 overflow_dtype: str) -> tuple[torch.Tensor, dict | None]:
    """Apply the dtype policy to tensor ``t`` stored under ``key``.

    Returns ``(tensor_to_store, fallback)`` where ``fallback`` is None or
    ``{"requested": dtype, "reason": text}`` when the value range forced a wider dtype
    (``overflow_dtype``, else float32, else the source dtype). Tensors that are not
    floating ``layers.*`` tensors are returned unchanged.
    """
    if not key.startswith(LAYER_PREFIX) or not t.is_floating_point():
        return t, None
    peak = _overflow(t, TENSOR_DTYPES[storage_dtype])
    if peak is None:
        return t.to(TENSOR_DTYPES[storage_dtype]), None
    reason = (f"overflow: max |x| = {peak:.6g} > {storage_dtype} max "
              f"{torch.finfo(TENSOR_DTYPES[storage_dtype]).max:.6g}")
    for name in (overflow_dtype, "float32"):
        if _overflow(t, TENSOR_DTYPES[name]) is None:
            return t.to(TENSOR_DTYPES[name]), {"requested": storage_dtype, "reason": reason}
    return t, {"requested": storage_dtype, "reason": reason + "; kept the source dtype"}


@lru_cache(maxsize=64)
def _tril_index(n: int) -> np.ndarray:
    """Flat positions ``r * n + c`` of the lower triangle (diagonal included), ``(n*(n+1)/2,)``."""
    rows, cols = np.tril_indices(n)
    return rows * n + cols


def _is_square_attn(key: str, t: torch.Tensor) -> bool:
    return key.endswith(ATTN_SUFFIX) and t.dim() >= 2 and t.shape[-1] == t.shape[-2]


def pack_tril(t: torch.Tensor) -> torch.Tensor:
    """``(..., T, T)`` -> lower triangle ``(..., T*(T+1)/2)``, row by row."""
    n = t.shape[-1]
    bits = t.contiguous().view(_BITS[t.element_size()]).reshape(-1, n * n).numpy()
    packed = np.take(bits, _tril_index(n), axis=1)  # numpy's take is ~2x torch's index_select here
    return torch.from_numpy(packed).view(t.dtype).reshape(*t.shape[:-2], -1)


def try_pack_tril(key: str, t: torch.Tensor) -> torch.Tensor | None:
    """Lower triangle of ``t`` if ``key`` names a square attention map ``(..., T, T)`` whose
    strict upper triangle is all zero bits (so -0.0 or NaN keeps it dense), else None."""
    if not _is_square_attn(key, t) or t.numel() == 0:
        return None
    packed = pack_tril(t)
    bits = _BITS[t.element_size()]
    if torch.count_nonzero(t.contiguous().view(bits)) != torch.count_nonzero(packed.view(bits)):
        return None
    return packed


def unpack_tril(p: torch.Tensor, n: int) -> torch.Tensor:
    """Lower triangle ``(..., n*(n+1)/2)`` -> square ``(..., n, n)`` with zeros above the diagonal."""
    bits = p.contiguous().view(_BITS[p.element_size()]).reshape(-1, p.shape[-1]).numpy()
    out = np.zeros((bits.shape[0], n * n), dtype=bits.dtype)
    out[:, _tril_index(n)] = bits  # numpy's scatter is 1-2x faster than torch's index_copy_ here
    return torch.from_numpy(out).view(p.dtype).reshape(*p.shape[:-1], n, n)


def split_planes(body: torch.Tensor) -> list[np.ndarray]:
    """Byte planes of a tensor: ``itemsize`` arrays of ``numel`` bytes, plane ``j`` = byte ``j``."""
    width = body.element_size()
    flat = body.contiguous().reshape(-1).view(torch.uint8).numpy()
    if width == 2:  # fp16/bf16, the bulk of a store: shifts beat a strided copy ~1.5x
        words = flat.view(np.uint16)
        return [(words & 0xFF).astype(np.uint8), (words >> 8).astype(np.uint8)]
    rows = flat.reshape(-1, width)
    return [np.ascontiguousarray(rows[:, j]) for j in range(width)]


def join_planes(planes: list[np.ndarray]) -> np.ndarray:
    """Inverse of ``split_planes``: ``(numel, itemsize)`` uint8, each row one element's bytes."""
    if len(planes) == 2:
        words = planes[1].astype(np.uint16)
        words <<= 8
        words |= planes[0]
        return words.view(np.uint8).reshape(-1, 2)
    out = np.empty((planes[0].size, len(planes)), dtype=np.uint8)
    for j, plane in enumerate(planes):
        out[:, j] = plane
    return out


def encode(key: str, t: torch.Tensor, *, storage_dtype: str, overflow_dtype: str,
           cctx: zstandard.ZstdCompressor) -> tuple[bytes, dict]:
    """Encode tensor ``t`` stored under ``key`` into ``(chunk_bytes, entry)``.

    ``entry`` holds ``shape`` (logical, unpacked), ``dtype`` (stored), ``source_dtype``,
    ``layout`` ("dense" or "tril"), ``codec``, ``planes`` (frame lengths), ``nbytes``
    and, when the overflow fallback fired, ``fallback``. Raises ValueError for
    unsupported dtypes.
    """
    source = dtype_name(t.dtype)
    t = t.detach().cpu()
    stored, fallback = storage_cast(key, t, storage_dtype, overflow_dtype)
    packed = try_pack_tril(key, stored)
    layout, body = ("dense", stored) if packed is None else ("tril", packed)
    frames = [cctx.compress(plane) for plane in split_planes(body)]
    entry = {"shape": list(t.shape), "dtype": dtype_name(stored.dtype), "source_dtype": source,
             "layout": layout, "codec": CODEC, "planes": [len(f) for f in frames],
             "nbytes": sum(len(f) for f in frames)}
    if fallback is not None:
        entry["fallback"] = fallback
    return b"".join(frames), entry


def decode(chunk: bytes | memoryview, entry: dict, *, unpack: bool = True) -> torch.Tensor:
    """Decode one chunk described by ``entry`` back to a tensor in the stored dtype.

    Returns the logical shape (square attention maps rebuilt, zeros above the diagonal)
    unless ``unpack`` is False, in which case a ``tril`` chunk comes back as
    ``(..., T*(T+1)/2)``. Raises ``zstandard.ZstdError`` or ValueError on corrupt bytes;
    callers wrap these with file and key context.
    """
    if entry["codec"] != CODEC:
        raise ValueError(f"unknown codec {entry['codec']!r}")
    dtype = TENSOR_DTYPES[entry["dtype"]]
    shape = list(entry["shape"])
    tril = entry["layout"] == "tril"
    body_shape = shape[:-2] + [shape[-1] * (shape[-1] + 1) // 2] if tril else shape
    n = math.prod(body_shape)
    dctx, view, pos, planes = _decompressor(), memoryview(chunk), 0, []
    for j, size in enumerate(entry["planes"]):
        frame = view[pos:pos + size]
        pos += size
        if zstandard.frame_content_size(frame) != n:
            raise ValueError(f"plane {j} holds the wrong number of bytes")
        planes.append(np.frombuffer(dctx.decompress(frame), dtype=np.uint8))
    if pos != len(view) or not planes:
        raise ValueError(f"chunk is {len(view)} bytes, its planes add up to {pos}")
    body = torch.from_numpy(join_planes(planes)).view(dtype).reshape(body_shape)
    return unpack_tril(body, shape[-1]) if tril and unpack else body


def entry_sizes(entry: dict) -> tuple[int, int]:
    """``(raw, packed)`` byte sizes of a chunk in its stored dtype: dense, and after triangle packing."""
    itemsize = TENSOR_DTYPES[entry["dtype"]].itemsize
    shape = entry["shape"]
    raw = math.prod(shape) * itemsize
    if entry["layout"] != "tril":
        return raw, raw
    lead = math.prod(shape[:-2])
    return raw, lead * (shape[-1] * (shape[-1] + 1) // 2) * itemsize
