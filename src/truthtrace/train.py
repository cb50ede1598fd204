"""Stage ``train``: split labelled features by question and fit every detector.

Outputs in ``out_dir``:

- ``split.json``: trace ids of each split plus the seed and fractions, so
  ``evaluate`` grades on exactly the traces held out here.
- ``<detector name>/``: each saved detector (``config.json`` [+ ``model.safetensors``]).
- ``train_summary.json``: split sizes, hallucination rates and each detector's fit info.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from truthtrace.detectors import DETECTORS, get_detector
from truthtrace.features_io import Features, iter_batches, load_labeled
from truthtrace.fileio import write_json_atomic
from truthtrace.splits import SPLITS, check_fractions, split_by_question

SPLIT_FILE = "split.json"
SUMMARY_FILE = "train_summary.json"
SPLIT_FORMAT = "truthtrace.split"


@dataclass
class TrainConfig:
    """Settings of the ``train`` stage.

    Args:
        detectors: registry names of the detectors to fit.
        fractions: shares of unique questions in (train, val, test).
        seed: split seed.
        batch_size: traces per batch fed to the detectors.
        detector_args: per-detector constructor kwargs, e.g. ``{"probe": {"C": 0.1}}``.
    Raises:
        ValueError: naming the field for an unknown detector, bad fractions, etc.
    """

    detectors: tuple[str, ...] = ("probe", "perplexity", "max_entropy")
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    batch_size: int = 256
    detector_args: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.detectors = tuple(self.detectors)
        if not self.detectors:
            raise ValueError("detectors must name at least one detector")
        unknown = [d for d in self.detectors if d not in DETECTORS]
        if unknown:
            raise ValueError(f"detectors: unknown {unknown}; known: {sorted(DETECTORS)}")
        if len(set(self.detectors)) != len(self.detectors):
            raise ValueError(f"detectors has duplicates: {list(self.detectors)}")
        self.fractions = check_fractions(self.fractions, field="fractions")
        if min(self.fractions) <= 0:  # val picks layers and thresholds; test grades
            raise ValueError(f"fractions must all be > 0 (train, val, test), got {self.fractions}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {self.batch_size}")
        extra = set(self.detector_args) - set(self.detectors)
        if extra:
            raise ValueError(f"detector_args names detectors not in detectors: {sorted(extra)}")


def split_stats(features: Features, split: dict[str, np.ndarray]) -> dict:
    """Return ``{"n": {split: count}, "hallucination_rate": {split: rate}}``."""
    assert features.labels is not None
    n = {name: int(len(split[name])) for name in SPLITS}
    rate = {
        name: float(features.labels[split[name]].mean()) if len(split[name]) else None for name in SPLITS
    }
    return {"n": n, "hallucination_rate": rate}


def write_split(path: Path, features: Features, split: dict[str, np.ndarray], config: TrainConfig) -> None:
    """Write ``split.json`` with the trace ids of each split."""
    obj = {
        "format": SPLIT_FORMAT,
        "version": 1,
        "seed": config.seed,
        "fractions": list(config.fractions),
        **{name: [features.trace_ids[i] for i in split[name]] for name in SPLITS},
    }
    write_json_atomic(path, obj)


def read_split(path: str | Path, features: Features) -> dict[str, np.ndarray]:
    """Map the trace ids in ``split.json`` back to indices into ``features``.

    Traces missing from ``features`` (e.g. since unlabelled) are skipped with a warning.
    Raises:
        ValueError: naming the field if the file is malformed.
    """
    obj = json.loads(Path(path).read_text(encoding="utf-8"))
    if obj.get("format") != SPLIT_FORMAT or obj.get("version") != 1:
        raise ValueError(f"{path}: field 'format'/'version' must be {SPLIT_FORMAT!r} version 1")
    pos = {t: i for i, t in enumerate(features.trace_ids)}
    out, missing = {}, 0
    for name in SPLITS:
        if not isinstance(obj.get(name), list):
            raise ValueError(f"{path}: field {name!r} must be a list of trace ids")
        out[name] = np.array([pos[t] for t in obj[name] if t in pos], dtype=np.int64)
        missing += len(obj[name]) - len(out[name])
    if missing:
        warnings.warn(f"{missing} traces listed in {path} are not in the labelled features; skipped", stacklevel=2)
    return out


def train(features_dir: str | Path, labels_csv: str | Path, out_dir: str | Path, config: TrainConfig | None = None) -> dict:
    """Split, fit every detector in ``config.detectors`` and save them under ``out_dir``.

    Returns:
        The train summary also written to ``out_dir/train_summary.json``.
    Raises:
        ValueError: for bad inputs (see :func:`truthtrace.features_io.read_features`)
            or a split unusable by a detector (e.g. one class in train).
    """
    config = config or TrainConfig()
    out = Path(out_dir)
    features = load_labeled(features_dir, labels_csv)
    split = split_by_question(features.question_ids, config.fractions, config.seed, strata=features.labels)
    write_split(out / SPLIT_FILE, features, split, config)
    infos = {}
    for name in config.detectors:
        det = get_detector(name, **config.detector_args.get(name, {}))
        infos[name] = det.fit(
            iter_batches(features, split["train"], config.batch_size),
            iter_batches(features, split["val"], config.batch_size),
        )
        det.save(out / name)
    summary = {
        "format": "truthtrace.train_summary",
        "version": 1,
        "features_dir": str(features_dir),
        "model": features.model,
        "seed": config.seed,
        "fractions": list(config.fractions),
        **split_stats(features, split),
        "detectors": infos,
    }
    write_json_atomic(out / SUMMARY_FILE, summary)
    return summary
