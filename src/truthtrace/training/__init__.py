"""Training of torch detectors: :class:`LoopConfig` and :func:`fit_module` (see ``loop.py``).

Checkpoints (``checkpoint.py``), weight EMA (``ema.py``) and experiment trackers
(``tracking.py``) are the loop's parts; detectors import only this package's top level.
"""

from truthtrace.training.config import LoopConfig
from truthtrace.training.loop import FitResult, fit_module, label_counts, pos_weight_from_counts, predict

__all__ = ["FitResult", "LoopConfig", "fit_module", "label_counts", "pos_weight_from_counts", "predict"]
