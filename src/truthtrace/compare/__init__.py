"""The compare-models stage: cost and quality of several models against the first.

``compare_models(specs, CompareConfig(...))`` loads each spec with
:func:`truthtrace.compress.load_any` and reports bytes on disk, parameters and sparsity, peak
memory, side-by-side latency, and quality (perplexity, top-1 agreement, KL for causal LMs;
cosine similarity and accuracy for encoders; optionally a detector's AUROC).
"""

from truthtrace.compare.report import format_table, print_table, write_outputs
from truthtrace.compare.run import CompareConfig, compare_models

__all__ = ["CompareConfig", "compare_models", "format_table", "print_table", "write_outputs"]
