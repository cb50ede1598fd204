"""Training checkpoints: ``{tag}.safetensors`` (every tensor) + ``{tag}.json`` (everything else).

The safetensors file holds the model (``model.*``), the EMA copy (``ema.*``), the best
weights so far (``best.*``), the optimizer's per-parameter state flattened
(``optim.state.{param}.{name}``) and the torch/CUDA/numpy RNG states (``rng.*``). The JSON
holds the optimizer's param groups, the scheduler state, the python RNG state and the loop's
counters. Both are written atomically, tensors first, and share a random ``token`` kept in
the safetensors metadata: a crash between the two writes leaves a mismatched pair, which
:func:`load_checkpoint` refuses instead of resuming from mixed epochs. Nothing is pickled.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import numpy as np
import torch

from truthtrace.fileio import atomic_write, read_versioned_json, write_json_atomic

FORMAT = "truthtrace.checkpoint"
VERSION = 1


def _paths(ckpt_dir: str | Path, tag: str) -> tuple[Path, Path]:
    base = Path(ckpt_dir)
    return base / f"{tag}.safetensors", base / f"{tag}.json"


def has_checkpoint(ckpt_dir: str | Path | None, tag: str) -> bool:
    """True if ``ckpt_dir`` holds both files of checkpoint ``tag``."""
    return ckpt_dir is not None and all(p.is_file() for p in _paths(ckpt_dir, tag))


def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """Current RNG states: tensors ``rng.*`` and the JSON-safe rest."""
    np_state = np.random.get_state()
    tensors = {"rng.torch": torch.get_rng_state(), "rng.numpy": torch.from_numpy(np_state[1].astype(np.int64))}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    py = random.getstate()
    rest = {"numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": [py[0], list(py[1]), py[2]]}
    return tensors, rest


def _set_rng_state(tensors: dict[str, torch.Tensor], rest: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k[9:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    name, pos, has_gauss, gauss = rest["numpy"]
    np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, gauss_next = rest["python"]
    random.setstate((version, tuple(state), gauss_next))


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.state.{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], saved: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim.state."):
            idx, name = key[len("optim.state."):].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for key, value in saved["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": saved["param_groups"]}


def _prefixed(prefix: str, sd: dict) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in sd.items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def save_checkpoint(ckpt_dir: str | Path, tag: str, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler, ema: torch.nn.Module | None, best_state: dict | None, meta: dict) -> None:
    """Write checkpoint ``tag`` (e.g. ``"last"``, ``"best"``) into ``ckpt_dir`` atomically.

    Args:
        model, optimizer, scheduler, ema: the training objects (``ema`` an ``AveragedModel`` or None).
        best_state: state dict of the best weights so far (kept so a resumed run can return them).
        meta: JSON-safe loop counters (epoch, best AUROC, history, ...).
    """
    from safetensors.torch import save_file

    opt_tensors, opt_rest = _flatten_optimizer(optimizer)
    rng_tensors, rng_rest = _rng_state()
    tensors = {**_prefixed("model", model.state_dict()), **opt_tensors, **rng_tensors}
    if ema is not None:
        tensors.update(_prefixed("ema", ema.state_dict()))
    if best_state is not None:
        tensors.update(_prefixed("best", best_state))
    token = uuid.uuid4().hex
    st_path, json_path = _paths(ckpt_dir, tag)
    atomic_write(st_path, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT, "token": token}))
    write_json_atomic(json_path, {"format": FORMAT, "version": VERSION, "token": token, "meta": meta,
                                  "optimizer": opt_rest, "scheduler": scheduler.state_dict(), "rng": rng_rest})


def load_checkpoint(ckpt_dir: str | Path, tag: str, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler, ema: torch.nn.Module | None) -> tuple[dict, dict | None]:
    """Restore checkpoint ``tag`` into the given objects and the global RNGs.

    Returns:
        ``(meta, best_state)`` as saved (``best_state`` None if none was saved).
    Raises:
        ValueError: naming the file when the pair is mismatched, malformed or lacks tensors
            (e.g. saved for another model or with/without EMA).
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    st_path, json_path = _paths(ckpt_dir, tag)
    saved = read_versioned_json(json_path, FORMAT, (VERSION,))
    with safe_open(str(st_path), framework="pt") as f:
        token = (f.metadata() or {}).get("token")
    if token != saved.get("token"):
        raise ValueError(f"{st_path}: does not match {json_path.name} (interrupted write?); delete both to restart")
    tensors = load_file(str(st_path))
    try:
        model.load_state_dict(_unprefixed("model", tensors))
        if ema is not None:
            ema.load_state_dict(_unprefixed("ema", tensors))
        optimizer.load_state_dict(_unflatten_optimizer(tensors, saved["optimizer"]))
    except (RuntimeError, KeyError) as e:
        raise ValueError(f"{st_path}: does not fit this model/optimizer: {e}") from e
    scheduler.load_state_dict(saved["scheduler"])
    _set_rng_state(tensors, saved["rng"])
    best = _unprefixed("best", tensors) or None
    return saved["meta"], best
