"""Load any model spec — causal LM, encoder, or a ``truthtrace compress`` output — into a ready model.

``load_any`` is the one loader for compression and comparison: it accepts every spec
``truthtrace.models.resolve_model`` accepts, picks the model class from ``config.architectures``
and, for a directory holding ``compression.json``, reads the stored format back (HF
``from_pretrained`` where the format allows, else our own safetensors / zstd / int8 reader).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

COMPRESSION_JSON = "compression.json"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
           "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_ENCODER_TYPES = {"bert", "roberta", "deberta", "deberta-v2", "distilbert", "electra", "albert", "xlm-roberta",
                  "mpnet", "modernbert"}


@dataclass
class LoadedModel:
    """A loaded model: ``kind`` is "causal" or "encoder"; ``compression`` is compression.json (or None)."""

    model: Any
    tokenizer: Any
    kind: str
    spec: str
    path: str
    compression: dict | None = None


def model_kind(config) -> tuple[str, str]:
    """Decide the kind and the auto class of an HF config.

    Returns:
        ``(kind, auto_class_name)``: ("causal", "AutoModelForCausalLM"), ("encoder",
        "AutoModelForSequenceClassification") or ("encoder", "AutoModel").
    """
    archs = list(getattr(config, "architectures", None) or [])
    arch = archs[0] if archs else ""
    if arch.endswith("ForCausalLM"):
        return "causal", "AutoModelForCausalLM"
    if arch.endswith("ForSequenceClassification"):
        return "encoder", "AutoModelForSequenceClassification"
    if arch or config.model_type in _ENCODER_TYPES:
        return "encoder", "AutoModel"
    return "causal", "AutoModelForCausalLM"


def auto_class(name: str):
    """The transformers auto class called ``name``."""
    import transformers

    return getattr(transformers, name)


def torch_dtype(dtype: str | None, default: str = "float32") -> torch.dtype:
    """Map "float32"/"fp32"/"bf16"/... (None -> ``default``) to a torch dtype.

    Raises:
        ValueError: unknown dtype name.
    """
    name = dtype or default
    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of float32, bfloat16, float16, got {name!r}")
    return _DTYPES[name]


def read_compression(path: str | Path) -> dict | None:
    """compression.json of directory ``path`` as a dict, or None when there is none.

    Raises:
        ValueError: the file exists but is not valid JSON or lacks the ``storage`` field.
    """
    file = Path(path) / COMPRESSION_JSON
    if not file.is_file():
        return None
    try:
        meta = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or "storage" not in meta:
        raise ValueError(f"{file}: missing field 'storage' (not written by truthtrace compress?)")
    return meta


def prepare_tokenizer(tok, kind: str):
    """Give ``tok`` a pad token; causal LMs pad on the left (generation), encoders on the right."""
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    tok.padding_side = "left" if kind == "causal" else "right"
    return tok


def load_any(spec: str, dtype: str | None = None, device: str = "auto",
             attn_implementation: str | None = None) -> LoadedModel:
    """Load a causal LM, an encoder or a compressed directory, in eval mode.

    Args:
        spec: embedded name, HF directory, .gguf file, hub id, or a ``truthtrace compress`` output dir.
        dtype: compute dtype ("float32", "bfloat16", "float16"); None = the stored compute dtype
            (float32 for uncompressed models). Ignored for formats kept quantized (torchao, quanto, bnb).
        device: "auto", "cpu", "cuda", ...
        attn_implementation: passed to transformers (e.g. "eager" to return attention maps); None = its default.

    Returns:
        LoadedModel with the tokenizer holding a pad token.

    Raises:
        truthtrace.models.ModelNotFoundError: the spec resolves to nothing.
        ValueError: a malformed compression.json or weights file (named in the message).
    """
    from transformers import AutoConfig, AutoTokenizer

    from ..models import ModelNotFoundError, pick_device, resolve_model

    resolved = resolve_model(spec)
    compression = read_compression(resolved.path) if resolved.source == "directory" else None
    try:
        config = AutoConfig.from_pretrained(resolved.path)
        tok = AutoTokenizer.from_pretrained(resolved.path)
    except OSError as exc:
        raise ModelNotFoundError(f"could not load model {spec!r} from {resolved.path!r}: {exc}") from exc
    kind, cls_name = model_kind(config)
    kwargs = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    if compression is None:
        model = auto_class(cls_name).from_pretrained(resolved.path, dtype=torch_dtype(dtype), **kwargs)
    else:
        model = load_compressed(resolved.path, compression, config, cls_name, dtype, kwargs)
    if not _is_kept_quantized(compression):
        model.to(pick_device(device))
    model.eval()
    model.truthtrace_id = resolved.model_id
    return LoadedModel(model, prepare_tokenizer(tok, kind), kind, spec, resolved.path, compression)


def _is_kept_quantized(compression: dict | None) -> bool:
    return compression is not None and compression["storage"].get("kept_quantized", False)


def load_compressed(path: str, compression: dict, config, cls_name: str, dtype: str | None, kwargs: dict):
    """Rebuild the model stored in a compress output dir (see ``save.py`` for the layouts).

    Returns:
        the model (not yet moved to a device), dequantized to ``dtype`` for our int8 format.

    Raises:
        ValueError: unknown storage method or weights that do not match the config.
    """
    storage = compression["storage"]
    method = storage.get("method")
    cls = auto_class(cls_name)
    if storage.get("from_pretrained"):
        if method in ("torchao", "bnb"):
            return cls.from_pretrained(path, **kwargs)
        return cls.from_pretrained(path, dtype=torch_dtype(dtype, storage.get("compute_dtype", "float32")), **kwargs)
    from .sparse_io import read_state_dict

    state = read_state_dict(Path(path) / storage["weights_file"])
    if method == "quanto":
        from .quantize import load_quanto

        return load_quanto(cls, config, state, storage, kwargs)
    if method not in ("dense", "truthtrace"):
        raise ValueError(f"{path}/{COMPRESSION_JSON}: unknown storage method {method!r}")
    from .int8_embed import dequantize_state_dict

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
            _set_param(model, alias, model.get_parameter(source))
    _materialise_buffers(model)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise ValueError(f"{path}: tensors not in the weights file and not rebuilt: {left[:5]}")
    return model


def _materialise_buffers(model) -> None:
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


def _set_param(model, name: str, param) -> None:
    """Point ``model.<name>`` at ``param`` (restores a weight tie such as lm_head <- embeddings)."""
    owner_name, _, attr = name.rpartition(".")
    owner = model.get_submodule(owner_name) if owner_name else model
    setattr(owner, attr, param)
