"""Reading a ``truthtrace compress`` output directory back into a model.

``compression.json`` (see ``docs/FORMAT.md``) says how the weights were stored: loadable with
``from_pretrained`` (dense casts, torchao, bitsandbytes), our own safetensors / zstd / int8 layout
(:mod:`truthtrace.models.sparse_io`, :mod:`truthtrace.models.int8`), or optimum-quanto's state dict.
The writing side is :mod:`truthtrace.compress`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from truthtrace.dtypes import torch_dtype
from truthtrace.fileio import read_versioned_json, write_json_atomic
from truthtrace.models.int8 import dequantize_state_dict
from truthtrace.models.sparse_io import read_state_dict
from truthtrace.models.weights import from_pretrained_checked

COMPRESSION_JSON = "compression.json"
COMPRESSION_FORMAT = "truthtrace-compressed"
COMPRESSION_VERSIONS = (1,)
EXTRAS = {"torchao": "quant", "quanto": "quant", "bnb": "bnb"}


def import_backend(backend: str, module: str):
    """Import the optional quantization library ``module`` of ``backend``.

    Raises:
        ImportError: naming the extra that installs it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"backend {backend!r} needs {module}: pip install 'truthtrace[{EXTRAS[backend]}]'") from exc


def write_compression(directory: str | Path, meta: dict) -> dict:
    """Write ``directory/compression.json`` under its format header, atomically (the writing side's call).

    Returns:
        the document written (header first).
    """
    doc = {"format": COMPRESSION_FORMAT, "format_version": COMPRESSION_VERSIONS[-1], **meta}
    write_json_atomic(Path(directory) / COMPRESSION_JSON, doc)
    return doc


def read_compression(path: str | Path) -> dict | None:
    """compression.json of directory ``path`` as a dict, or None when there is none.

    Raises:
        ValueError: the file exists but is not valid JSON or lacks the ``storage`` field.
    """
    file = Path(path) / COMPRESSION_JSON
    if not file.is_file():
        return None
    meta = read_versioned_json(file, COMPRESSION_FORMAT, COMPRESSION_VERSIONS, version_field="format_version")
    if not isinstance(meta.get("storage"), dict):
        raise ValueError(f"{file}: missing field 'storage' (not written by truthtrace compress?)")
    return meta



def is_kept_quantized(compression: dict | None) -> bool:
    """True when the stored model stays quantized on load (torchao, quanto, bnb): not moved to a device."""
    return compression is not None and compression["storage"].get("kept_quantized", False)


def load_compressed(path: str, compression: dict, config, cls, dtype: str | None, kwargs: dict):
    """Rebuild the model stored in a compress output dir (see ``save.py`` for the layouts).

    Returns:
        the model (not yet moved to a device), dequantized to ``dtype`` for our int8 format.

    Raises:
        ValueError: unknown storage method or weights that do not match the config.
    """
    storage = compression["storage"]
    method = storage.get("method")
    if storage.get("from_pretrained"):
        if method in ("torchao", "bnb"):
            return cls.from_pretrained(path, **kwargs)
        target = torch_dtype(dtype, storage.get("compute_dtype", "float32"))
        return from_pretrained_checked(cls, path, dtype=target, **kwargs)  # a dense cast: every tensor must load
    state = read_state_dict(Path(path) / storage["weights_file"])
    if method == "quanto":
        return load_quanto(cls, config, state, storage, kwargs)
    if method not in ("dense", "truthtrace"):
        raise ValueError(f"{path}/{COMPRESSION_JSON}: unknown storage method {method!r}")
    target = torch_dtype(dtype, storage.get("compute_dtype", "float32"))
    state = dequantize_state_dict(state, target)
    return build_from_state(cls, config, state, target, storage.get("tied", {}), kwargs, path)


def build_from_state(cls, config, state: dict[str, torch.Tensor], dtype: torch.dtype, tied: dict[str, str],
                     kwargs: dict, path: str = "?"):
    """Instantiate ``cls`` from ``config`` and load ``state``; tied aliases are re-tied, not stored.

    The model is built on the ``meta`` device and ``state``'s tensors are assigned in place, so peak
    memory is one copy of the weights (a CPU-built model would hold a random copy as well).

    Raises:
        ValueError: keys missing from or unexpected in ``state`` (named, with ``path``), or a
            parameter or buffer left unmaterialised.
    """
    with torch.device("meta"):
        model = cls.from_config(config, dtype=dtype, **kwargs)
    result = model.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()},
                                   strict=False, assign=True)
    missing = [k for k in result.missing_keys if k not in tied]
    if missing or result.unexpected_keys:
        raise ValueError(f"{path}: weights do not match the config: missing {missing[:5]}, "
                         f"unexpected {list(result.unexpected_keys)[:5]}")
    for alias, source in tied.items():
        if alias in result.missing_keys:
            set_param(model, alias, model.get_parameter(source))
    materialise_buffers(model)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ValueError(f"{path}: tensors not in the weights file and not rebuilt: {left[:5]}")
    return model


def materialise_buffers(model) -> None:
    """Recompute the non-persistent buffers (rotary ``inv_freq``, BERT ``position_ids``) still on ``meta``.

    They are not in any state dict: each owning module gets CPU storage and the model's own
    ``_init_weights`` fills it, the same step ``from_pretrained`` takes. Only modules without
    parameters of their own are re-initialised, so no loaded weight is overwritten.
    """
    for module in model.modules():
        metas = {n: b for n, b in module.named_buffers(recurse=False) if b is not None and b.is_meta}
        if not metas:
            continue
        if any(True for _ in module.parameters(recurse=False)):
            raise ValueError(f"cannot rebuild buffers {sorted(metas)} of {type(module).__name__}: it holds weights")
        for name, buf in metas.items():
            setattr(module, name, torch.empty_like(buf, device="cpu"))
        with torch.no_grad():
            model._init_weights(module)


def set_param(model, name: str, param) -> None:
    """Point ``model.<name>`` at ``param`` (restores a weight tie such as lm_head <- embeddings)."""
    owner_name, _, attr = name.rpartition(".")
    owner = model.get_submodule(owner_name) if owner_name else model
    setattr(owner, attr, param)


def load_quanto(cls, config, state: dict[str, torch.Tensor], storage: dict, kwargs: dict):
    """Rebuild a quanto model from its state dict and quantization map (``storage['quantization_map']``).

    Raises:
        ImportError: optimum-quanto missing (names the extra).
        ValueError: stored keys that do not match the rebuilt model.
    """
    quanto = import_backend("quanto", "optimum.quanto")
    model = cls.from_config(config, dtype=torch.float32, **kwargs)
    quanto.requantize(model, state, storage["quantization_map"], device=torch.device("cpu"))
    expected = set(model.state_dict().keys())
    tied = storage.get("tied", {})
    missing = sorted(expected - set(state) - set(tied))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(f"quanto weights do not match the config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for alias, source in tied.items():
        set_param(model, alias, model.get_parameter(source))  # requantize re-creates parameters: re-tie
    return model
