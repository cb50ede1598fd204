"""Fingerprints of model weights: which weights a trace store was written from, told apart cheaply.

A fingerprint is ``"<kind>-v1:<sha256 hex>"``:

- ``files-v1`` for a model directory (an HF directory, a ``truthtrace compress`` output, the safetensors
  cache of a GGUF file): over its weight files (:data:`WEIGHT_PATTERNS`) — each file's name and size, a
  safetensors file's header (tensor names, dtypes, shapes, offsets) and the first and middle
  :data:`SAMPLE_BYTES` bytes of every tensor; other files give :data:`FILE_SAMPLES` evenly spaced samples.
  A few reads per tensor, never a whole file, yet two fine-tunes of one base (same header, same sizes)
  differ.
- ``tensors-v1`` for a model only in memory (e.g. a test model): every state-dict entry's name, shape and
  dtype, and up to :data:`TENSOR_SAMPLES` evenly spaced values of it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from truthtrace.fileio import parse_json_object

WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.zst", "*.bin", "*.pt", "*.pth", "*.gguf")
SAMPLE_BYTES = 1024
FILE_SAMPLES = 16
TENSOR_SAMPLES = 1024
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit


def weight_files(directory: str | Path) -> list[Path]:
    """The weight files directly in ``directory`` (see :data:`WEIGHT_PATTERNS`), sorted by name."""
    root = Path(directory)
    return sorted({f for pattern in WEIGHT_PATTERNS for f in root.glob(pattern) if f.is_file()})


def safetensors_spans(handle, size: int) -> tuple[bytes, list[tuple[int, int]]] | None:
    """The header of a safetensors file open as ``handle`` and each tensor's ``(start, n_bytes)`` in the file.

    Returns:
        None when the file does not parse as safetensors (it is then sampled as a plain file).
    """
    head = handle.read(8)
    n = int.from_bytes(head, "little") if len(head) == 8 else -1
    if not 0 < n <= min(size - 8, MAX_HEADER_BYTES):
        return None
    header = handle.read(n)
    try:
        doc = parse_json_object(header, "safetensors header")
        spans = [(8 + n + int(v["data_offsets"][0]), int(v["data_offsets"][1]) - int(v["data_offsets"][0]))
                 for k, v in sorted(doc.items()) if k != "__metadata__"]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    return header, spans


def sample_spans(size: int, spans: list[tuple[int, int]] | None) -> list[tuple[int, int]]:
    """``(offset, n_bytes)`` reads: the start and middle of each tensor span, else evenly over a ``size``-byte file."""
    if spans is None:
        step = max(size // FILE_SAMPLES, 1)
        return [(offset, SAMPLE_BYTES) for offset in range(0, size, step)][:FILE_SAMPLES] + [
            (max(size - SAMPLE_BYTES, 0), SAMPLE_BYTES)]
    reads = []
    for start, length in spans:
        reads += [(start, min(length, SAMPLE_BYTES)), (start + length // 2, min(length - length // 2, SAMPLE_BYTES))]
    return reads


def hash_weight_file(digest, path: Path) -> None:
    """Add one weight file's name, size, safetensors header and sampled bytes to ``digest``."""
    size = path.stat().st_size
    digest.update(f"{path.name}\0{size}\0".encode())
    with open(path, "rb") as handle:
        parsed = safetensors_spans(handle, size) if path.name.endswith(".safetensors") else None
        if parsed is not None:
            digest.update(parsed[0])
        for offset, length in sample_spans(size, None if parsed is None else parsed[1]):
            handle.seek(offset)
            digest.update(handle.read(length))


def directory_fingerprint(directory: str | Path) -> str:
    """``files-v1:<sha256>`` of the weight files in ``directory`` (see the module docstring).

    Raises:
        ValueError: ``directory`` holds no weight file.
    """
    files = weight_files(directory)
    if not files:
        raise ValueError(f"{directory}: no weight file ({', '.join(WEIGHT_PATTERNS)}) to fingerprint")
    digest = hashlib.sha256()
    for path in files:
        hash_weight_file(digest, path)
    return f"files-v1:{digest.hexdigest()}"


def tensor_sample(tensor: torch.Tensor) -> bytes:
    """Raw bytes of up to :data:`TENSOR_SAMPLES` evenly spaced values of ``tensor`` (any shape); b"" if unreadable."""
    try:
        flat = tensor.detach().reshape(-1)
        if flat.numel() == 0 or flat.is_meta:
            return b""
        idx = torch.linspace(0, flat.numel() - 1, min(flat.numel(), TENSOR_SAMPLES)).long().to(flat.device)
        return flat[idx].cpu().contiguous().view(torch.uint8).numpy().tobytes()
    except (RuntimeError, TypeError, NotImplementedError):  # quantized tensor subclasses: names and shapes only
        return b""


def tensor_fingerprint(model) -> str:
    """``tensors-v1:<sha256>`` of ``model.state_dict()``: names, shapes, dtypes and sampled values."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}\0{tuple(tensor.shape)}\0{tensor.dtype}\0".encode())
        digest.update(tensor_sample(tensor))
    return f"tensors-v1:{digest.hexdigest()}"


def model_fingerprint(model) -> str:
    """The fingerprint of a loaded model's weights.

    Models loaded by :func:`truthtrace.models.load_any` carry ``truthtrace_path``; when that is a directory
    holding weight files they are fingerprinted from the files, any other model from its tensors.
    """
    path = getattr(model, "truthtrace_path", None)
    if path and Path(path).is_dir() and weight_files(path):
        return directory_fingerprint(path)
    return tensor_fingerprint(model)
