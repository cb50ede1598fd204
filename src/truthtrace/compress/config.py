"""The compress stage's config: which steps to apply, with which backend, and how to store the result.

Steps run in a fixed order, each optional: prune / zero-below on fp32 weights, then int8/int4
quantization or a dtype cast, then the storage format (dense safetensors or zstd-compressed).
Unsupported combinations are refused here, before any model is loaded, with the alternative named.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from truthtrace.dtypes import canonical_dtype
from truthtrace.models.adapters import check_adapter_dir

QUANTS = ("int8-weight", "int8-dynamic", "int4-weight")
BACKENDS = ("torchao", "quanto", "bnb", "truthtrace")
BNB_MODES = ("8bit", "nf4")
SPARSE_FORMATS = ("dense", "zstd")
PRESETS = {
    # int8 values + per-row scales in our own safetensors layout, embeddings included; dequantized on load.
    "small": {"quant": "int8-weight", "quant_embeddings": True, "backend": "truthtrace"},
    # bf16 cast: ~2.5x faster than fp32 on CPUs with bf16 matrix units.
    "fast": {"dtype": "bf16"},
}
# Per storage method: max |logit difference| after reload, relative to max(1, max |logit|).
DEFAULT_TOL = {"dense": 1e-5, "truthtrace": 1e-5, "torchao": 1e-4, "quanto": 1e-4, "bnb": 1e-2}


@dataclass
class CompressConfig:
    """What ``compress`` does to ``model`` and where it writes the result.

    Args:
        model: any spec ``truthtrace.compress.load_any`` accepts.
        out: output directory (must not exist unless ``force``).
        dtype: cast to "fp16" / "bf16" (or None: keep fp32).
        prune: L1 unstructured pruning amount of linear layers, 0..0.9 (0 = off).
        prune_scope: "global" (one threshold over all linear layers) or "layer" (each layer its own).
        zero_below: set linear weights with |w| < zero_below to 0 (None = off).
        quant: "int8-weight", "int8-dynamic" or "int4-weight" (None = off).
        quant_embeddings: also quantize the embedding table (our own int8 format only).
        backend: "torchao", "quanto", "bnb" or "truthtrace" (our int8 safetensors); None picks one.
        bnb: "8bit" or "nf4" (implies backend "bnb"; CUDA only).
        sparse_format: "dense" or "zstd"; None picks zstd when pruning/zeroing is used.
        preset: "small" or "fast": fills the fields above that were left unset.
        force: replace an existing ``out``.
        verify_tol: reload tolerance (None: per-method default in ``DEFAULT_TOL``).
        device: "auto", "cpu" or "cuda".
        merge_adapter: a peft adapter folder folded into the weights first (``compress --merge-adapter DIR``);
            a ``BASE+DIR`` model spec does the same.
    """

    model: str
    out: str
    dtype: str | None = None
    prune: float = 0.0
    prune_scope: str = "global"
    zero_below: float | None = None
    quant: str | None = None
    quant_embeddings: bool = False
    backend: str | None = None
    bnb: str | None = None
    sparse_format: str | None = None
    preset: str | None = None
    force: bool = False
    verify_tol: float | None = None
    device: str = "auto"
    merge_adapter: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.preset is not None:
            self._apply_preset()
        self._check_values()
        self._pick_defaults()
        check_combination(self)

    def _apply_preset(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        defaults = {f.name: f.default for f in fields(self) if not callable(f.default_factory)}
        for key, value in PRESETS[self.preset].items():
            if getattr(self, key) == defaults[key]:
                setattr(self, key, value)

    def _check_values(self) -> None:
        if self.dtype is not None:
            canonical_dtype(self.dtype, "dtype")
        if not 0.0 <= self.prune <= 0.9:
            raise ValueError(f"prune must be in [0, 0.9], got {self.prune}")
        if self.prune_scope not in ("global", "layer"):
            raise ValueError(f"prune_scope must be 'global' or 'layer', got {self.prune_scope!r}")
        if self.zero_below is not None and self.zero_below <= 0:
            raise ValueError(f"zero_below must be > 0, got {self.zero_below}")
        for name, allowed in (("quant", QUANTS), ("backend", BACKENDS), ("bnb", BNB_MODES),
                              ("sparse_format", SPARSE_FORMATS)):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
        if self.verify_tol is not None and self.verify_tol <= 0:
            raise ValueError(f"verify_tol must be > 0, got {self.verify_tol}")
        if not self.model or not self.out:
            raise ValueError("model and out are required")
        if self.merge_adapter is not None:
            check_adapter_dir(self.merge_adapter)

    def _pick_defaults(self) -> None:
        if self.bnb is not None and self.backend is None:
            self.backend = "bnb"
        if self.backend is None and (self.quant is not None or self.quant_embeddings):
            self.backend = "truthtrace" if self.quant_embeddings else "torchao"
        if self.quant_embeddings and self.quant is None:
            self.quant = "int8-weight"
        if self.sparse_format is None:
            ours = self.backend in (None, "truthtrace")
            self.sparse_format = "zstd" if self.sparsifies and ours else "dense"

    @property
    def sparsifies(self) -> bool:
        """True when pruning or zeroing creates zeros."""
        return self.prune > 0 or self.zero_below is not None

    @property
    def method(self) -> str:
        """The storage method: "dense", "truthtrace", "torchao", "quanto" or "bnb"."""
        return self.backend if self.backend is not None else "dense"

    @property
    def tolerance(self) -> float:
        """Reload tolerance actually used."""
        return self.verify_tol if self.verify_tol is not None else DEFAULT_TOL[self.method]


def check_combination(cfg: CompressConfig) -> None:
    """Refuse backends and combinations that do not work here, naming the alternative.

    Raises:
        ValueError: unsupported backend, device or combination.
    """
    cuda = torch.cuda.is_available() and cfg.device != "cpu"
    b = cfg.backend
    if b is not None and cfg.quant is None and b != "bnb":
        raise ValueError(f"backend {b!r} needs --quant (int8-weight, int8-dynamic or int4-weight)")
    if b == "bnb":
        if not cuda:
            raise ValueError("backend 'bnb' (bitsandbytes) needs CUDA here (on CPU it is slower than fp32 and a "
                             "4-bit model saved on CPU reloads as garbage): use --backend torchao --quant int8-weight")
        if cfg.bnb is None:
            cfg.bnb = "nf4" if cfg.quant == "int4-weight" else "8bit"
    elif cfg.bnb is not None:
        raise ValueError(f"--bnb {cfg.bnb} needs --backend bnb, got {b!r}")
    if cfg.quant_embeddings and b != "truthtrace":
        raise ValueError(f"--quant-embeddings with backend {b!r} gives a checkpoint that does not reload "
                         "(torchao) or is not supported: use --backend truthtrace (our int8 safetensors) "
                         "or --preset small")
    if b == "torchao" and cfg.quant == "int4-weight" and not cuda:
        raise ValueError("torchao int4-weight needs CUDA (other int4 configs store int8 bytes, no size gain): "
                         "use --quant int8-weight, or --backend quanto --quant int4-weight")
    if b == "quanto" and cfg.quant == "int8-dynamic":
        raise ValueError("quanto int8-dynamic (W8A8) reloads with wrong outputs: "
                         "use --backend torchao --quant int8-dynamic")
    if b == "truthtrace" and cfg.quant != "int8-weight":
        raise ValueError(f"backend 'truthtrace' stores int8 weight-only; for --quant {cfg.quant} use --backend torchao")
    if b in ("torchao", "quanto", "bnb") and cfg.sparse_format == "zstd":
        raise ValueError(f"--sparse-format zstd is for our own formats; backend {b!r} writes its own safetensors: "
                         "use --sparse-format dense, or --backend truthtrace --quant int8-weight")
    if b in ("torchao", "quanto", "bnb") and cfg.dtype not in (None, "fp32", "float32"):
        raise ValueError(f"--dtype {cfg.dtype} with backend {b!r} is not supported: quantize from fp32, "
                         "or use --backend truthtrace --quant int8-weight --dtype ...")
