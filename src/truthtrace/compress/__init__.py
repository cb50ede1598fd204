"""Model compression (``truthtrace compress``): pruning, quantization and casts, written as a directory
that :func:`truthtrace.models.load_any` reads back (the reading side lives in ``truthtrace.models``)."""

from truthtrace.compress.config import PRESETS, CompressConfig
from truthtrace.compress.prune import prune_linear, sparsity_report, zero_below
from truthtrace.compress.save import compress, model_outputs, verify_batch

__all__ = ["PRESETS", "CompressConfig", "compress", "model_outputs", "prune_linear", "sparsity_report",
           "verify_batch", "zero_below"]
