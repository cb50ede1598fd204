"""The compress stage: apply the steps, save into a temp dir, reload, verify, record, rename into place.

Layouts of an output directory (``storage.method`` in compression.json):
- "dense": ``save_pretrained`` output (``from_pretrained`` works), or with ``--sparse-format zstd``
  ``model.safetensors.zst`` (our reader only);
- "truthtrace": ``model.int8.safetensors[.zst]``: int8 values + ``<name>.int8_scale`` per-row scales;
- "torchao" / "bnb": the backend's ``save_pretrained`` checkpoint (``from_pretrained`` works);
- "quanto": ``model.quanto.safetensors`` + the quantization map in compression.json.
A reload that does not reproduce the saved model's logits within tolerance deletes the temp dir and raises.
``force`` replaces an existing output only when it holds nothing but what compress writes (``COMPRESS_FILES``).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from pathlib import Path

import torch

from truthtrace.compress.config import CompressConfig
from truthtrace.compress.prune import prune_linear, sparsity_report, zero_below
from truthtrace.compress.quantize import load_quantized_hf, quantize_model_int8, quantize_quanto
from truthtrace.dtypes import canonical_dtype, torch_dtype
from truthtrace.fileio import check_output_apart, clear_own_output, refuse_foreign
from truthtrace.machine import cpu_has_bf16, versions
from truthtrace.models.compressed import COMPRESSION_JSON, write_compression
from truthtrace.models.int8 import pack_state_dict
from truthtrace.models.adapters import split_adapter_spec, with_adapter
from truthtrace.models.load import LoadedModel, auto_class, load_any, model_kind
from truthtrace.models.sparse_io import dir_bytes, split_tied, write_state_dict

VERIFY_TEXTS = ["The capital of France is Paris, and the capital of Italy is",
                "Water boils at one hundred degrees Celsius at sea level, but on a high mountain it boils"]


# the libraries that wrote (and must read) a compressed model
COMPRESS_DISTRIBUTIONS = ("truthtrace", "torch", "transformers", "safetensors", "zstandard", "torchao",
                          "optimum-quanto", "bitsandbytes")
# every name ``_write`` can leave in an output dir: compression.json, config + generation config, the
# weights (ours, or save_pretrained's, sharded or not), and the tokenizer files save_pretrained writes
_OWN_NAMES = (r"(?:compression\.json|config\.json|generation_config\.json"
              r"|model(\.int8|\.quanto)?\.safetensors(\.zst)?|model-\d{5}-of-\d{5}\.safetensors"
              r"|model\.safetensors\.index\.json"
              r"|tokenizer(_config)?\.json|special_tokens_map\.json|added_tokens\.json|chat_template\.(jinja|json)"
              r"|vocab\.(json|txt)|merges\.txt|tokenizer\.model|spiece\.model|sentencepiece\.bpe\.model)")
COMPRESS_FILES = (_OWN_NAMES, rf"\.({_OWN_NAMES})\.[A-Za-z0-9_]+\.tmp")  # and the temps of atomic writes
SPARSITY_NOTE = ("exact zeros in the prunable linear weights: before_quantization = after pruning/zeroing, "
                 "before int8 rounding; after_reload = in the saved weights as reloaded (int8 rounding turns "
                 "small weights into zeros; null for formats kept quantized)")


def verify_batch(tok, max_len: int = 32) -> dict[str, torch.Tensor]:
    """A fixed batch of 2 texts, ``input_ids`` and ``attention_mask`` of shape (2, T<=max_len)."""
    enc = tok(VERIFY_TEXTS, return_tensors="pt", padding=True, truncation=True, max_length=max_len)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


@torch.no_grad()
def model_outputs(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """float32 logits (causal LM / classifier) or last hidden states (bare encoder), e.g. (B, T, vocab)."""
    device = next(model.parameters()).device
    out = model(**{k: v.to(device) for k, v in batch.items()})
    y = out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state
    return y.float().cpu()


def compare(expected: torch.Tensor, got: torch.Tensor, mask: torch.Tensor) -> dict:
    """Max abs difference (relative scale too) and top-1 agreement over the unpadded positions."""
    diff = (expected - got).abs()
    scale = float(expected.abs().max().clamp(min=1.0))
    out = {"max_abs_diff": float(diff.max()), "scale": scale, "rel_diff": float(diff.max()) / scale}
    if expected.dim() == 3 and mask.shape == expected.shape[:2]:
        keep = mask.bool()
        out["top1_agreement"] = float((expected.argmax(-1) == got.argmax(-1))[keep].float().mean())
    elif expected.dim() == 2:
        out["top1_agreement"] = float((expected.argmax(-1) == got.argmax(-1)).float().mean())
    return out


def check_replaceable(out: Path) -> None:
    """Make sure ``out`` may be replaced: it holds nothing but what compress writes, and compression.json.

    Raises:
        ValueError: naming ``out`` and the files compress did not write (none is deleted).
    """
    refuse_foreign(out, COMPRESS_FILES, "--out", "truthtrace compress")
    if any(out.iterdir()) and not (out / COMPRESSION_JSON).is_file():
        raise ValueError(f"--out {out} holds no {COMPRESSION_JSON}: it is not a model truthtrace compress wrote; "
                         "nothing was deleted: pick another --out")


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise ValueError(f"output {out} exists: pass --force (force=True) to replace it")
    if out.exists() or out.is_symlink():
        check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)


def _sparsify(lm: LoadedModel, cfg: CompressConfig, steps: list) -> None:
    if cfg.prune > 0:
        rep = prune_linear(lm.model, cfg.prune, cfg.prune_scope)
        steps.append({"op": "prune", "method": "l1_unstructured", "amount": cfg.prune, "scope": cfg.prune_scope,
                      "sparsity": rep})
    if cfg.zero_below is not None:
        rep = zero_below(lm.model, cfg.zero_below)
        steps.append({"op": "zero_below", "threshold": cfg.zero_below, "sparsity": rep})


def _quantize(lm: LoadedModel, cfg: CompressConfig, steps: list, work: Path) -> dict:
    """Quantize / cast ``lm.model`` (may be replaced); returns the storage fields the save step needs."""
    compute = canonical_dtype(cfg.dtype) if cfg.dtype else "float32"
    storage: dict = {"method": cfg.method, "compute_dtype": compute}
    if cfg.method == "truthtrace":
        storage["int8"] = quantize_model_int8(lm.model, cfg.quant_embeddings)
        steps.append({"op": "quantize", "backend": "truthtrace", "quant": cfg.quant, "scheme": "symmetric per-row int8",
                      "embeddings": cfg.quant_embeddings, "tensors": sorted(storage["int8"])})
    elif cfg.method in ("torchao", "bnb"):
        src = work / "fp32-src"  # the (pruned) fp32 model, quantized while transformers loads it
        lm.model.save_pretrained(src)
        _, cls_name = model_kind(lm.model.config)
        lm.model = load_quantized_hf(auto_class(cls_name), str(src), cfg.method, cfg.quant, cfg.bnb, cfg.device, {})
        steps.append({"op": "quantize", "backend": cfg.method, "quant": cfg.quant, "bnb": cfg.bnb})
        storage["kept_quantized"] = True
    elif cfg.method == "quanto":
        storage["quantization_map"] = quantize_quanto(lm.model, cfg.quant)
        steps.append({"op": "quantize", "backend": "quanto", "quant": cfg.quant,
                      "exclude": "linear layers tied to embeddings"})
        storage["kept_quantized"] = True
    if compute != "float32":
        bf16_units = cpu_has_bf16()
        _cast_parameters(lm.model, torch_dtype(compute))
        steps.append({"op": "cast", "dtype": compute, "cpu_bf16_units": bf16_units})
        if compute == "bfloat16" and bf16_units is not True and not torch.cuda.is_available():
            warnings.warn("this CPU shows no bf16 units (avx512_bf16 / amx_bf16): a bf16 model will likely run "
                          "slower than fp32 here", stacklevel=2)
    return storage


def _cast_parameters(model, dtype: torch.dtype) -> None:
    """Cast floating parameters only: buffers (rotary ``inv_freq``) stay fp32, as ``from_pretrained`` keeps them."""
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point():
                p.data = p.data.to(dtype)
    model.config.dtype = dtype


def _write(lm: LoadedModel, cfg: CompressConfig, storage: dict, tmp: Path) -> None:
    """Write weights, config, tokenizer into ``tmp``; fills ``storage`` with file names and flags."""
    model = lm.model
    zstd = cfg.sparse_format == "zstd"
    if cfg.method in ("torchao", "bnb") or (cfg.method == "dense" and not zstd):
        model.save_pretrained(tmp)
        storage.update(from_pretrained=True, container="safetensors (save_pretrained)",
                       weights_file="model.safetensors")
    else:
        state, tied = split_tied(model.state_dict())
        name = {"dense": "model.safetensors", "truthtrace": "model.int8.safetensors",
                "quanto": "model.quanto.safetensors"}[cfg.method]
        if cfg.method == "truthtrace":
            state = pack_state_dict(state, storage.pop("int8"))
        path = write_state_dict(tmp / name, state, compress=zstd)
        model.config.save_pretrained(tmp)
        if getattr(model, "generation_config", None) is not None and lm.kind == "causal":
            model.generation_config.save_pretrained(tmp)
        storage.update(from_pretrained=False, container="safetensors+zstd" if zstd else "safetensors",
                       weights_file=path.name, tied=tied)
    lm.tokenizer.save_pretrained(tmp)


def _source_bytes(path: str) -> int:
    files = [f for f in Path(path).glob("*.safetensors*")] if Path(path).is_dir() else []
    return sum(f.stat().st_size for f in files)


def compress(cfg: CompressConfig) -> dict:
    """Compress ``cfg.model`` into ``cfg.out`` (atomic: temp dir, then rename) and verify the reload.

    Returns:
        the compression.json contents plus ``out``.

    Raises:
        ValueError: output exists without force (or, with force, holds files compress did not write: they
            are named and nothing is deleted), unsupported combination, or reload verification failed.
        truthtrace.models.ModelNotFoundError: the model spec resolves to nothing.
    """
    t0 = time.perf_counter()
    out = Path(cfg.out)
    check_output_apart(out, {"model": cfg.model if Path(cfg.model).expanduser().exists() else None})
    _prepare_out(out, cfg.force)
    lm = load_any(with_adapter(cfg.model, cfg.merge_adapter), dtype="float32",
                  device="cuda" if cfg.method == "bnb" else "cpu")  # an adapter is merged on load
    if lm.compression is not None and lm.compression["storage"].get("kept_quantized"):
        raise ValueError(f"{cfg.model} is already quantized by {lm.compression['storage']['method']}: "
                         "compress from the original model instead")
    batch = verify_batch(lm.tokenizer)
    original = model_outputs(lm.model, batch)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        adapter = cfg.merge_adapter or split_adapter_spec(cfg.model)[1]
        steps: list = [{"op": "merge_adapter", "adapter": str(adapter)}] if adapter else []
        _sparsify(lm, cfg, steps)
        before = sparsity_report(lm.model)  # before quantization: quantized tensor subclasses hide their zeros
        storage = _quantize(lm, cfg, steps, tmp)
        shutil.rmtree(tmp / "fp32-src", ignore_errors=True)
        expected = model_outputs(lm.model, batch)
        _write(lm, cfg, storage, tmp)
        meta = _metadata(cfg, lm, steps, storage, tmp, {"before_quantization": before, "after_reload": None})
        write_compression(tmp, meta)
        meta["verification"], meta["sparsity"]["after_reload"] = _verify(tmp, batch, expected, original,
                                                                         cfg.tolerance)
        meta["seconds"] = round(time.perf_counter() - t0, 2)
        meta = write_compression(tmp, meta)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**meta, "out": str(out)}


def _metadata(cfg: CompressConfig, lm: LoadedModel, steps: list, storage: dict, tmp: Path, sparsity: dict) -> dict:
    weights = sum(f.stat().st_size for f in tmp.glob("*.safetensors*"))
    src = _source_bytes(lm.path)
    return {"kind": lm.kind,
            "source": {"spec": cfg.model, "path": lm.path, "bytes": src},
            "config": {k: v for k, v in cfg.__dict__.items() if k != "extra"}, "steps": steps, "storage": storage,
            "loadable_with_from_pretrained": storage["from_pretrained"],
            "sparsity": {**sparsity, "note": SPARSITY_NOTE},
            "bytes_on_disk": {"weights": weights, "dir_total_excluding_compression_json": dir_bytes(tmp),
                              "ratio_vs_source": (src / weights) if weights and src else None},
            "versions": versions(COMPRESS_DISTRIBUTIONS)}


def _verify(tmp: Path, batch, expected: torch.Tensor, original: torch.Tensor, tol: float) -> tuple[dict, dict | None]:
    """Reload ``tmp`` with ``load_any`` and compare its outputs to ``expected``.

    Returns:
        ``(verification, sparsity)``: the comparison, and ``sparsity_report`` of the reloaded weights
        (int8 rounding adds exact zeros; None for formats kept quantized, whose tensors hide them).

    Raises:
        ValueError: the reloaded outputs differ by more than ``tol`` (relative to max(1, max |logit|)).
    """
    reloaded = load_any(str(tmp), device="cpu")
    got = model_outputs(reloaded.model, batch)
    if got.shape != expected.shape:
        raise ValueError(f"reload check failed: output shape {tuple(got.shape)} != {tuple(expected.shape)}")
    result = {**compare(expected, got, batch["attention_mask"]), "tolerance": tol,
              "vs_original": compare(original, got, batch["attention_mask"]), "n_texts": len(VERIFY_TEXTS)}
    result["passed"] = result["rel_diff"] <= tol
    if not result["passed"]:
        raise ValueError(f"reload check failed: max |logit diff| {result['max_abs_diff']:.3g} "
                         f"(relative {result['rel_diff']:.3g}) > tolerance {tol:g}; nothing was written")
    kept = reloaded.compression["storage"].get("kept_quantized", False)
    return result, None if kept else sparsity_report(reloaded.model)


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an old ``out`` (checked again now) goes aside first, then its own files go."""
    old = None
    if out.exists() or out.is_symlink():
        check_replaceable(out)
        old = out.with_name(f".{out.name}.old-{int(time.time())}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        try:
            clear_own_output(old, COMPRESS_FILES, "--out", "truthtrace compress", remove_folder=True)
        except (ValueError, OSError) as err:  # a file appeared meanwhile: keep it and say where
            warnings.warn(f"the old output was kept as {old}: {err}", stacklevel=2)
