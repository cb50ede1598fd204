"""Model compression (``truthtrace compress``) and the loader for any model spec or compressed dir."""

from .config import PRESETS, CompressConfig
from .loading import LoadedModel, load_any, model_kind, read_compression
from .prune import prune_linear, sparsity_report, zero_below
from .save import compress, model_outputs, verify_batch

__all__ = ["PRESETS", "CompressConfig", "LoadedModel", "compress", "load_any", "model_kind", "model_outputs",
           "prune_linear", "read_compression", "sparsity_report", "verify_batch", "zero_below"]
