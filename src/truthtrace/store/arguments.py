"""Argument checks of ``TraceWriter``: each names the bad argument in a ValueError."""

from __future__ import annotations

import torch

from truthtrace.dtypes import OVERFLOW_DTYPES, STORAGE_DTYPES


def check_writer_args(schema, storage_dtype, overflow_dtype, shard_max_bytes, shard_max_traces, level) -> None:
    """Raise ValueError naming the first bad constructor argument."""
    if not isinstance(schema, dict):
        raise ValueError(f"schema must be a dict, got {type(schema).__name__}")
    if storage_dtype not in STORAGE_DTYPES:
        raise ValueError(f"storage_dtype must be one of {STORAGE_DTYPES}, got {storage_dtype!r}")
    if overflow_dtype not in OVERFLOW_DTYPES:
        raise ValueError(f"overflow_dtype must be 'float32' or 'bfloat16', got {overflow_dtype!r}")
    for name, value in (("shard_max_bytes", shard_max_bytes), ("shard_max_traces", shard_max_traces)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(level, int) or not -(1 << 17) <= level <= 22:
        raise ValueError(f"compression_level must be an int in [-131072, 22], got {level!r}")


def check_trace(trace_id, tensors, meta) -> None:
    """Raise ValueError naming the bad argument of ``add``."""
    if not isinstance(trace_id, str) or not trace_id:
        raise ValueError(f"trace_id must be a non-empty str, got {trace_id!r}")
    if not isinstance(tensors, dict):
        raise ValueError(f"tensors of trace {trace_id!r} must be a dict, got {type(tensors).__name__}")
    for key, value in tensors.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"tensors of trace {trace_id!r}: keys must be non-empty str, got {key!r}")
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"tensors[{key!r}] of trace {trace_id!r} must be a torch.Tensor")
    if not isinstance(meta, dict):
        raise ValueError(f"meta of trace {trace_id!r} must be a dict, got {type(meta).__name__}")
