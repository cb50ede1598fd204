"""LoRA adapters on a UNet: adding them (peft), the trainable weights as one module, saving them for diffusers.

:class:`LoraParams` holds the very ``Parameter`` objects peft put into the UNet, so the house's checkpoints
and EMA (which take an ``nn.Module``) see only the few LoRA weights, never the frozen UNet.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from truthtrace.diffusion.pipeline import EXTRA_HINT

WEIGHTS_NAME = "pytorch_lora_weights.safetensors"  # diffusers' file name, what load_lora_weights reads


def add_lora(unet, rank: int, alpha: float, targets: tuple[str, ...]) -> None:
    """Wrap the UNet modules named ``targets`` with rank-``rank`` LoRA adapters (B = 0: the UNet is unchanged).

    Raises:
        ImportError: naming the extra when peft is missing. ValueError: no module matches ``targets``.
    """
    try:
        from peft import LoraConfig
    except ImportError as err:
        raise ImportError(f"LoRA fine-tuning needs peft: {EXTRA_HINT}") from err
    try:
        unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                    target_modules=list(targets)))
    except ValueError as err:
        raise ValueError(f"targets {list(targets)}: {err}") from None


class LoraParams(torch.nn.Module):
    """The trainable LoRA weights of a UNet as one module (keys: the UNet's names with ``.`` as ``__``)."""

    def __init__(self, unet):
        super().__init__()
        found = {name.replace(".", "__"): p for name, p in unet.named_parameters() if "lora_" in name}
        if not found:
            raise ValueError("the UNet has no LoRA weights (add_lora first)")
        self.weights = torch.nn.ParameterDict(found)
        for p in self.weights.values():
            p.requires_grad_(True)

    def numel(self) -> int:
        """Number of LoRA weights."""
        return sum(p.numel() for p in self.weights.values())


def save_adapter(pipe, params: torch.nn.Module, folder: Path) -> Path:
    """Write the UNet's LoRA weights, with the values of ``params`` (the EMA copy or the live one), as
    ``folder/pytorch_lora_weights.safetensors``; returns ``folder``."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    live = LoraParams(pipe.unet)
    with torch.no_grad():
        for key, value in params.state_dict().items():
            live.state_dict()[key].copy_(value)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".adapter.") as tmp:  # then one rename: atomic
        type(pipe).save_lora_weights(tmp, unet_lora_layers=layers, safe_serialization=True)
        os.replace(Path(tmp) / WEIGHTS_NAME, folder / WEIGHTS_NAME)
    return folder
