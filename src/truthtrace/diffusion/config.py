"""``DiffuseConfig``: the settings of ``truthtrace diffuse``, checked on construction; the closed sets they use.

Memory options map one to one onto diffusers' pipeline switches (see :mod:`truthtrace.diffusion.pipeline`):
``attention_slicing`` (``enable_attention_slicing``), ``vae_slicing``, ``vae_tiling``, ``xformers``
(``enable_xformers_memory_efficient_attention``, only where xFormers is installed) and ``offload``
(``none``, ``model``: ``enable_model_cpu_offload``, ``sequential``: ``enable_sequential_cpu_offload``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from truthtrace.dtypes import COMPUTE_DTYPES, STORAGE_DTYPES

# scheduler name -> diffusers class name; "default" keeps the one the model directory names
SCHEDULERS = {"ddim": "DDIMScheduler", "dpm": "DPMSolverMultistepScheduler", "euler": "EulerDiscreteScheduler",
              "default": None}
OFFLOADS = ("none", "model", "sequential")
MODEL_DTYPES = ("auto", *COMPUTE_DTYPES)  # auto: float16 on CUDA, float32 elsewhere
_DEVICES = ("auto", "cpu", "cuda", "mps")


def _positive_int(value, name: str) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


@dataclass
class DiffuseConfig:
    """Settings of one ``diffuse`` run.

    Args:
        model: local pipeline directory (``model_index.json``) or hub id (SD 1.x/2.x, SDXL).
        steps: denoising steps.
        seed: image ``i`` of the prompt file is drawn with seed ``seed + i`` (reproducible alone or resumed).
        scheduler: one of :data:`SCHEDULERS`.
        guidance: classifier-free guidance scale (<= 1: no unconditional pass).
        height, width: image size in pixels (None: the model's default); multiples of 8.
        resolution: side of the stored heat maps ``(R, R)`` per token, layer and step.
        attention_slicing: None, ``"auto"``, ``"max"`` or a slice size (int).
        vae_slicing, vae_tiling, xformers: the diffusers switches of the same name.
        offload: one of :data:`OFFLOADS`.
        dtype: one of :data:`MODEL_DTYPES`; float16 needs CUDA.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``mps``.
        adapter: folder of LoRA weights written by ``truthtrace diffuse-train`` (or any diffusers LoRA).
        storage_dtype: dtype of the stored maps in the trace store.
    Raises:
        ValueError: naming the field of the first bad value.
    """

    model: str
    steps: int = 30
    seed: int = 0
    scheduler: str = "default"
    guidance: float = 7.5
    height: int | None = None
    width: int | None = None
    resolution: int = 16
    attention_slicing: str | int | None = None
    vae_slicing: bool = False
    vae_tiling: bool = False
    xformers: bool = False
    offload: str = "none"
    dtype: str = "auto"
    device: str = "auto"
    adapter: str | None = None
    storage_dtype: str = "float16"

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a directory or hub id, got {self.model!r}")
        for name in ("steps", "resolution"):
            _positive_int(getattr(self, name), name)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        for name, table in (("scheduler", SCHEDULERS), ("offload", OFFLOADS), ("dtype", MODEL_DTYPES),
                            ("device", _DEVICES), ("storage_dtype", STORAGE_DTYPES)):
            if getattr(self, name) not in table:
                raise ValueError(f"{name} must be one of {list(table)}, got {getattr(self, name)!r}")
        if not isinstance(self.guidance, (int, float)) or isinstance(self.guidance, bool) or self.guidance < 0:
            raise ValueError(f"guidance must be a number >= 0, got {self.guidance!r}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value >= 8 and value % 8 == 0):
                raise ValueError(f"{name} must be None or a multiple of 8 (>= 8), got {value!r}")
        slicing = self.attention_slicing
        if not (slicing is None or slicing in ("auto", "max") or (isinstance(slicing, int) and slicing >= 1)):
            raise ValueError(f"attention_slicing must be None, 'auto', 'max' or an int >= 1, got {slicing!r}")
        for name in ("vae_slicing", "vae_tiling", "xformers"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.dtype == "float16" and self.resolve_device() == "cpu":
            raise ValueError("dtype float16 needs a CUDA device; on a CPU use bfloat16 or float32")

    def resolve_device(self) -> str:
        """The torch device to run on: ``auto`` becomes ``cuda`` when available, else ``cpu``."""
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def resolve_dtype(self) -> str:
        """The model dtype name: ``auto`` becomes float16 on CUDA, float32 elsewhere."""
        if self.dtype != "auto":
            return self.dtype
        return "float16" if self.resolve_device().startswith("cuda") else "float32"

    def schema_fields(self) -> dict:
        """The settings that decide what an image and its maps are (a resumed store must match them)."""
        out = asdict(self)
        for name in ("attention_slicing", "vae_slicing", "vae_tiling", "xformers", "offload", "device"):
            out.pop(name)  # memory switches change speed and memory, not (beyond round-off) the result
        return out
