"""Text-to-image diffusion models (extra ``diffusion``): generation with the memory options, and traces of
the UNet's cross-attention between prompt tokens and image positions.

    config = DiffuseConfig(model="./sd-dir", steps=30, scheduler="dpm", attention_slicing="auto")
    diffuse(config, "prompts.txt", "runs/sd")     # images/*.png, traces/ (a trace store), words.json

Modules: :mod:`.config` (settings and closed sets), :mod:`.pipeline` (loading, schedulers, memory options),
:mod:`.capture` (the attention processor), :mod:`.heatmaps` (DAAM maps, neglected-token score),
:mod:`.generate` (the stage), :mod:`.prompts` (prompt files), :mod:`.lora` and :mod:`.images`
(LoRA fine-tuning on image/caption folders). diffusers is imported only where a model is loaded.
"""

from truthtrace.diffusion.config import MODEL_DTYPES, OFFLOADS, SCHEDULERS, DiffuseConfig
from truthtrace.diffusion.generate import diffuse, xattn_key

__all__ = ["MODEL_DTYPES", "OFFLOADS", "SCHEDULERS", "DiffuseConfig", "diffuse", "xattn_key"]
