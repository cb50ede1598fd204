"""The detectors a live engine scores with, and everything needed to feed them as ``preprocess`` did.

A detector was trained on one feature store, made from one trace store. Scoring a new answer the
same way needs the feature store's schema (which layers, which graphs) and PCA, and the trace store's
generation and capture settings (prompt template, chat template, which layers were kept). All of it is
found from the detector's own folder: ``<run>/split.json`` names the feature store, whose schema
names its source trace store.

Accepted paths: one saved detector (``<run>/<name>/seed-<s>``), a detector's folder (its lowest seed),
or a whole ``train`` output (the lowest seed of every detector in it).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from truthtrace.detectors import CONFIG_FILE, load_detector
from truthtrace.detectors.calibration import calibrate, read_calibration
from truthtrace.detectors.train import run_of
from truthtrace.features.config import PCA_FILE
from truthtrace.features.graphs import load_pca
from truthtrace.features.splits import read_split
from truthtrace.naming import SAMPLE_PREFIX
from truthtrace.store import TraceStore


@dataclass
class LiveDetector:
    """One loaded detector: ``name``, ``seed`` (e.g. "seed-0"), its folder, the detector and its calibration."""

    name: str
    seed: str
    path: Path
    detector: object
    calibration: dict | None
    digest: str  # sha256 of its saved files: part of the cache key

    def probabilities(self, scores: np.ndarray, method: str = "platt") -> np.ndarray | None:
        """Calibrated P(hallucinated) ``(n,)`` for raw scores ``(n,)``; None when it has no calibration."""
        return calibrate(self.calibration, scores, method)


@dataclass
class DetectorSet:
    """Detectors of one feature store, with its schema, PCA and the source trace store's schema."""

    detectors: list[LiveDetector]
    features_dir: Path
    feature_schema: dict
    pca: tuple[torch.Tensor, torch.Tensor] | None
    trace_schema: dict

    @property
    def keys(self) -> tuple[str, ...]:
        """Every feature key some detector reads (``seq.*``, ``scalar.*``, ``graphs``)."""
        return tuple(sorted({k for d in self.detectors for k in d.detector.inputs}))


def detector_dirs(path: str | Path) -> list[Path]:
    """Saved-detector folders under ``path`` (see the module docstring), sorted by detector name.

    Raises:
        ValueError: ``path`` holds no saved detector (names it).
    """
    root = Path(path)
    if (root / CONFIG_FILE).is_file():
        return [root]
    seeds = sorted(root.glob(f"seed-*/{CONFIG_FILE}"))
    if seeds:
        return [seeds[0].parent]
    firsts = {}
    for cfg in sorted(root.glob(f"*/seed-*/{CONFIG_FILE}")):
        firsts.setdefault(cfg.parent.parent.name, cfg.parent)
    if not firsts:
        raise ValueError(f"{root}: no saved detector here (expected <run>/<name>/seed-<s>/{CONFIG_FILE}); "
                         "train one with `truthtrace train`")
    return [firsts[n] for n in sorted(firsts)]


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _features_dir(seed_dir: Path) -> Path:
    """The feature store a saved detector was trained on (from its run's ``split.json``)."""
    run = run_of(seed_dir)
    doc = read_split(run)
    if not doc.get("features_dir"):
        raise ValueError(f"{run}/split.json: field 'features_dir' is missing; train the detector again")
    feats = Path(doc["features_dir"])
    return feats if feats.is_absolute() or feats.exists() else run / feats


def _live_only(detectors: list[LiveDetector]) -> list[LiveDetector]:
    """The detectors that score one answer: those reading sampled answers (``sample.*``) are left out, with a
    warning; ValueError when none is left."""
    live = [d for d in detectors if not any(k.startswith(SAMPLE_PREFIX) for k in d.detector.inputs)]
    left_out = sorted({d.name for d in detectors} - {d.name for d in live})
    if left_out and not live:
        raise ValueError(f"detectors {left_out} need several sampled answers per question (truthtrace sample) and "
                         "cannot score one live answer; give another detector")
    if left_out:
        warnings.warn(f"detectors {left_out} need several sampled answers per question and are not scored live",
                      stacklevel=3)
    return live


def load_detector_set(paths) -> DetectorSet:
    """Load the detectors at ``paths`` (see :func:`detector_dirs`) and what feeding them needs.

    Raises:
        ValueError: no detector, detectors of different feature stores, or a store they need is missing.
    """
    dirs = [d for p in ([paths] if isinstance(paths, (str, Path)) else paths) for d in detector_dirs(p)]
    if not dirs:
        raise ValueError("no detector given")
    stores = {d: _features_dir(d).resolve() for d in dirs}
    if len(set(stores.values())) > 1:
        raise ValueError("the detectors were trained on different feature stores: "
                         + "; ".join(f"{d} <- {s}" for d, s in stores.items()) + "; load one set at a time")
    features_dir = stores[dirs[0]]
    for need, what in ((features_dir, "feature store"),):
        if not (need / "index.json").is_file():
            raise ValueError(f"{need}: the {what} the detectors were trained on is gone; it holds their PCA "
                             "and feature settings")
    feature_schema = TraceStore(features_dir).schema
    source = Path(feature_schema["source"])
    if not (source / "index.json").is_file():
        raise ValueError(f"{source}: the trace store the detectors' features came from is gone; it holds the "
                         "generation and capture settings to answer with")
    graph = feature_schema.get("graph") or {}
    pca = load_pca(features_dir / PCA_FILE) if graph.get("pca") else None
    detectors = _live_only([LiveDetector(d.parent.name, d.name, d, load_detector(d), read_calibration(d),
                                         _digest(d)) for d in dirs])
    return DetectorSet(detectors, features_dir, feature_schema, pca, TraceStore(source).schema)
