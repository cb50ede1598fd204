"""``LoopConfig``: the settings of :func:`truthtrace.training.fit_module`, checked on construction."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from truthtrace.training.compile import check_compile_mode

TRACKERS = ("tensorboard", "mlflow", "wandb", "none")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass
class LoopConfig:
    """Settings of one training run of a torch detector.

    Args:
        lr: peak AdamW learning rate (reached after warmup, then cosine decay to 0).
        weight_decay: AdamW decoupled weight decay.
        max_epochs: epoch cap.
        patience: stop after this many epochs without a better validation AUROC.
        warmup_frac: fraction of all steps spent in linear warmup, in [0, 1).
        clip_norm: max gradient L2 norm; ``None`` disables clipping.
        ema_decay: ``None`` for no EMA, else the decay in (0, 1) of an exponential moving
            average of the weights; validation and the returned model then use the average.
        amp: mixed precision on CUDA (bf16 where supported, else fp16 with a GradScaler); never on CPU.
        seed: seeds torch and numpy and the loader's epoch shuffling.
        batch_size: traces per batch where the detector batches in-memory data itself.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
        tracking: ``"tensorboard"``, ``"mlflow"``, ``"wandb"`` (offline) or ``"none"``; nothing is
            logged while ``log_dir`` is ``None``.
        log_dir: where the tracker writes.
        checkpoint_dir: where ``best``/``last`` checkpoints go; ``None`` writes none.
        resume: continue from ``checkpoint_dir/last`` when it exists (needs ``checkpoint_dir``).
        quiet: no progress bar.
        compile: ``torch.compile`` mode of the module's forward (``"default"``, ``"reduce-overhead"``,
            ``"max-autotune"``), eager where compiling fails; None: eager. It changes how fast a run is, not
            what it trains, so :meth:`to_dict` leaves it out (saved detectors and checkpoints do not depend on it).
    Raises:
        ValueError: naming the field of the first bad value.
    """

    lr: float = 1e-3
    weight_decay: float = 1e-2
    max_epochs: int = 40
    patience: int = 6
    warmup_frac: float = 0.05
    clip_norm: float | None = 1.0
    ema_decay: float | None = None
    amp: bool = True
    seed: int = 0
    batch_size: int = 64
    device: str = "auto"
    tracking: str = "tensorboard"
    log_dir: str | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    quiet: bool = False
    compile: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        for name in ("max_epochs", "patience", "batch_size"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not (isinstance(self.warmup_frac, (int, float)) and 0 <= self.warmup_frac < 1):
            raise ValueError(f"warmup_frac must be in [0, 1), got {self.warmup_frac!r}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0 or None, got {self.clip_norm!r}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be None or in (0, 1), got {self.ema_decay!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an int, got {self.seed!r}")
        if not isinstance(self.device, str) or not _DEVICE.match(self.device):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}")
        if self.tracking not in TRACKERS:
            raise ValueError(f"tracking must be one of {TRACKERS}, got {self.tracking!r}")
        if self.resume and not self.checkpoint_dir:
            raise ValueError("resume needs checkpoint_dir")
        for name in ("amp", "resume", "quiet"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        check_compile_mode(self.compile)

    def to_dict(self) -> dict:
        """The fields that define a run as a JSON-safe dict (for configs and checkpoints; not ``compile``)."""
        out = asdict(self)
        out.pop("compile")
        return out

    def resolve_device(self) -> str:
        """The torch device string to train on: ``auto`` becomes ``cuda`` when available, else ``cpu``."""
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device
