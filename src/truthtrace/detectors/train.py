"""Stage ``train``: fit detectors on a feature store (``truthtrace preprocess``) and its labels.

The split is the one ``preprocess`` fixed in the feature store's ``split.json`` (by
question id), so PCA, training, layer choice and testing all see the same traces.

Outputs in ``out_dir``:

- ``split.json``: a copy of the feature store's split, read back by ``evaluate``;
- ``<detector>/seed-<s>/``: each saved detector (``config.json`` [+ ``model.safetensors``]),
  one per seed for detectors whose training is random, ``seed-0`` only otherwise;
- ``train_summary.json``: split sizes, hallucination rates and each fit's info.

Re-running resumes: a detector whose ``config.json`` exists with the same arguments, and that
loads in full (config and weights), is skipped; one that does not load is refit, with a warning.
``overwrite`` deletes the ``<detector>/`` folders it refits, refusing any that hold files train did
not write (``RUN_FILES``).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from tqdm.auto import tqdm

from truthtrace import distributed
from truthtrace.detectors.base import CONFIG_FILE, DETECTORS, WEIGHTS_FILE, get_detector, load_detector, read_config
from truthtrace.detectors.calibration import fit_calibration, read_calibration, write_calibration
from truthtrace.detectors.train_pool import fit_in_pool
from truthtrace.features.dataset import FeatureDataset, make_loader
from truthtrace.features.samples import MissingSamplesError
from truthtrace.features.splits import SPLIT_FILE, SPLITS, read_split, write_split
from truthtrace.fileio import (
    check_output_apart,
    clear_own_output,
    read_versioned_json,
    refuse_foreign,
    write_json_atomic,
)
from truthtrace.local_ranks import run_local_ranks, threads_per_proc

SUMMARY_FILE = "train_summary.json"
SUMMARY_FORMAT = "truthtrace.train_summary"  # version 2
WHERE_ARGS = ("log_dir", "checkpoint_dir")  # detector arguments a resume does not compare
DEFAULT_DETECTORS = ("probe", "probe_exact", "mlp", "lstm", "transformer", "gnn", "lookback", "perplexity",
                     "max_entropy", "attn_logdet", "hidden_svd", "length")
# what train writes in ``<out>/<detector>/`` (paths relative to it; a folder ends in "/"): per seed the
# saved detector, its checkpoints and everything the tracker logs in ``tb/``, plus atomic-write temps
_SAVED = r"(config\.json|model\.safetensors|calibration\.json)"
_CHECKPOINT, _TEMP = r"(best|last)\.(json|safetensors)", r"\.\w+\.tmp"
RUN_FILES = (r"seed-\d+/", rf"seed-\d+/({_SAVED}|\.{_SAVED}{_TEMP})", r"seed-\d+/checkpoints/",
             rf"seed-\d+/checkpoints/({_CHECKPOINT}|\.{_CHECKPOINT}{_TEMP})", r"seed-\d+/tb/.*")
# a saved detector that fails to load (truncated or garbage weights, config not matching them)
LOAD_ERRORS = (ValueError, OSError, RuntimeError, KeyError, TypeError, SafetensorError)


@dataclass
class TrainConfig:
    """Settings of the ``train`` stage.

    Args:
        detectors: registry names of the detectors to fit (``("all",)`` = every registered one).
        seeds: training seeds; detectors with random training are fit once per seed.
        batch_size: traces per batch.
        num_workers: DataLoader workers; ``None`` picks from the machine.
        detector_args: per-detector constructor kwargs, e.g. ``{"probe": {"C": 0.1}}``.
        overwrite: refit detectors that are already saved.
        procs: fit on this many processes of this machine (``truthtrace.detectors.train_pool``); 1: in this one.
    Raises:
        ValueError: naming the field for an unknown detector, no seeds, etc.
    """

    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 64
    num_workers: int | None = 0
    detector_args: dict[str, dict] = field(default_factory=dict)
    overwrite: bool = False
    procs: int = 1

    def __post_init__(self) -> None:
        self.detectors = tuple(sorted(DETECTORS)) if tuple(self.detectors) == ("all",) else tuple(self.detectors)
        if not self.detectors:
            raise ValueError("detectors must name at least one detector")
        unknown = [d for d in self.detectors if d not in DETECTORS]
        if unknown:
            raise ValueError(f"detectors: unknown {unknown}; known: {sorted(DETECTORS)}")
        if len(set(self.detectors)) != len(self.detectors):
            raise ValueError(f"detectors has duplicates: {list(self.detectors)}")
        self.seeds = tuple(int(s) for s in self.seeds)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {list(self.seeds)}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {self.batch_size}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0 or None, got {self.num_workers}")
        if not isinstance(self.procs, int) or isinstance(self.procs, bool) or self.procs < 1:
            raise ValueError(f"procs must be an int >= 1, got {self.procs!r}")
        extra = set(self.detector_args) - set(self.detectors)
        if extra:
            raise ValueError(f"detector_args names detectors not in detectors: {sorted(extra)}")


def seeds_for(name: str, seeds: tuple[int, ...]) -> tuple[int, ...]:
    """All ``seeds`` for detectors with random training; the first only for deterministic ones."""
    return seeds if DETECTORS[name].stochastic else seeds[:1]


def loaders(features_dir, labels, keys, seed: int, batch_size: int, num_workers: int | None,
            splits=("train", "val")) -> list:
    """DataLoaders over ``splits`` of the feature store; train is shuffled with ``seed``."""
    out = []
    for split in splits:
        ds = FeatureDataset(features_dir, split=split, labels=labels, keys=keys, shuffle=split == "train",
                            seed=seed, require_labels=True)
        out.append(make_loader(ds, batch_size=batch_size, num_workers=num_workers))
    return out


def _build(name: str, seed: int, config: TrainConfig, run_dir: Path):
    """Construct detector ``name``; random ones get the seed and their log/checkpoint dirs."""
    kwargs = dict(config.detector_args.get(name, {}))
    cls = DETECTORS[name]
    if cls.stochastic:
        kwargs.setdefault("seed", seed)
        kwargs.setdefault("log_dir", str(run_dir / "tb"))
        kwargs.setdefault("checkpoint_dir", str(run_dir / "checkpoints"))
    return get_detector(name, **kwargs)


def _run_dir(out: Path, name: str, seed: int) -> Path:
    """Where train saves detector ``name`` fitted with ``seed``: ``<out>/<name>/seed-<seed>``."""
    return out / name / f"seed-{seed}"


def _learned(args) -> dict | None:
    """A detector's arguments without :data:`WHERE_ARGS` (where its logs and checkpoints went, not what it learns:
    ranks under ``on_ranks`` see ``--out`` under another path)."""
    return {k: v for k, v in args.items() if k not in WHERE_ARGS} if isinstance(args, dict) else args


def _done(run_dir: Path, det) -> bool:
    """True if ``run_dir`` holds a saved detector with the same arguments as ``det`` (:data:`WHERE_ARGS` aside) that
    loads in full.

    A detector whose files do not load (truncated or corrupt weights, weights not fitting the config)
    is refit: False, with a warning naming the weights file and the error.
    """
    cfg = run_dir / CONFIG_FILE
    if not cfg.is_file():
        return False
    try:
        saved = read_config(run_dir)
    except ValueError:  # another format or version: refit
        return False
    if saved.get("name") != det.name or _learned(saved.get("args")) != _learned(json.loads(json.dumps(det.args()))):
        return False
    try:
        load_detector(run_dir)  # reads config.json and every weight, checking they fit
    except LOAD_ERRORS as err:  # config.json was read above: the weights are what does not load
        where = run_dir / WEIGHTS_FILE if (run_dir / WEIGHTS_FILE).exists() else run_dir
        warnings.warn(f"{where}: the saved {det.name} detector does not load ({type(err).__name__}: {err}); "
                      "training it again", stacklevel=2)
        return False
    return True


def clear_runs(out: Path, names: tuple[str, ...]) -> None:
    """Delete the ``<out>/<name>/`` folders of detectors ``names`` (``overwrite``): what train wrote only.

    Raises:
        ValueError: one of them holds files train did not write (named); nothing is deleted then.
    """
    runs = [out / name for name in names if (out / name).exists() or (out / name).is_symlink()]
    for run in runs:  # check all before deleting any
        refuse_foreign(run, RUN_FILES, "--out", "truthtrace train")
    for run in runs:
        clear_own_output(run, RUN_FILES, "--out", "truthtrace train", remove_folder=True)


def fit_one(name: str, seed: int, features_dir, labels, out: Path, config: TrainConfig) -> dict:
    """Fit (or resume) detector ``name`` with ``seed``; returns its fit info."""
    run_dir = _run_dir(out, name, seed)
    det = _build(name, seed, config, run_dir)
    if not config.overwrite and _done(run_dir, det):
        if read_calibration(run_dir) is None:  # trained before calibration was saved
            calibrate_saved(load_detector(run_dir), features_dir, labels, run_dir, config)
        return {"skipped": "already trained"}
    train_dl, val_dl = loaders(features_dir, labels, tuple(det.inputs), seed, config.batch_size,
                               config.num_workers)
    t0 = time.perf_counter()
    info = det.fit(train_dl, val_dl)
    det.save(run_dir)
    calibrate_saved(det, features_dir, labels, run_dir, config)
    return dict(info, seconds=round(time.perf_counter() - t0, 2), detail=det.describe())


def fit_job(name: str, seed: int, features_dir, labels, out: Path, config: TrainConfig) -> dict:
    """:func:`fit_one`, but a sampling baseline without a samples store is skipped (a warning says why)."""
    try:
        return fit_one(name, seed, features_dir, labels, out, config)
    except MissingSamplesError as err:
        warnings.warn(f"detector {name} skipped: {err}", stacklevel=2)
        return {"skipped": f"no samples: {err}"}


def calibrate_saved(det, features_dir, labels, run_dir: Path, config: TrainConfig) -> dict:
    """Fit Platt and isotonic maps on ``det``'s validation scores; write ``calibration.json`` into ``run_dir``."""
    (val_dl,) = loaders(features_dir, labels, tuple(det.inputs), 0, config.batch_size, 0, splits=("val",))
    batches = list(val_dl)
    y = np.concatenate([np.asarray(b["label"]) for b in batches]) if batches else np.zeros(0, np.int64)
    doc = fit_calibration(det.score(iter(batches)) if batches else np.zeros(0), y)
    write_calibration(run_dir, doc)
    return doc


def _saved(name: str, seed: int, out: Path, config: TrainConfig) -> bool:
    """True when this fit would be skipped as already trained (see :func:`fit_one`)."""
    run_dir = _run_dir(out, name, seed)
    return not config.overwrite and _done(run_dir, _build(name, seed, config, run_dir))


def _fit_here(jobs: list[tuple[str, int]], args: tuple, progress: bool) -> dict[tuple[str, int], dict]:
    """:func:`fit_job` of every job in this process, in order; ``{(name, seed): info}``."""
    done = {}
    with tqdm(jobs, desc="train", disable=not progress or not jobs) as bar:  # closed before an error propagates
        for job in bar:
            done[job] = fit_job(*job, *args)
    return done


def _fit_split_on_ranks(jobs: list[tuple[str, int]], feats: Path, labels_csv, out: Path,
                        config: TrainConfig) -> dict[tuple[str, int], dict]:
    """The fits of detectors that split their batches over DDP ranks (``splits_over_ranks``, the gnn), each on
    all ``config.procs`` processes at once (``truthtrace train`` as local ranks, rank 0 writing ``out``), before
    the pool takes the rest; ``{(name, seed): info}``. Saved ones are left to the pool (it skips them)."""
    todo = [(name, seed) for name, seed in jobs if getattr(DETECTORS[name], "splits_over_ranks", False)
            and not _saved(name, seed, out, config)]
    if not todo:
        return {}
    names, seeds = sorted({n for n, _ in todo}), sorted({s for _, s in todo})
    run_local_ranks(config.procs, ["train", "--features", str(feats.resolve()), "--labels",
                                   str(Path(labels_csv).resolve()), "--out", str(out.resolve()), "--detectors",
                                   ",".join(names), "--seeds", ",".join(map(str, seeds)), "--batch-size",
                                   str(config.batch_size), "--num-workers", str(config.num_workers or 0),
                                   "--detector-args", json.dumps(config.detector_args)])
    fitted = read_versioned_json(out / SUMMARY_FILE, SUMMARY_FORMAT, (2,))["detectors"]  # rank 0's, of these fits
    return {(name, seed): fitted[name][f"seed-{seed}"] for name, seed in todo}


def train(features_dir: str | Path, labels_csv: str | Path, out_dir: str | Path,
          config: TrainConfig | None = None, progress: bool = True) -> dict:
    """Fit every detector in ``config.detectors`` (per seed) and save them under ``out_dir``.

    Returns:
        The summary also written to ``out_dir/train_summary.json``.
    Raises:
        FileNotFoundError: no ``split.json`` in the feature store (not made by ``preprocess``).
        ValueError: bad inputs, e.g. a split with one class; with ``overwrite``, a detector folder holding
            files train did not write (named; nothing is deleted).
    """
    config = config or TrainConfig()
    check_output_apart(out_dir, {"feature store": features_dir, "labels": labels_csv})
    out, feats = Path(out_dir), Path(features_dir)
    if config.overwrite:
        clear_runs(out, config.detectors)
    doc = read_split(feats)  # checks the file
    split = {s: doc[s] for s in SPLITS}
    write_split(out, doc, features_dir=str(feats))
    jobs = [(name, seed) for name in config.detectors for seed in seeds_for(name, config.seeds)]
    args = (feats, labels_csv, out, config)
    if config.procs > 1 and not distributed.launched():
        done = _fit_split_on_ranks(jobs, feats, labels_csv, out, config)
        rest = [job for job in jobs if job not in done]
        done.update(fit_in_pool(rest, fit_job, args, config.procs, threads_per_proc(config.procs), progress)
                    if len(rest) > 1 else _fit_here(rest, args, progress))
    else:
        done = _fit_here(jobs, args, progress)
    infos: dict[str, dict] = {}
    for name, seed in jobs:
        infos.setdefault(name, {})[f"seed-{seed}"] = done[name, seed]
    summary = {"format": SUMMARY_FORMAT, "version": 2, "features_dir": str(features_dir),
               "labels": str(labels_csv), "seeds": list(config.seeds),
               "split_sizes": {k: len(split[k]) for k in ("train", "val", "test")}, "detectors": infos}
    write_json_atomic(out / SUMMARY_FILE, summary)
    return summary


def run_of(detector_dir: str | Path) -> Path:
    """The ``train`` output a saved detector belongs to: ``<out>`` of ``<out>/<name>/seed-<s>``."""
    return Path(detector_dir).resolve().parent.parent


def training_split(detector_dir: str | Path) -> tuple[dict | None, str]:
    """The ``split.json`` of the training run of a detector saved by ``train`` (``<out>/<name>/seed-<s>``).

    Returns:
        ``(document or None, its path or "")``: None for a detector saved elsewhere.
    Raises:
        ValueError: the file exists but is malformed (named).
    """
    run = run_of(detector_dir)
    if not (run / SPLIT_FILE).is_file():
        return None, ""
    return read_split(run), str(run / SPLIT_FILE)
