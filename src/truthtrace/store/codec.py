"""One tensor <-> one chunk of bytes: dtype policy, triangle packing, byte planes.

A chunk is what one ``(trace, key)`` pair becomes on disk. Encoding runs:

1. dtype policy: floating tensors whose key starts with ``layers.`` are cast to the
   store's ``storage_dtype``; if a finite value would not fit (``|x| > 65504`` for
   float16) the tensor is stored in ``overflow_dtype`` instead and the entry records why.
2. triangle packing: a ``*.attn`` tensor ``(..., T, T)`` whose strict upper triangle is
   all zero bits is stored as its lower triangle ``(..., T*(T+1)/2)`` (layout ``tril``).
3. byte planes (``truthtrace.store.planes``): the ``n`` elements of ``itemsize`` bytes are
   split into ``itemsize`` planes of ``n`` bytes, and each plane is stored as what pays:
   a zstd frame for exponent bytes, the bytes as they are for mantissa noise (chunk codec
   ``zstd-planes-3``: the chunk under one xxh3-64 hash); versions 1 (``zstd-planes``: every plane
   zstd) and 2 (``zstd-planes-2``: raw planes under a CRC-32) still decode.
4. shared rows (``zstd-planes-4``, the default): given the same key's stored body in the first trace
   of the shard (``base``), the chunk leaves out the leading rows it holds bit for bit
   (``truthtrace.store.rows``) and its entry records ``shared_rows``; decoding needs that base.

Decoding is the reverse and is bit-exact for the stored dtype.
"""

from __future__ import annotations

import math
import sys
from functools import lru_cache

import numpy as np
import torch

from truthtrace.dtypes import TENSOR_DTYPES, dtype_name
from truthtrace.store import rows
from truthtrace.store.planes import V1, V2, V3, V4, join_planes, plane_pieces, read_planes, split_planes

CODEC = "zstd-planes"  # the store's storage.codec: byte-plane chunks; each entry's codec names their version
CHUNK_CODEC = V4  # what encode writes unless told otherwise
CHUNK_CODECS = (V1, V2, V3, V4)  # every chunk version decode reads
LAYER_PREFIX = "layers."
ATTN_SUFFIX = ".attn"
# same-width integer views, used to look at bit patterns (so -0.0 counts as non-zero)
_BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_NP_BITS = {1: np.uint8, 2: np.int16, 4: np.int32, 8: np.int64}
_NP_DTYPES = {name: np.dtype(name) for name in TENSOR_DTYPES if name != "bfloat16"}  # numpy lacks bfloat16
_MAX_BITS = {torch.float16: 0x7BFF, torch.bfloat16: 0x7F7F}  # bits of the largest finite value

if sys.byteorder != "little":  # planes are defined on little-endian element bytes
    raise ImportError("truthtrace.store needs a little-endian machine")


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


def _at_limit(cast: torch.Tensor) -> bool:
    """False when no value of a cast float16/bfloat16 tensor is at the type's largest finite magnitude,
    inf or NaN, so no source value can have been out of range (two integer reductions, ~2x
    cheaper than an ``aminmax`` over the float32 source). True for other dtypes and devices."""
    top = _MAX_BITS.get(cast.dtype)
    if top is None or cast.device.type != "cpu":
        return True
    if cast.numel() == 0:
        return False
    bits = cast.detach().view(torch.int16).numpy()  # sign bit clear: int16 order is magnitude order
    return bool(bits.max() >= top or bits.view(np.uint16).max() >= 0x8000 + top)


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
    cast = t.to(TENSOR_DTYPES[storage_dtype])
    peak = _overflow(t, cast.dtype) if t.dtype != cast.dtype and _at_limit(cast) else None  # no cast, no overflow
    if peak is None:
        return cast, None
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
    bits = _BITS[t.element_size()]  # numpy counts ~3x faster than torch on a (9, 59, 59) map
    if np.count_nonzero(t.contiguous().view(bits).numpy()) != np.count_nonzero(packed.view(bits).numpy()):
        return None
    return packed


@lru_cache(maxsize=32)
def _tril_mask(n: int, copies: int) -> np.ndarray:
    """Where the lower triangle (diagonal included) lies in ``copies`` flat ``n x n`` maps, back to back."""
    mask = np.zeros(n * n, dtype=bool)
    mask[_tril_index(n)] = True
    return np.tile(mask, copies)


def _unpack_bits(bits: np.ndarray, n: int) -> np.ndarray:
    """Packed lower triangles ``(maps, n*(n+1)/2)`` (an integer view) -> ``(maps, n*n)``, zeros above."""
    maps = bits.shape[0]
    out = np.zeros((maps, n * n), dtype=bits.dtype)
    step = max(1, min(maps, 2**20 // max(1, n * n)))  # maps per boolean-mask assignment (mask <= 1 MiB)
    for i in range(0, maps, step):  # a tiled mask is ~2x a fancy-index scatter here
        part = min(step, maps - i)
        out[i:i + part].reshape(-1)[_tril_mask(n, part)] = bits[i:i + part].reshape(-1)
    return out


def unpack_tril(p: torch.Tensor, n: int) -> torch.Tensor:
    """Lower triangle ``(..., n*(n+1)/2)`` -> square ``(..., n, n)`` with zeros above the diagonal."""
    bits = p.contiguous().view(_BITS[p.element_size()]).reshape(-1, p.shape[-1]).numpy()
    return torch.from_numpy(_unpack_bits(bits, n)).view(p.dtype).reshape(*p.shape[:-1], n, n)


def _cast(key: str, t: torch.Tensor, storage_dtype: str) -> torch.Tensor:
    """``t`` cast to ``storage_dtype`` if it is a floating ``layers.*`` tensor (no range check), else ``t``."""
    if not key.startswith(LAYER_PREFIX) or not t.is_floating_point():
        return t
    return t.to(TENSOR_DTYPES[storage_dtype])


def _top_byte_at_limit(top: np.ndarray, dtype: torch.dtype) -> bool:
    """:func:`_at_limit` read off the byte plane of the sign and high exponent bits of a cast float16 or
    bfloat16 tensor (half the bytes: 9 vs 16 ms per 32 traces); conservative, True for other dtypes."""
    bits = _MAX_BITS.get(dtype)
    if bits is None:
        return True
    if top.size == 0:
        return False
    return bool(top.view(np.int8).max() >= bits >> 8 or top.max() >= 0x80 + (bits >> 8))


def _layout_body(key: str, stored: torch.Tensor) -> tuple[str, torch.Tensor]:
    """``(layout, body)`` of a tensor to store: causal maps as their lower triangle."""
    packed = try_pack_tril(key, stored)
    return ("dense", stored) if packed is None else ("tril", packed)


def encode_pieces(key: str, t: torch.Tensor, *, storage_dtype: str, overflow_dtype: str, level: int = 1,
                  codec: str = CHUNK_CODEC, hints: list[str] | None = None,
                  base: torch.Tensor | None = None) -> tuple[list, dict, torch.Tensor]:
    """:func:`encode` without joining the chunk: ``(pieces, entry, body)``, the chunk being the pieces
    (bytes or uint8 arrays) back to back, so a writer hands them to the file without a copy; ``body`` is
    the whole stored body (cast, triangles packed), what a later trace of the shard may share rows with."""
    if codec not in CHUNK_CODECS:
        raise ValueError(f"unknown chunk codec {codec!r}; known: {list(CHUNK_CODECS)}")
    source = dtype_name(t.dtype)
    t = t.detach().cpu()
    stored, fallback = _cast(key, t, storage_dtype), None
    layout, body = _layout_body(key, stored)
    planes = split_planes(body)
    if stored is not t and _top_byte_at_limit(planes[-1], stored.dtype):  # rare: check the values exactly
        stored, fallback = storage_cast(key, t, storage_dtype, overflow_dtype)
        layout, body = _layout_body(key, stored)
        planes = split_planes(body)
    n = rows.shared_rows(layout, body, base) if codec == V4 and rows.can_share(key, layout, body, base) else 0
    pieces, fields = plane_pieces(rows.rest_planes(layout, planes, list(body.shape), n), level, codec, hints)
    entry = {"shape": list(t.shape), "dtype": dtype_name(stored.dtype), "source_dtype": source,
             "layout": layout, "codec": codec, **fields, "nbytes": sum(fields["planes"])}
    if n:
        entry["shared_rows"] = n
    if fallback is not None:
        entry["fallback"] = fallback
    return pieces, entry, body


def encode(key: str, t: torch.Tensor, *, storage_dtype: str, overflow_dtype: str, level: int = 1,
           codec: str = CHUNK_CODEC, hints: list[str] | None = None,
           base: torch.Tensor | None = None) -> tuple[bytes, dict]:
    """Encode tensor ``t`` stored under ``key`` into ``(chunk_bytes, entry)``.

    ``entry`` holds ``shape`` (logical, unpacked), ``dtype`` (stored), ``source_dtype``,
    ``layout`` ("dense" or "tril"), ``codec``, ``planes`` (stored plane lengths; for
    ``zstd-planes-2`` also ``plane_codecs`` and ``crc32``, for ``zstd-planes-3``/``-4`` ``plane_codecs`` and
    ``xxh3_64``), ``nbytes``, ``shared_rows`` when rows are taken from ``base`` and, when the overflow
    fallback fired, ``fallback``. ``level`` is the zstd level, ``codec`` one of ``CHUNK_CODECS``;
    ``hints`` the ``plane_codecs`` of the same key in an earlier trace (planes that were raw
    there are stored raw untried); ``base`` the same key's stored body in the shard's first trace
    (``zstd-planes-4`` only). Raises ValueError for unsupported dtypes or an unknown codec.
    """
    pieces, entry, _ = encode_pieces(key, t, storage_dtype=storage_dtype, overflow_dtype=overflow_dtype,
                                     level=level, codec=codec, hints=hints, base=base)
    return b"".join(pieces), entry


def body_size(entry: dict) -> int:
    """Elements stored in a chunk: those of its shape, or of its lower triangles for layout ``tril``, less the
    ``shared_rows`` it takes from its shard's first trace."""
    return rows.rest_size(entry["layout"], entry["shape"], rows.entry_rows(entry))


def from_planes(planes: list[np.ndarray], entry: dict, unpack: bool = True,
                base: torch.Tensor | None = None) -> torch.Tensor:
    """The tensor ``entry`` describes from its decoded byte planes (``itemsize`` arrays of
    ``body_size(entry)`` bytes) and, for ``shared_rows``, the base body: see :func:`decode`."""
    dtype = TENSOR_DTYPES[entry["dtype"]]
    shape = list(entry["shape"])
    tril = entry["layout"] == "tril"
    body_shape = shape[:-2] + [shape[-1] * (shape[-1] + 1) // 2] if tril else shape
    words = join_planes(planes)
    shared = entry.get("shared_rows", 0)
    if shared:
        if base is None:
            raise ValueError("the chunk shares rows with its shard's first trace, which was not given")
        words = rows.join(entry["layout"], words.view(_NP_BITS[dtype.itemsize]).reshape(-1), base, shared, shape)
    if words.size == 0:  # torch cannot view an empty (0, w) byte array as w-byte elements
        return torch.empty(shape if tril and unpack else body_shape, dtype=dtype)
    if tril and unpack:  # rebuilt in numpy, one tensor made at the end
        words = _unpack_bits(words.view(_NP_BITS[dtype.itemsize]).reshape(-1, body_shape[-1]), shape[-1])
        body_shape = shape
    np_dtype = _NP_DTYPES.get(entry["dtype"])
    if np_dtype is not None:  # one torch call instead of three: ~5 ms of a 100 ms store read
        return torch.from_numpy(words.view(np_dtype).reshape(body_shape))
    return torch.from_numpy(words.view(np.uint8)).view(dtype).reshape(body_shape)


def decode(chunk: bytes | memoryview, entry: dict, *, unpack: bool = True,
           base: torch.Tensor | None = None) -> torch.Tensor:
    """Decode one chunk described by ``entry`` back to a tensor in the stored dtype.

    Returns the logical shape (square attention maps rebuilt, zeros above the diagonal)
    unless ``unpack`` is False, in which case a ``tril`` chunk comes back as
    ``(..., T*(T+1)/2)``. ``base``: the same key's packed body in the shard's first trace
    (``decode(..., unpack=False)`` of its chunk), needed when the entry has ``shared_rows``.
    Raises ``zstandard.ZstdError``, ``planes.ChecksumError`` or ValueError on corrupt bytes;
    callers wrap these with file and key context.
    """
    if entry["codec"] not in CHUNK_CODECS:
        raise ValueError(f"unknown codec {entry['codec']!r}")
    width = TENSOR_DTYPES[entry["dtype"]].itemsize
    return from_planes(read_planes(chunk, entry, body_size(entry), width), entry, unpack, base)


def entry_sizes(entry: dict) -> tuple[int, int]:
    """``(raw, packed)`` byte sizes of a chunk in its stored dtype: dense, and after triangle packing."""
    itemsize = TENSOR_DTYPES[entry["dtype"]].itemsize
    shape = entry["shape"]
    raw = math.prod(shape) * itemsize
    if entry["layout"] != "tril":
        return raw, raw
    lead = math.prod(shape[:-2])
    return raw, lead * (shape[-1] * (shape[-1] + 1) // 2) * itemsize
