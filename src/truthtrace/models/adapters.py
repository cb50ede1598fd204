"""LoRA (and other peft) adapters on a loaded model: ``--adapter DIR`` and the ``SPEC+ADAPTER_DIR`` model spec.

A model spec ``BASE+DIR`` (``DIR`` a folder holding ``adapter_config.json``, as
``PeftModel.save_pretrained`` writes it) names the base model with that adapter applied;
``--adapter DIR`` on ``extract``/``ask`` builds the same spec. So every command that takes a
model spec (``compare-models base base+adapter --store ... --detector ...`` included) accepts one.

Adapters go through peft's own API (extra ``peft``): :func:`apply_adapter` wraps a model in
``PeftModel.from_pretrained``; :func:`merge_adapter` folds the adapter into the base weights
(``merge_and_unload``), which is what inference uses by default — the result is a plain
transformers model, so every capture path (hooks, ``output_hidden_states``, hybrid attention)
sees it unchanged and there is no per-layer LoRA overhead. peft 0.21.2 (the newest on PyPI) is
what is pinned; its ``PeftModel.disable_adapter()`` context manager is how the base model is
recovered from an unmerged one (:func:`adapter_disabled`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

ADAPTER_SEP = "+"
ADAPTER_CONFIG = "adapter_config.json"


def _peft():
    """The ``peft`` module, or an ImportError naming the extra."""
    try:
        import peft
    except ImportError as e:
        raise ImportError("LoRA adapters need peft: pip install 'truthtrace[peft]'") from e
    return peft


def check_adapter_dir(path: str | Path) -> Path:
    """``path`` as a Path when it is a peft adapter folder; ValueError naming it otherwise."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(f"--adapter {path}: not a directory (expected a peft adapter folder with {ADAPTER_CONFIG})")
    if not (folder / ADAPTER_CONFIG).is_file():
        raise ValueError(f"--adapter {path}: no {ADAPTER_CONFIG} in the folder; save the adapter with "
                         "PeftModel.save_pretrained(DIR)")
    return folder


def split_adapter_spec(spec: str) -> tuple[str, str | None]:
    """``"BASE+DIR"`` -> ``("BASE", "DIR")``; a spec without an adapter -> ``(spec, None)``.

    A spec that exists as a path is never split (a folder may have ``+`` in its name).

    Raises:
        ValueError: the part after ``+`` is not a peft adapter folder.
    """
    if ADAPTER_SEP not in spec or Path(spec).expanduser().exists():
        return spec, None
    base, adapter = spec.rsplit(ADAPTER_SEP, 1)
    if not base:
        raise ValueError(f"model spec {spec!r}: nothing before {ADAPTER_SEP!r} (expected BASE+ADAPTER_DIR)")
    check_adapter_dir(adapter)
    return base, adapter


def with_adapter(spec: str, adapter: str | None) -> str:
    """The spec of ``spec`` with ``adapter`` applied (``spec`` itself when ``adapter`` is None)."""
    if adapter is None:
        return spec
    check_adapter_dir(adapter)
    if split_adapter_spec(spec)[1] is not None:
        raise ValueError(f"model spec {spec!r} already names an adapter; pass --adapter or BASE+DIR, not both")
    return f"{spec}{ADAPTER_SEP}{adapter}"


def apply_adapter(model, adapter: str | Path):
    """Wrap ``model`` in ``peft.PeftModel.from_pretrained(model, adapter)`` (eval mode, not merged).

    Returns:
        the PeftModel; ``truthtrace_id`` is ``<base id>+<adapter folder name>`` and ``truthtrace_path`` None,
        so the store fingerprint is taken from the tensors, LoRA weights included.
    """
    peft = _peft()
    folder = check_adapter_dir(adapter)
    base_id = getattr(model, "truthtrace_id", None)
    wrapped = peft.PeftModel.from_pretrained(model, str(folder), is_trainable=False).eval()
    _label(wrapped, base_id, folder)
    return wrapped


def merge_adapter(model, adapter: str | Path):
    """``model`` with the adapter at ``adapter`` folded into its weights: a plain transformers model again.

    Returns:
        the merged model (eval mode), labelled as in :func:`apply_adapter`.
    """
    base_id = getattr(model, "truthtrace_id", None)
    merged = apply_adapter(model, adapter).merge_and_unload().eval()
    _label(merged, base_id, Path(adapter))
    return merged


def _label(model, base_id: str | None, folder: Path) -> None:
    """Name an adapted model ``<base>+<adapter>``; its fingerprint then comes from its tensors."""
    model.truthtrace_id = f"{base_id}{ADAPTER_SEP}{folder.name}" if base_id else folder.name
    model.truthtrace_path = None


@contextlib.contextmanager
def adapter_disabled(model) -> Iterator[object]:
    """Run an unmerged PeftModel as its base model inside the block (``PeftModel.disable_adapter()``).

    Raises:
        ValueError: ``model`` carries no peft adapter (a merged model cannot be un-merged here).
    """
    if not hasattr(model, "disable_adapter"):
        raise ValueError("the model has no peft adapter to disable (merged adapters cannot be disabled)")
    with model.disable_adapter():
        yield model
