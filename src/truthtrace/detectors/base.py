"""The detector protocol, the name -> class registry, and the save/load of ``config.json`` + weights.

A detector consumes iterators of batches (see :class:`truthtrace.features.dataset.FeatureDataset` / ``make_loader``)
and never the LLM. Scores are higher for traces more likely hallucinated (label 1).

A saved detector is a dir with ``config.json`` (format, version, registry name,
class, constructor args, fitted state) and, for trained detectors, ``model.safetensors``.
``config.json`` is written last, so a dir without it is not a detector. Reading one back checks
everything before it is used: unknown or ill-typed constructor args, a missing, garbage or
foreign weights file and tensors of the wrong shape each raise ValueError naming the file and field.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from truthtrace.fileio import read_versioned_json, save_tensors_atomic, write_json_atomic
from truthtrace.naming import SCALAR_LOGPROB_STATS, SEQ_LAST_ANSWER

Batch = dict[str, Any]  # one batch: "label" (B,), "trace_id" [B], feature keys -> (B, ...) tensors

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "truthtrace.detector"
VERSIONS = (1,)
RETRAIN = "train it again (truthtrace train --overwrite)"


class Detector:
    """Base class; subclasses set ``name`` and implement ``fit``, ``score``, ``args``."""

    name: ClassVar[str] = ""
    inputs: ClassVar[tuple[str, ...]] = (SEQ_LAST_ANSWER, SCALAR_LOGPROB_STATS)  # batch keys read
    stochastic: ClassVar[bool] = False  # True: training depends on a seed, so it is fit once per seed
    family: ClassVar[str] = "learned"  # or "training-free": nothing fitted beyond a layer/sign choice

    def fit(self, train: Iterable[Batch], val: Iterable[Batch]) -> dict:
        """Fit on ``train``, choose hyper-parameters on ``val``; return info for the summary."""
        raise NotImplementedError

    def score(self, batches: Iterable[Batch]) -> np.ndarray:
        """Return ``(n,)`` float64 scores, one per trace, in batch order."""
        raise NotImplementedError

    def args(self) -> dict:
        """Constructor keyword arguments that rebuild this detector (JSON-safe)."""
        return {}

    def selection(self) -> dict:
        """What was chosen on validation (e.g. ``{"layer": 17, "epochs": 12}``); {} if nothing.

        ``evaluate`` reports it per seed with its spread, so a choice that moves between seeds shows.
        """
        return {}

    def describe(self) -> str:
        """A short note for report tables on what was fitted (e.g. the chosen layer); "" if nothing."""
        return ""

    def save(self, out_dir: str | Path) -> None:
        """Write ``config.json`` (no weights); trained detectors override to add weights."""
        write_config(out_dir, self, state={})

    @classmethod
    def load(cls, out_dir: str | Path) -> "Detector":
        """Rebuild a detector from ``config.json`` in ``out_dir``."""
        return detector_from_config(cls, out_dir)[0]


DETECTORS: dict[str, type[Detector]] = {}


def register(name: str) -> Callable[[type[Detector]], type[Detector]]:
    """Class decorator adding a detector class to :data:`DETECTORS` under ``name``."""

    def deco(cls: type[Detector]) -> type[Detector]:
        if name in DETECTORS and DETECTORS[name] is not cls:
            raise ValueError(f"detector name {name!r} is already registered to {DETECTORS[name].__name__}")
        cls.name = name
        DETECTORS[name] = cls
        return cls

    return deco


def get_detector(name: str, **kwargs: Any) -> Detector:
    """Build the registered detector ``name`` with ``kwargs``; ValueError for unknown names."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; known: {sorted(DETECTORS)}")
    return DETECTORS[name](**kwargs)


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def write_config(out_dir: str | Path, det: Detector, state: dict) -> None:
    """Write ``out_dir/config.json`` naming ``det``'s registry name, class and args."""
    cfg = {
        "format": FORMAT,
        "version": VERSIONS[-1],
        "name": det.name,
        "class": _class_path(type(det)),
        "args": det.args(),
        "state": state,
    }
    write_json_atomic(Path(out_dir) / CONFIG_FILE, cfg)


def read_config(out_dir: str | Path, expect: type | None = None) -> dict:
    """Read and check ``out_dir/config.json``; ValueError naming the field if malformed."""
    path = Path(out_dir) / CONFIG_FILE
    cfg = read_versioned_json(path, FORMAT, VERSIONS)
    if cfg.get("name") not in DETECTORS:
        raise ValueError(f"{path}: field 'name' {cfg.get('name')!r} is not a registered detector")
    if expect is not None and cfg.get("class") != _class_path(expect):
        raise ValueError(f"{path}: field 'class' is {cfg.get('class')!r}, expected {_class_path(expect)!r}")
    if not isinstance(cfg.get("args"), dict):
        raise ValueError(f"{path}: field 'args' must be an object")
    if not isinstance(cfg.get("state", {}), dict):
        raise ValueError(f"{path}: field 'state' must be an object")
    return cfg


def detector_from_config(cls: type[Detector], out_dir: str | Path) -> tuple[Detector, dict]:
    """Read ``out_dir/config.json`` and build ``cls`` from its args: ``(detector, config)``.

    Raises:
        ValueError: naming the file and field 'args' when an argument is unknown or has a bad value.
    """
    path = Path(out_dir) / CONFIG_FILE
    cfg = read_config(out_dir, expect=cls)
    params = inspect.signature(cls).parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        unknown = sorted(set(cfg["args"]) - {p.name for p in params})
        if unknown:
            raise ValueError(f"{path}: field 'args' has unknown arguments {unknown} for detector {cls.name!r} "
                             f"(it takes {sorted(p.name for p in params)}); {RETRAIN}")
    try:
        return cls(**cfg["args"]), cfg
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: field 'args' does not fit detector {cls.name!r} ({err}); {RETRAIN}") from None


def read_weights(out_dir: str | Path, load: Callable[[str], dict] = load_file) -> dict:
    """Every tensor of ``out_dir/model.safetensors`` read by ``load`` (numpy by default).

    Raises:
        ValueError: naming the file when it is missing or not a safetensors file (garbage, truncated).
    """
    path = Path(out_dir) / WEIGHTS_FILE
    try:
        return load(str(path))
    except FileNotFoundError:
        raise ValueError(f"{path}: missing, the detector was not saved completely; {RETRAIN}") from None
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err}); {RETRAIN}") from None


def check_shapes(arrays: dict, shapes: dict[str, tuple], path: str | Path) -> None:
    """Each key of ``shapes`` present in ``arrays`` with that shape.

    A dimension given as a name (``("d",)``) may have any size, but the same size wherever the name appears.
    Raises:
        ValueError: naming ``path``, the tensor, its shape and the expected one.
    """
    missing = [k for k in shapes if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing tensors {missing}; {RETRAIN}")
    sizes: dict[str, int] = {}
    for key, want in shapes.items():
        got = tuple(arrays[key].shape)
        fits = len(got) == len(want)
        for w, g in zip(want, got) if fits else ():
            fits = fits and (sizes.setdefault(w, g) == g if isinstance(w, str) else w == g)
        if not fits:
            dims = [f"{w}={sizes[w]}" if w in sizes else str(w) for w in want]
            expected = f"({', '.join(dims)}{',' if len(dims) == 1 else ''})"
            raise ValueError(f"{path}: tensor {key!r} has shape {got}, expected {expected}; {RETRAIN}")


def save_arrays(out_dir: str | Path, det: Detector, arrays: dict[str, np.ndarray], state: dict) -> None:
    """Save a fitted detector's numpy ``arrays`` as ``model.safetensors``, then its ``config.json``.

    The old ``config.json`` goes first, so a crash mid-save never leaves a dir that looks complete.
    """
    out = Path(out_dir)
    (out / CONFIG_FILE).unlink(missing_ok=True)
    save_tensors_atomic(out / WEIGHTS_FILE, arrays)
    write_config(out, det, state=state)


def load_arrays(cls: type[Detector], out_dir: str | Path, shapes: dict[str, tuple]) -> tuple[Detector, dict]:
    """Rebuild ``cls`` from ``config.json`` and read the arrays ``shapes`` names from ``model.safetensors``.

    Args:
        cls: the detector class.
        out_dir: the saved detector.
        shapes: ``{key: shape}`` of the arrays it needs (see :func:`check_shapes`).
    Returns ``(detector, arrays)`` with ``detector.state`` set from the config.
    Raises:
        ValueError: naming the file and field for bad args, an unreadable weights file, a missing or
        wrongly shaped tensor.
    """
    det, cfg = detector_from_config(cls, out_dir)
    arrays = read_weights(out_dir)
    check_shapes(arrays, shapes, Path(out_dir) / WEIGHTS_FILE)
    det.state = cfg.get("state", {})
    return det, arrays


def load_detector(out_dir: str | Path) -> Detector:
    """Load whichever registered detector is saved in ``out_dir``."""
    return DETECTORS[read_config(out_dir)["name"]].load(out_dir)


def id_order(batches_ids: list) -> np.ndarray | None:
    """Positions ``(n,)`` that put the rows of consumed batches in trace-id order (stable), from each batch's
    ``"trace_id"`` list in batch order; None when a batch had none (e.g. hand-made batches).

    Detectors that fit on rows held in memory sort them so first: what they learn then depends on the
    ids and the seed only, not on how the train loader's shuffle, its workers or the feature store's
    shard boundaries happened to order the batches.
    """
    if not batches_ids or any(ids is None for ids in batches_ids):
        return None
    return np.argsort(np.asarray([str(i) for ids in batches_ids for i in ids], dtype=str), kind="stable")


def concat_batches(batches: Iterable[Batch], keys: tuple[str, ...], by_id: bool = False) -> dict[str, np.ndarray]:
    """Consume ``batches`` and concatenate ``keys`` along axis 0 (e.g. ``(n, L+1, d)``).

    Args:
        by_id: rows in trace-id order (:func:`id_order`) when the batches carry ``"trace_id"``; else in
            batch order.
    Raises:
        ValueError: if the iterator is empty or a batch lacks one of ``keys``.
    """
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    ids: list = []
    for batch in batches:
        for k in keys:
            if k not in batch:
                raise ValueError(f"batch is missing key {k!r}")
            parts[k].append(np.asarray(batch[k]))
        ids.append(batch.get("trace_id"))
    if not parts[keys[0]]:
        raise ValueError("no batches to read (empty split?)")
    order = id_order(ids) if by_id else None
    cols = {k: np.concatenate(v, axis=0) for k, v in parts.items()}
    return cols if order is None else {k: v[order] for k, v in cols.items()}
