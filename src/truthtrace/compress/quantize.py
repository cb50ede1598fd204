"""Quantization backends: torchao and bitsandbytes (through transformers' quantizers), optimum-quanto,
and our own int8 weight-only quantization (which weights, and quantizing a live model in place).

torchao and bitsandbytes quantize while ``from_pretrained`` loads an fp32 directory, and their
checkpoints reload with plain ``from_pretrained``; quanto quantizes a live model and reloads only
through its own ``requantize``. Our own int8 format lives in ``truthtrace.models.int8``; quanto
is read back in ``truthtrace.models.compressed``.
"""

from __future__ import annotations

import torch

from truthtrace.compress.prune import prunable_linears
from truthtrace.models.compressed import import_backend
from truthtrace.models.int8 import dequantize_rows, quantize_rows
from truthtrace.models.resolve import pick_device


def torchao_config(quant: str):
    """The transformers ``TorchAoConfig`` for "int8-weight", "int8-dynamic" or "int4-weight".

    Raises:
        ImportError: torchao missing (names the extra).
    """
    from transformers import TorchAoConfig

    ao = import_backend("torchao", "torchao.quantization")
    make = {"int8-weight": ao.Int8WeightOnlyConfig, "int8-dynamic": ao.Int8DynamicActivationInt8WeightConfig,
            "int4-weight": ao.Int4WeightOnlyConfig}[quant]
    return TorchAoConfig(quant_type=make())


def bnb_config(mode: str):
    """The transformers ``BitsAndBytesConfig`` for "8bit" or "nf4" (CUDA only).

    Raises:
        ImportError: bitsandbytes missing (names the extra).
    """
    from transformers import BitsAndBytesConfig

    import_backend("bnb", "bitsandbytes")
    if mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)


def load_quantized_hf(cls, src_dir: str, backend: str, quant: str | None, bnb: str | None, device: str, kwargs: dict):
    """Load fp32 directory ``src_dir`` quantized on the fly by torchao or bitsandbytes.

    Returns:
        the quantized model in eval mode; ``save_pretrained`` writes a reloadable checkpoint.
    """
    if backend == "torchao":
        qcfg = torchao_config(quant)
        extra = {"device_map": "cuda"} if pick_device(device).type == "cuda" else {}
    else:
        qcfg = bnb_config(bnb)
        extra = {"device_map": "cuda"}
    model = cls.from_pretrained(src_dir, quantization_config=qcfg, dtype=torch.float32, **extra, **kwargs)
    return model.eval()


def quantize_quanto(model, quant: str) -> dict:
    """Quantize the linear weights of ``model`` in place with optimum-quanto (int8 or int4), frozen.

    A linear layer tied to the embeddings (lm_head) is excluded so the tie survives.

    Returns:
        the quanto quantization map (``{module_name: {"weights": ..., "activations": ...}}``).

    Raises:
        ImportError: optimum-quanto missing (names the extra).
    """
    quanto = import_backend("quanto", "optimum.quanto")
    keep = {n for n, _ in prunable_linears(model)}
    tied = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n not in keep]
    weights = {"int8-weight": quanto.qint8, "int4-weight": quanto.qint4}[quant]
    quanto.quantize(model, weights=weights, exclude=tied or None)
    quanto.freeze(model)
    return quanto.quantization_map(model)


# Embedding rows get one scale per 64 values: the tied table is also the output layer, where a
# per-row scale set by a few outliers costs top-1 agreement (0.955 -> see BENCHMARKS); 1.8 MB of scales.
EMBED_GROUP = 64


def int8_targets(model, embeddings: bool) -> list[str]:
    """Parameter names to quantize: every ``nn.Linear`` weight, plus ``nn.Embedding`` weights if asked.

    Tied weights appear once (the first name ``named_parameters`` gives, the embedding for SmolLM2).
    """
    seen: set[int] = set()
    names: list[str] = []
    types = (torch.nn.Linear, torch.nn.Embedding) if embeddings else (torch.nn.Linear,)
    for mod_name, module in model.named_modules():
        w = getattr(module, "weight", None)
        if not isinstance(module, types) or w is None or w.dim() != 2 or id(w) in seen:
            continue
        if isinstance(module, torch.nn.Linear) and _is_tied_to_embedding(model, w) and not embeddings:
            continue  # quantizing a tied lm_head would silently quantize the embedding table too
        seen.add(id(w))
        names.append(f"{mod_name}.weight" if mod_name else "weight")
    return names


def _is_tied_to_embedding(model, w) -> bool:
    return any(isinstance(m, torch.nn.Embedding) and m.weight is w for m in model.modules())


def quantize_model_int8(model, embeddings: bool) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Quantize the targets of ``model`` in place (weights replaced by their dequantized values).

    Linear weights get one scale per output channel, embedding tables one per ``EMBED_GROUP`` values of a row.

    Returns:
        ``{param_name: (q int8 (rows, cols), scale float32 (rows,) or (rows, cols // EMBED_GROUP))}``,
        to be written by ``pack_state_dict``.
    """
    out = {}
    with torch.no_grad():
        embeds = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
        for name in int8_targets(model, embeddings):
            param = model.get_parameter(name)
            q, scale = quantize_rows(param, EMBED_GROUP if id(param) in embeds else None)
            param.copy_(dequantize_rows(q, scale, param.dtype))
            out[name] = (q, scale)
    return out
