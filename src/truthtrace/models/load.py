"""Load any model spec — causal LM, encoder, or a ``truthtrace compress`` output — into a ready model.

``load_any`` is the one loader of every format: it accepts every spec
:func:`truthtrace.models.resolve.resolve_model` accepts, picks the model class from
``config.architectures`` and, for a directory holding ``compression.json``, reads the stored
format back (:mod:`truthtrace.models.compressed`). ``load_model`` is its causal-LM form used for
trace capture; ``offline_decoder`` gives a tokenizer for display without loading or converting anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from truthtrace.dtypes import COMPUTE_DTYPES, canonical_dtype, torch_dtype
from truthtrace.models.adapters import apply_adapter, merge_adapter, split_adapter_spec
from truthtrace.models.attention import hybrid_implementation
from truthtrace.models.compressed import is_kept_quantized, load_compressed, read_compression
from truthtrace.models.resolve import (
    DEFAULT_MODEL,
    ModelNotFoundError,
    cached_path,
    pick_device,
    quiet_backend_imports,
    resolve_model,
)
from truthtrace.models.placement import Placement, device_summary
from truthtrace.models.weights import from_pretrained_checked

_ENCODER_TYPES = {"bert", "roberta", "deberta", "deberta-v2", "distilbert", "electra", "albert", "xlm-roberta",
                  "mpnet", "modernbert"}


@dataclass
class LoadedModel:
    """A loaded model: ``kind`` is "causal" or "encoder"; ``compression`` is compression.json (or None)."""

    model: Any
    tokenizer: Any
    kind: str
    spec: str
    path: str
    compression: dict | None = None


def model_kind(config) -> tuple[str, str]:
    """Decide the kind and the auto class of an HF config.

    Returns:
        ``(kind, auto_class_name)``: ("causal", "AutoModelForCausalLM"), ("encoder",
        "AutoModelForSequenceClassification") or ("encoder", "AutoModel").
    """
    archs = list(getattr(config, "architectures", None) or [])
    arch = archs[0] if archs else ""
    if arch.endswith("ForCausalLM"):
        return "causal", "AutoModelForCausalLM"
    if arch.endswith("ForSequenceClassification"):
        return "encoder", "AutoModelForSequenceClassification"
    if arch or config.model_type in _ENCODER_TYPES:
        return "encoder", "AutoModel"
    return "causal", "AutoModelForCausalLM"


def auto_class(name: str):
    """The transformers auto class called ``name``."""
    import transformers  # heavy (~0.6 s): imported where a model is loaded, not when the CLI starts

    return getattr(transformers, name)


def prepare_tokenizer(tok, kind: str):
    """Give ``tok`` a pad token; causal LMs pad on the left (generation), encoders on the right."""
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    tok.padding_side = "left" if kind == "causal" else "right"
    return tok


def load_any(spec: str, dtype: str | None = None, device: str = "auto",
             attn_implementation: str | None = None, placement: Placement | None = None) -> LoadedModel:
    """Load a causal LM, an encoder or a compressed directory, in eval mode.

    Args:
        spec: embedded name, HF directory, .gguf file, hub id, or a ``truthtrace compress`` output dir;
            ``SPEC+ADAPTER_DIR`` applies a peft adapter (:mod:`truthtrace.models.adapters`), merged into
            the weights unless the placement is accelerate's or bitsandbytes'.
        dtype: compute dtype ("float32", "bfloat16", "float16"); None = the stored compute dtype
            (float32 for uncompressed models). Ignored for formats kept quantized (torchao, quanto, bnb).
        device: "auto", "cpu", "cuda", ...
        attn_implementation: passed to transformers (e.g. "eager" to return attention maps); None = its default.
        placement: ``--device-map`` / ``--load-in`` (:class:`truthtrace.models.placement.Placement`); then
            ``device`` is ignored and the model is never moved. Not for compressed directories.

    Returns:
        LoadedModel with the tokenizer holding a pad token.

    Raises:
        ModelNotFoundError: the spec resolves to nothing.
        ValueError: a malformed compression.json or weights file, or weights that do not match the config
            (missing or unexpected tensors; named in the message with the directory).
    """
    from transformers import AutoConfig, AutoTokenizer

    spec_in, (spec, adapter) = spec, split_adapter_spec(spec)
    placement = placement or Placement()
    resolved = resolve_model(spec)
    compression = read_compression(resolved.path) if resolved.source == "directory" else None
    try:
        config = AutoConfig.from_pretrained(resolved.path)
        tok = AutoTokenizer.from_pretrained(resolved.path)
    except OSError as exc:
        raise ModelNotFoundError(f"could not load model {spec!r} from {resolved.path!r}: {exc}") from exc
    kind, cls_name = model_kind(config)
    kwargs = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    if placement.placed and compression is not None:
        raise ValueError(f"{spec}: --device-map/--load-in apply to uncompressed models; this is a truthtrace "
                         "compress output")
    with quiet_backend_imports():
        if compression is None:
            model = from_pretrained_checked(auto_class(cls_name), resolved.path, dtype=torch_dtype(dtype),
                                            **kwargs, **placement.kwargs())
        else:
            model = load_compressed(resolved.path, compression, config, auto_class(cls_name), dtype, kwargs)
    if not is_kept_quantized(compression) and not placement.placed:
        model.to(pick_device(device))
    model.eval()
    model.truthtrace_id = resolved.model_id
    model.truthtrace_path = None if resolved.source == "hub" else resolved.path  # what its fingerprint reads
    if adapter is not None:
        model = _adapted(model, adapter, placement, spec)
    return LoadedModel(model, prepare_tokenizer(tok, kind), kind, spec_in, resolved.path, compression)


def _adapted(model, adapter: str, placement: Placement, spec: str):
    """``model`` with ``adapter``: merged into plain weights, kept unmerged when accelerate or bitsandbytes placed
    them (peft wraps the dispatched modules); refused when layers were offloaded to disk (peft cannot load
    into them)."""
    if not placement.placed:
        return merge_adapter(model, adapter)
    if "disk" in device_summary(model):
        raise ValueError(f"{spec}+{adapter}: peft cannot apply an adapter to layers offloaded to disk; merge it "
                         f"once with truthtrace compress --model {spec} --merge-adapter {adapter} --out MERGED, "
                         "then pass --model MERGED --device-map ...")
    return apply_adapter(model, adapter)


def load_model(spec: str = DEFAULT_MODEL, dtype: str = "float32", device: str = "auto",
               attn_implementation: str = "eager", attn_layers: Sequence[int] | None = None,
               placement: Placement | None = None):
    """Load a causal LM and its tokenizer, ready for trace capture (any format :func:`load_any` reads).

    Args:
        spec: model spec (see :mod:`truthtrace.models.resolve`).
        dtype: "float32", "bfloat16" or "float16" compute dtype.
        device: "auto", "cpu", "cuda", ...
        attn_implementation: "eager" returns every layer's attention maps, "sdpa" none (faster); "hybrid"
            runs ``attn_layers`` eager (they return maps) and the rest SDPA
            (:func:`truthtrace.models.attention.hybrid_implementation`); any other name goes to transformers.
        attn_layers: the eager layers of "hybrid" (required there; may be empty); ignored otherwise.
        placement: ``--device-map`` / ``--load-in`` (see :func:`load_any`).

    Returns:
        ``(model, tokenizer)``; the model is in eval mode, ``model.truthtrace_id`` names it,
        ``model.truthtrace_path`` is its local directory (None for a hub id), the tokenizer
        pads on the left and has a pad token.

    Raises:
        ValueError: an unknown dtype, a spec that is not a causal LM, weights missing tensors of the config, or
            "hybrid" without ``attn_layers``.
        ModelNotFoundError: the spec resolves to nothing or its files do not load.
    """
    canonical_dtype(dtype, "dtype", COMPUTE_DTYPES)
    if attn_implementation == "hybrid":
        if attn_layers is None:
            raise ValueError("attn_implementation 'hybrid' needs attn_layers (the layers that return maps)")
        attn_implementation = hybrid_implementation(attn_layers)
    loaded = load_any(spec, dtype=dtype, device=device, attn_implementation=attn_implementation, placement=placement)
    if loaded.kind != "causal":
        raise ValueError(f"{spec!r} is {'a compressed ' if loaded.compression else 'an '}{loaded.kind} model; "
                         "traces need a causal LM")
    return loaded.model, loaded.tokenizer


def offline_decoder(spec: str | None):
    """A tokenizer for showing token ids as text, if one loads offline without converting anything.

    Args:
        spec: a model spec or a tokenizer directory. An embedded name or a ``.gguf`` file is used only
            once its conversion is cached (converting takes minutes); a hub id only from a warm HF cache.

    Returns:
        an object with ``decode(ids) -> str``, or None when nothing loads (never raises).
    """
    if not spec:
        return None
    try:
        local = cached_path(spec)
        if local is not None:
            location = str(local)
        elif spec.count("/") == 1 and not Path(spec).expanduser().exists():
            location = spec  # a hub id: only a warm HF cache is used (local_files_only below)
        else:
            return None
        if (Path(location) / "tokenizer.json").is_file():  # the tokenizers library loads ~10x faster
            return FastDecoder(Path(location) / "tokenizer.json")
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(location, local_files_only=True)
    except Exception:  # any failure just means token ids are shown instead of text
        return None


class FastDecoder:
    """``decode(ids)`` straight from a ``tokenizer.json``, without transformers' tokenizer stack."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))

    def decode(self, ids: list[int]) -> str:
        """Text of token ``ids`` (special tokens kept)."""
        return self._tok.decode(ids, skip_special_tokens=False)
