"""Byte planes of a chunk and how each one is stored.

A tensor's ``n`` elements of ``w`` bytes become ``w`` planes of ``n`` bytes (plane ``j`` holds
byte ``j`` of every element, little-endian). Four chunk versions store the planes:

- ``zstd-planes`` (version 1): every plane is one zstd frame. Still read; written only on request.
- ``zstd-planes-2``: each plane is what pays, chosen at write time: a zstd frame when it is at
  most ``1 - MIN_SAVING`` of the plane (fp16 sign/exponent bytes: ~0.7), else the plane's bytes
  as they are (``raw``: fp16 low mantissa bytes are close to random, zstd saves < 1% on them at
  the price of its time). Raw planes are covered by one CRC-32 in the entry; zstd frames carry
  their own content checksum. Planes above ``SAMPLE_FROM`` bytes are first tried on a sample of
  ``SAMPLE_BYTES``; when even the sample does not compress, the plane is stored raw untried.
  A writer passes hints from the same key of the previous trace, so a plane that was raw there is
  stored raw without a try (every ``REMEASURE``-th trace measures every plane again).
- ``zstd-planes-3``: planes chosen as in version 2, but the whole chunk is
  covered by one xxh3-64 hash in the entry, checked before anything is decoded, and zstd frames
  carry no checksum of their own. xxh3 runs at ~70 GB/s here against CRC-32's ~6 GB/s
  (measured: 0.015 vs 0.19 ms over the raw planes of a trace).
- ``zstd-planes-4`` (written by default): version 3's planes and hash; the chunk may hold only the
  rows after the ``shared_rows`` it shares with its shard's first trace (``truthtrace.store.rows``).
"""

from __future__ import annotations

import threading
import zlib

import numpy as np
import torch
import xxhash
import zstandard

V1 = "zstd-planes"
V2 = "zstd-planes-2"
V3 = "zstd-planes-3"
V4 = "zstd-planes-4"  # version 3's planes; a chunk may take its first rows from its shard's first trace (rows.py)
HASHED = (V3, V4)  # versions whose chunk is under one xxh3-64 hash
MIN_SAVING = 0.05  # a zstd frame is kept only if it saves at least 5% of the plane
SAMPLE_FROM = 8192
SAMPLE_BYTES = 4096  # four evenly spaced 1 KiB slices
REMEASURE = 16  # a writer measures every plane afresh on every 16th trace
_local = threading.local()


class ChecksumError(Exception):
    """A chunk does not match the checksum its entry records (CRC-32 or xxh3-64): the bytes are damaged."""


def compressor(level: int, checksum: bool = True) -> zstandard.ZstdCompressor:
    """This thread's zstd compressor at ``level``, writing content checksums unless told not to
    (a context is not thread-safe, so each thread keeps its own)."""
    cache = _local.__dict__.setdefault("cctx", {})
    if (level, checksum) not in cache:
        cache[level, checksum] = zstandard.ZstdCompressor(level=level, write_checksum=checksum)
    return cache[level, checksum]


def chunk_hash(chunk: bytes | memoryview) -> str:
    """xxh3-64 of a ``zstd-planes-3`` chunk's bytes, as 16 hex digits (JSON-safe, unlike a 64-bit int)."""
    return xxhash.xxh3_64_hexdigest(chunk)


def decompressor() -> zstandard.ZstdDecompressor:
    """This thread's zstd decompressor; reused because a fresh context costs ~75 us per chunk."""
    if not hasattr(_local, "dctx"):
        _local.dctx = zstandard.ZstdDecompressor()
    return _local.dctx


def split_planes(body: torch.Tensor) -> list[np.ndarray]:
    """Byte planes of a tensor: ``itemsize`` arrays of ``numel`` bytes, plane ``j`` = byte ``j``."""
    width = body.element_size()
    flat = body.contiguous().reshape(-1).view(torch.uint8).numpy()
    if width == 2:  # fp16/bf16, the bulk of a store: a truncating cast and a shift beat a strided copy
        words = flat.view(np.uint16)
        return [words.astype(np.uint8), (words >> 8).astype(np.uint8)]
    rows = flat.reshape(-1, width)
    return [np.ascontiguousarray(rows[:, j]) for j in range(width)]


def join_planes(planes: list[np.ndarray]) -> np.ndarray:
    """Inverse of ``split_planes``: a new ``(numel, itemsize)`` uint8 array, each row one element's bytes."""
    if len(planes) == 2:  # widen, shift and or in place: ~20% faster than a shift into a new array
        words = planes[1].astype(np.uint16)
        words <<= 8
        words |= planes[0]
        return words.view(np.uint8).reshape(-1, 2)
    out = np.empty((planes[0].size, len(planes)), dtype=np.uint8)
    for j, plane in enumerate(planes):
        out[:, j] = plane
    return out


def _sample(plane: np.ndarray) -> np.ndarray:
    """``SAMPLE_BYTES`` of ``plane`` in four evenly spaced slices."""
    piece, step = SAMPLE_BYTES // 4, plane.size // 4
    return np.concatenate([plane[i * step:i * step + piece] for i in range(4)])


def _pays(size: int, stored: int) -> bool:
    return stored <= (1 - MIN_SAVING) * size


def code_plane(plane: np.ndarray, level: int, hint: str | None = None,
               checksum: bool = True) -> tuple[bytes | np.ndarray, str]:
    """``(stored bytes, "zstd" or "raw")`` for one plane under the ``zstd-planes-2``/``-3`` rule.

    ``hint`` is how the same plane was stored in an earlier trace: "raw" stores it raw untried,
    "zstd" compresses it without the sample (the frame is still kept only if it pays).
    ``checksum``: whether a zstd frame carries its content checksum (v2 yes, v3 no).
    """
    if hint == "raw":
        return plane, "raw"
    cctx = compressor(level, checksum)
    if hint is None and plane.size > SAMPLE_FROM:
        sample = _sample(plane)
        if not _pays(sample.size, len(cctx.compress(sample))):
            return plane, "raw"
    frame = cctx.compress(plane)
    return (frame, "zstd") if _pays(plane.size, len(frame)) else (plane, "raw")


def plane_pieces(planes: list[np.ndarray], level: int, version: str,
                 hints: list[str] | None = None) -> tuple[list, dict]:
    """The stored pieces of ``planes`` (zstd frames as bytes, raw planes as the arrays given), in
    chunk order, and the entry fields that describe them; the chunk is the pieces back to back.

    Fields: ``planes`` (stored length of each plane) and, for ``zstd-planes-2`` and ``-3``,
    ``plane_codecs`` (``"zstd"`` or ``"raw"`` each); then ``crc32`` (v2: of the raw planes' bytes
    in order; 0 when none) or ``xxh3_64`` (v3: :func:`chunk_hash` of the whole chunk).
    ``hints`` (one per plane, see :func:`code_plane`) are ignored when their number differs.
    """
    if version == V1:
        pieces = [compressor(level).compress(plane) for plane in planes]
        return pieces, {"planes": [len(p) for p in pieces]}
    if hints is None or len(hints) != len(planes):
        hints = [None] * len(planes)
    coded = [code_plane(plane, level, hint, version == V2) for plane, hint in zip(planes, hints)]
    pieces = [piece for piece, _ in coded]
    fields = {"planes": [len(p) if how == "zstd" else p.size for p, how in coded],
              "plane_codecs": [how for _, how in coded]}
    if version in HASHED:
        digest = xxhash.xxh3_64()  # over the pieces as stored: the hash of the joined chunk
        for piece in pieces:
            digest.update(piece)
        return pieces, {**fields, "xxh3_64": digest.hexdigest()}
    crc = 0
    for piece, how in coded:
        if how == "raw":
            crc = zlib.crc32(piece, crc)
    return pieces, {**fields, "crc32": crc}


def _unzstd(frame: memoryview, n: int, j: int) -> np.ndarray:
    """Plane ``j`` from one whole zstd frame of ``n`` bytes that carries its content checksum."""
    params = zstandard.get_frame_parameters(frame)
    if params.content_size != n:
        raise ValueError(f"plane {j} holds the wrong number of bytes")
    if not params.has_checksum:  # every frame is written with one: a cleared flag is a damaged header
        raise zstandard.ZstdError(f"plane {j}: the frame has no content checksum")
    return np.frombuffer(decompressor().decompress(frame, allow_extra_data=False), dtype=np.uint8)


def _read_v3(view: memoryview, entry: dict, n: int, width: int) -> list[np.ndarray]:
    """``read_planes`` for ``zstd-planes-3``: the chunk's hash first, then each plane (no per-plane check)."""
    if chunk_hash(view) != entry["xxh3_64"]:
        raise ChecksumError("xxh3-64 mismatch: the chunk is damaged")
    sizes, codes = entry["planes"], entry["plane_codecs"]
    if len(sizes) != width or len(codes) != width or sum(sizes) != len(view):
        raise ValueError(f"planes {sizes} do not fit a chunk of {len(view)} bytes and {width}-byte elements")
    pos, planes = 0, []
    for j, (size, how) in enumerate(zip(sizes, codes)):
        piece = view[pos:pos + size]
        pos += size
        if how == "zstd":
            piece = decompressor().decompress(piece, max_output_size=n, allow_extra_data=False)
        elif how != "raw":
            raise ValueError(f"plane {j} has unknown codec {how!r}")
        if len(piece) != n:
            raise ValueError(f"plane {j} holds {len(piece)} bytes, expected {n}")
        planes.append(np.frombuffer(piece, dtype=np.uint8))
    return planes


def read_planes(chunk: bytes | memoryview, entry: dict, n: int, width: int) -> list[np.ndarray]:
    """The ``width`` planes of ``n`` bytes stored in ``chunk`` as ``entry`` describes (any version).

    Raises ValueError when the chunk does not fit its entry, ``zstandard.ZstdError`` for a damaged
    frame and ChecksumError for a checksum mismatch. Raw planes are views of ``chunk``.
    """
    if entry["codec"] in HASHED:
        return _read_v3(memoryview(chunk), entry, n, width)
    view, sizes = memoryview(chunk), entry["planes"]
    codes = entry["plane_codecs"] if entry["codec"] == V2 else ["zstd"] * len(sizes)
    if len(sizes) != width or len(codes) != width:
        raise ValueError(f"{len(sizes)} planes for {width}-byte elements")
    pos, crc, planes = 0, 0, []
    for j, (size, how) in enumerate(zip(sizes, codes)):
        piece = view[pos:pos + size]
        pos += size
        if how == "zstd":
            planes.append(_unzstd(piece, n, j))
        elif how == "raw" and len(piece) == n:
            crc = zlib.crc32(piece, crc)
            planes.append(np.frombuffer(piece, dtype=np.uint8))
        else:
            raise ValueError(f"plane {j} is {how!r} of {len(piece)} bytes, expected {n} bytes")
    if pos != len(view):
        raise ValueError(f"chunk is {len(view)} bytes, its planes add up to {pos}")
    if entry["codec"] == V2 and crc != entry["crc32"]:
        raise ChecksumError("CRC-32 mismatch in the raw planes")
    return planes
