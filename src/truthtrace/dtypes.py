"""The one table of dtypes truthtrace knows, by name; CLI ``choices=`` and config checks read it.

Three views of one table:
- :data:`TENSOR_DTYPES`: every dtype a trace or feature store may hold (floats, ints, bool).
- :data:`COMPUTE_DTYPES`: dtypes a model can run in ("float32", "bfloat16", "float16").
- :data:`STORAGE_DTYPES`: dtypes layer tensors may be stored in (float16 first: the default).
Short aliases ("fp32", "bf16", "fp16") are accepted wherever a compute dtype is.
"""

from __future__ import annotations

import torch

TENSOR_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
    "float64": torch.float64, "int8": torch.int8, "int16": torch.int16,
    "int32": torch.int32, "int64": torch.int64, "uint8": torch.uint8, "bool": torch.bool,
}
COMPUTE_DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
STORAGE_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32")
OVERFLOW_DTYPES: tuple[str, ...] = ("float32", "bfloat16")  # where float16 layer tensors go when they overflow
ALIASES: dict[str, str] = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
CAST_DTYPES: tuple[str, ...] = ("fp16", "bf16")  # what `compress --dtype` casts weights to
_NAMES = {v: k for k, v in TENSOR_DTYPES.items()}


def canonical_dtype(name: str, field: str = "dtype", allowed: tuple[str, ...] = COMPUTE_DTYPES) -> str:
    """The full name of a dtype given by name or alias (``"bf16"`` -> ``"bfloat16"``).

    Raises:
        ValueError: naming ``field`` when ``name`` is not one of ``allowed`` (or its alias).
    """
    full = ALIASES.get(name, name)
    if full not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(allowed)}, got {name!r}")
    return full


def torch_dtype(name: str | None, default: str = "float32", field: str = "dtype") -> torch.dtype:
    """The torch dtype of a compute dtype name or alias; None gives ``default``.

    Raises:
        ValueError: unknown name (see :func:`canonical_dtype`).
    """
    return TENSOR_DTYPES[canonical_dtype(name or default, field)]


def dtype_name(dtype: torch.dtype) -> str:
    """The store's name of a torch dtype, e.g. ``"float16"``.

    Raises:
        ValueError: a dtype no store may hold.
    """
    if dtype not in _NAMES:
        raise ValueError(f"tensor dtype {dtype} is not supported; use one of {sorted(TENSOR_DTYPES)}")
    return _NAMES[dtype]
