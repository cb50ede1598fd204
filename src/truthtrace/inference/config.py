"""EngineConfig: what the live engine loads, how it batches, calibrates, guards and caches."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from truthtrace.detectors.calibration import METHODS
from truthtrace.dtypes import COMPUTE_DTYPES
from truthtrace.machine import cpu_has_bf16
from truthtrace.models.resolve import cache_dir
from truthtrace.training.compile import check_compile_mode

GUARD_ACTIONS = ("flag", "abstain")
CACHE_FILE = "results.sqlite"


@dataclass
class EngineConfig:
    """Options of :class:`truthtrace.inference.engine.Engine` (ValueError names the bad field).

    Args:
        detectors: saved detectors (see :func:`truthtrace.inference.detectors.detector_dirs`).
        model: model spec; None answers with the model the detectors' traces came from.
        dtype: "auto" (bfloat16 on a GPU or on CPUs with bf16 units, else float32), or a compute dtype.
        device: "auto", "cpu", "cuda", ...
        max_batch: requests per batch.
        token_budget: prompt plus new tokens of one batch, summed over its requests.
        max_new_tokens: None: as the detectors' trace store was generated.
        max_prompt_tokens: refuse longer prompts (the model's context minus max_new_tokens always applies).
        calibration: "platt" or "isotonic" map from raw score to probability.
        primary: the detector whose probability is the answer's risk (None: the first one with a calibration).
        guard: flag (or abstain) when the risk reaches this probability; None: no guard.
        guard_action: "flag" keeps the answer and marks it, "abstain" withholds it.
        cache: SQLite file of the result cache, "default" (``$TRUTHTRACE_CACHE/results.sqlite``) or None.
        cache_sampled: also cache sampled answers (only with a fixed seed, which sampling always has here).
        threads: torch CPU threads (None: torch's choice).
        compile: ``torch.compile`` mode of the model's forward ("default", "reduce-overhead", "max-autotune";
            eager with a warning where it fails; :meth:`Engine.close` restores a given model); None: eager.
    """

    detectors: tuple = ()
    model: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    max_batch: int = 8
    token_budget: int = 8192
    max_new_tokens: int | None = None
    max_prompt_tokens: int | None = None
    calibration: str = "platt"
    primary: str | None = None
    guard: float | None = None
    guard_action: str = "flag"
    cache: str | Path | None = "default"
    cache_sampled: bool = False
    threads: int | None = None
    compile: str | None = None

    def __post_init__(self) -> None:
        self.detectors = tuple(str(d) for d in ([self.detectors] if isinstance(self.detectors, (str, Path))
                                               else self.detectors))
        if not self.detectors:
            raise ValueError("detectors: give at least one saved detector (a train output folder works)")
        if self.dtype != "auto" and self.dtype not in COMPUTE_DTYPES:
            raise ValueError(f"dtype must be 'auto' or one of {COMPUTE_DTYPES}, got {self.dtype!r}")
        for name in ("max_batch", "token_budget"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        for name in ("max_new_tokens", "max_prompt_tokens", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be None or a positive int, got {value!r}")
        if self.calibration not in METHODS:
            raise ValueError(f"calibration must be one of {METHODS}, got {self.calibration!r}")
        if self.guard is not None and not (isinstance(self.guard, (int, float)) and 0 < self.guard < 1
                                           and math.isfinite(self.guard)):
            raise ValueError(f"guard must be a probability in (0, 1), got {self.guard!r}")
        if self.guard_action not in GUARD_ACTIONS:
            raise ValueError(f"guard_action must be one of {GUARD_ACTIONS}, got {self.guard_action!r}")
        check_compile_mode(self.compile)

    def cache_path(self) -> Path | None:
        """The cache file, or None for no cache."""
        if self.cache is None:
            return None
        return cache_dir() / CACHE_FILE if self.cache == "default" else Path(self.cache)


def auto_dtype(device: torch.device) -> str:
    """The compute dtype "auto" stands for on ``device``: bfloat16 where it is fast, else float32."""
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if cpu_has_bf16() else "float32"
