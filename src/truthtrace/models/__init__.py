"""Models: what a spec names (:mod:`.resolve`), loading any format (:mod:`.load`), and the
weight formats truthtrace reads and writes (:mod:`.compressed`, :mod:`.int8`, :mod:`.sparse_io`).

    from truthtrace.models import load_model
    model, tok = load_model("smollm2-135m-instruct", dtype="bfloat16")
"""

from truthtrace.models.load import LoadedModel, load_any, load_model, offline_decoder
from truthtrace.models.resolve import (
                                       DEFAULT_MODEL,
                                       ModelNotFoundError,
                                       ResolvedModel,
                                       cache_dir,
                                       cached_path,
                                       pick_device,
                                       resolve_model,
)

__all__ = ["DEFAULT_MODEL", "LoadedModel", "ModelNotFoundError", "ResolvedModel", "cache_dir", "cached_path",
           "load_any", "load_model", "offline_decoder", "pick_device", "resolve_model"]
