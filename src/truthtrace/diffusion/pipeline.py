"""Load a text-to-image pipeline, choose its scheduler and switch on the memory options.

Any diffusers pipeline with a ``unet`` and a ``tokenizer`` works: Stable Diffusion 1.x/2.x
(``StableDiffusionPipeline``) and SDXL (``StableDiffusionXLPipeline``), picked by the
directory's ``model_index.json``. diffusers is the ``diffusion`` extra, imported here only.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from truthtrace.diffusion.config import SCHEDULERS, DiffuseConfig
from truthtrace.dtypes import TENSOR_DTYPES

EXTRA_HINT = "pip install 'truthtrace[diffusion]'"


def require_diffusers():
    """The ``diffusers`` module; ImportError naming the ``diffusion`` extra when it is missing."""
    try:
        import diffusers
    except ImportError as err:
        raise ImportError(f"diffusion models need diffusers: {EXTRA_HINT}") from err
    return diffusers


def require_pil():
    """The ``PIL.Image`` module; ImportError naming the ``diffusion`` extra when Pillow is missing."""
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError(f"images need Pillow: {EXTRA_HINT}") from err
    return Image


def load_pipeline(config: DiffuseConfig):
    """The pipeline of ``config.model`` with its scheduler, adapter and memory options applied.

    Returns:
        a diffusers ``DiffusionPipeline`` on ``config.resolve_device()`` (or offloaded), progress bar off.
    Raises:
        ValueError: the directory is not a text-to-image pipeline (no ``model_index.json``, no UNet or
            tokenizer). ImportError: diffusers (or accelerate for offload, peft for an adapter) is missing.
    """
    diffusers = require_diffusers()
    path = Path(config.model)
    if path.exists() and not (path / "model_index.json").is_file():
        raise ValueError(f"{path}: no model_index.json; --model must be a diffusers pipeline directory "
                         "(as written by save_pretrained) or a hub id")
    dtype = TENSOR_DTYPES[config.resolve_dtype()]
    pipe = diffusers.DiffusionPipeline.from_pretrained(config.model, dtype=dtype)
    check_text_to_image(pipe, config.model)
    set_scheduler(pipe, config.scheduler)
    if config.adapter:
        load_adapter(pipe, config.adapter)
    apply_memory_options(pipe, config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def check_text_to_image(pipe, where: str) -> None:
    """ValueError naming ``where`` unless ``pipe`` has the UNet and tokenizer the traces read."""
    missing = [name for name in ("unet", "tokenizer", "text_encoder", "vae") if getattr(pipe, name, None) is None]
    if missing:
        raise ValueError(f"{where}: a {type(pipe).__name__} without {missing}; truthtrace diffuse reads "
                         "UNet text-to-image pipelines (Stable Diffusion 1.x/2.x, SDXL)")


def set_scheduler(pipe, name: str) -> None:
    """Replace ``pipe.scheduler`` by the :data:`SCHEDULERS` class ``name`` built from the current config.

    Raises:
        ValueError: an unknown name.
    """
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {list(SCHEDULERS)}, got {name!r}")
    if SCHEDULERS[name] is None:
        return
    cls = getattr(require_diffusers(), SCHEDULERS[name])
    pipe.scheduler = cls.from_config(pipe.scheduler.config)


def load_adapter(pipe, folder: str) -> None:
    """Load LoRA weights from ``folder`` (``pytorch_lora_weights.safetensors``) into the UNet.

    Raises:
        ValueError: the folder holds no LoRA weights. ImportError: peft is missing.
    """
    try:
        import peft  # noqa: F401  (diffusers' LoRA loader needs it)
    except ImportError as err:
        raise ImportError(f"--adapter needs peft: {EXTRA_HINT}") from err
    if not (Path(folder) / "pytorch_lora_weights.safetensors").is_file():
        raise ValueError(f"{folder}: no pytorch_lora_weights.safetensors (write one with truthtrace diffuse-train)")
    pipe.load_lora_weights(folder)


def apply_memory_options(pipe, config: DiffuseConfig) -> None:
    """Attention slicing, VAE slicing/tiling, xFormers and CPU offload as ``config`` asks; else move to the device.

    xFormers is used only where it is installed (a warning otherwise). Offload keeps the weights on the
    CPU and moves each model (``model``) or each submodule (``sequential``) to the device when it runs.
    """
    device = config.resolve_device()
    if config.attention_slicing is not None:
        pipe.enable_attention_slicing(config.attention_slicing)
    if config.vae_slicing:
        pipe.vae.enable_slicing()
    if config.vae_tiling:
        pipe.vae.enable_tiling()
    if config.xformers:
        from diffusers.utils import is_xformers_available

        if is_xformers_available():
            pipe.enable_xformers_memory_efficient_attention()
        else:
            warnings.warn("--xformers: xFormers is not installed; using the default attention", stacklevel=2)
    if config.offload == "sequential" and device == "cpu":  # accelerate 1.15's meta-device hooks fail on
        warnings.warn("--offload sequential: ignored on the CPU, where the weights already are (it saves "
                      "nothing there)", stacklevel=2)  # torch 2.13 CPU (Tensor(..., requires_grad=)); CUDA is its use
    if config.offload == "none" or (config.offload == "sequential" and device == "cpu"):
        pipe.to(device)
        return
    try:
        import accelerate  # noqa: F401
    except ImportError as err:
        raise ImportError(f"--offload needs accelerate: {EXTRA_HINT}") from err
    if config.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)


def generator(seed: int, device: str) -> torch.Generator:
    """A torch generator seeded with ``seed`` on ``device`` (CPU generators for offloaded pipelines)."""
    return torch.Generator(device="cpu" if device == "mps" else device).manual_seed(seed)
