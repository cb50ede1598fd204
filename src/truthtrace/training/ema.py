"""Exponential moving average of a module's weights, built on ``torch.optim.swa_utils``.

``AveragedModel`` keeps a copy of the module; after each optimizer step
``update_parameters`` sets ``avg = decay * avg + (1 - decay) * param`` (the first call
copies the weights). Buffers are averaged too (``use_buffers=True``) so the copy is a
complete model that validation and saving can use as is.
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def make_ema(model: torch.nn.Module, decay: float) -> AveragedModel:
    """Wrap ``model`` in an EMA ``AveragedModel`` with ``decay`` in (0, 1).

    Raises:
        ValueError: if ``decay`` is outside (0, 1).
    """
    if not 0 < decay < 1:
        raise ValueError(f"ema_decay must be in (0, 1), got {decay!r}")
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def ema_module(ema: AveragedModel | None, model: torch.nn.Module) -> torch.nn.Module:
    """The module to evaluate and save: the EMA copy when there is one, else ``model``."""
    return model if ema is None else ema.module
