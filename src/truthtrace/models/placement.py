"""Models bigger than one device: ``--device-map`` (accelerate big-model inference) and ``--load-in`` (bitsandbytes).

``--device-map auto|balanced|sequential`` hands placement to accelerate through
``from_pretrained(device_map=...)``: layers fill the GPUs, then CPU RAM, then an offload folder on
disk (``offload_folder``), bounded per device by ``--max-memory 0=20GiB,cpu=64GiB``. Offloaded
layers are streamed to the compute device for each forward pass, so a model larger than RAM runs,
slowly. Capture reads each layer's hidden states from ``output_hidden_states`` and moves them to
CPU one layer at a time (:mod:`truthtrace.traces.capture`), so no device holds every layer's states.

``--load-in 8bit|4bit`` quantizes the weights on load with bitsandbytes (LLM.int8 / NF4, extra
``bnb``); it needs a CUDA GPU and is refused with a clear error elsewhere, before any weight is read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEVICE_MAPS = ("auto", "balanced", "sequential")
LOAD_IN = ("8bit", "4bit")


def parse_max_memory(text: str | None) -> dict | None:
    """``"0=20GiB,cpu=64GiB"`` -> ``{0: "20GiB", "cpu": "64GiB"}`` (GPU indices as ints); None stays None.

    Raises:
        ValueError: naming ``--max-memory`` for an entry without ``=``.
    """
    if not text:
        return None
    out: dict = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"--max-memory {text!r}: expected DEVICE=SIZE entries like 0=20GiB,cpu=64GiB")
        key = key.strip()
        out[int(key) if key.isdigit() else key] = value.strip()
    return out


@dataclass(frozen=True)
class Placement:
    """Where a model's weights live.

    Args:
        device_map: one of :data:`DEVICE_MAPS`, or None (the whole model on one ``device``).
        load_in: one of :data:`LOAD_IN` (bitsandbytes, CUDA only), or None.
        max_memory: per-device limits for ``device_map`` (see :func:`parse_max_memory`).
        offload_folder: where layers that fit nowhere are offloaded (needed once disk offload happens).
    """

    device_map: str | None = None
    load_in: str | None = None
    max_memory: dict | None = None
    offload_folder: str | None = None

    def __post_init__(self) -> None:
        if self.device_map is not None and self.device_map not in DEVICE_MAPS:
            raise ValueError(f"device_map must be one of {DEVICE_MAPS} or None, got {self.device_map!r}")
        if self.load_in is not None and self.load_in not in LOAD_IN:
            raise ValueError(f"load_in must be one of {LOAD_IN} or None, got {self.load_in!r}")
        if self.max_memory is not None and self.device_map is None:
            raise ValueError("max_memory applies with a device_map; pass --device-map too")

    @property
    def placed(self) -> bool:
        """True when accelerate or bitsandbytes places the weights (the model must not be moved afterwards)."""
        return self.device_map is not None or self.load_in is not None

    def kwargs(self) -> dict:
        """The ``from_pretrained`` keyword arguments of this placement.

        Raises:
            ValueError: ``load_in`` without a CUDA GPU.
            ImportError: ``load_in`` without bitsandbytes (names the extra).
        """
        out: dict = {}
        if self.device_map is not None:
            out["device_map"] = self.device_map
            if self.max_memory is not None:
                out["max_memory"] = self.max_memory
            if self.offload_folder is not None:
                out["offload_folder"] = self.offload_folder
        if self.load_in is not None:
            out["quantization_config"] = quantization_config(self.load_in)
            out.setdefault("device_map", "auto")
        return out


def quantization_config(load_in: str):
    """A transformers ``BitsAndBytesConfig`` for ``"8bit"`` or ``"4bit"`` (NF4, bf16 compute).

    Raises:
        ValueError: no CUDA GPU is visible (bitsandbytes' kernels are CUDA kernels).
        ImportError: bitsandbytes is missing.
    """
    if not torch.cuda.is_available():
        raise ValueError(f"--load-in {load_in} needs a CUDA GPU (bitsandbytes); none is visible. On CPU use "
                         "--model-dtype bfloat16, or truthtrace compress --quant int8-weight")
    try:
        import bitsandbytes  # noqa: F401  (transformers checks too, with a less helpful message)
    except ImportError as e:
        raise ImportError(f"--load-in {load_in} needs bitsandbytes: pip install 'truthtrace[bnb]'") from e
    from transformers import BitsAndBytesConfig

    if load_in == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)


def device_summary(model) -> dict[str, int]:
    """How many modules accelerate put on each device (``{"cpu": 3, "disk": 2}``); ``{}`` for an unplaced model."""
    placed = getattr(model, "hf_device_map", None) or {}
    out: dict[str, int] = {}
    for where in placed.values():
        out[str(where)] = out.get(str(where), 0) + 1
    return out


def device_bytes(model) -> dict[str, int]:
    """Bytes of parameters and buffers on each device accelerate placed them on (``{"cpu": ..., "disk": ...}``).

    A layer offloaded to disk holds meta tensors in memory; their bytes count under "disk" (read from the
    offload folder, or the weight files themselves, for every forward pass). A tensor shared by two modules
    (a tied output head) counts once. ``{}`` for an unplaced model.
    """
    placed = getattr(model, "hf_device_map", None) or {}
    root = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft wrapper's keys are its base's
    out: dict[str, int] = {}
    seen: set[int] = set()
    for name, where in placed.items():
        module = root.get_submodule(name) if name else root
        for t in [*module.parameters(), *module.buffers()]:
            if id(t) in seen:
                continue
            seen.add(id(t))
            # a buffer accelerate left in memory counts where it is, not under its layer's "disk"
            device = str(where) if t.is_meta or str(where) != "disk" else t.device.type
            out[device] = out.get(device, 0) + t.numel() * t.element_size()
    return out
