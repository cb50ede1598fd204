"""Quantization backends: torchao and bitsandbytes (through transformers' quantizers), optimum-quanto.

torchao and bitsandbytes quantize while ``from_pretrained`` loads an fp32 directory, and their
checkpoints reload with plain ``from_pretrained``; quanto quantizes a live model and reloads only
through its own ``requantize``. Our own int8 format lives in ``truthtrace.models.int8``; quanto
is read back in ``truthtrace.models.compressed``.
"""

from __future__ import annotations

import torch
from transformers import BitsAndBytesConfig, TorchAoConfig

from truthtrace.compress.prune import prunable_linears
from truthtrace.models.compressed import import_backend
from truthtrace.models.resolve import pick_device


def torchao_config(quant: str):
    """The transformers ``TorchAoConfig`` for "int8-weight", "int8-dynamic" or "int4-weight".

    Raises:
        ImportError: torchao missing (names the extra).
    """
    ao = import_backend("torchao", "torchao.quantization")
    make = {"int8-weight": ao.Int8WeightOnlyConfig, "int8-dynamic": ao.Int8DynamicActivationInt8WeightConfig,
            "int4-weight": ao.Int4WeightOnlyConfig}[quant]
    return TorchAoConfig(quant_type=make())


def bnb_config(mode: str):
    """The transformers ``BitsAndBytesConfig`` for "8bit" or "nf4" (CUDA only).

    Raises:
        ImportError: bitsandbytes missing (names the extra).
    """
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
