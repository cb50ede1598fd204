"""Stream a feature store (``truthtrace preprocess``) into batches for detectors.

``FeatureDataset`` is an ``IterableDataset`` that never holds more than one shard's
records plus a shuffle buffer: it walks the store shard by shard, splits the work
between DataLoader workers and distributed ranks so that every sample of the split is
yielded exactly once per epoch, and shuffles (shard order, record order, then a buffer
of ``buffer_size`` samples) with seeds derived from ``(seed, epoch)``.

    ds = FeatureDataset("runs/a/feats", split="train", labels="runs/a/labels.csv",
                        keys=("seq.last_answer", "scalar.lookback", "graphs"), shuffle=True)
    loader = make_loader(ds, batch_size=64)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for batch in loader:   # batch["seq.last_answer"] (B, Lh, d), batch["graphs"][g].x (N, node_dim)
            ...
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from truthtrace.features.config import (
    FEATURES_KIND,
    FEATURES_VERSION,
    GRAPHS,
    POSITIONS,
    SCALAR_KEYS,
    SEQ_KEYS,
    graph_key,
    seq_key,
)
from truthtrace.features.open_stores import shared_store
from truthtrace.features.samples import (
    MissingSamplesError,
    check_sample_keys,
    is_sample_key,
    join_sample,
    open_samples,
    samples_beside,
)
from truthtrace.features.splits import SPLITS, read_split
from truthtrace.labels.io import read_label_csv
from truthtrace.machine import usable_cpus
from truthtrace.store import StoreError, TraceStore

UNKNOWN = -1  # label of a trace labels.csv does not cover


def split_ids(feature_dir: str | Path, split: str | None) -> list[str]:
    """Trace ids of ``split`` ("train", "val", "test") from ``split.json``; every id for None.

    Raises:
        ValueError: unknown split name or a malformed ``split.json``.
        FileNotFoundError: ``split.json`` is missing.
    """
    root = Path(feature_dir)
    if split is None:
        return TraceStore(root).ids()
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    return list(read_split(root)[split])


def _feature_store(root: Path) -> TraceStore:
    """The feature store at ``root``; ValueError naming the command that makes one otherwise."""
    try:
        store = shared_store(root)
    except StoreError:
        store = None
    if store is None or store.schema.get("kind") != FEATURES_KIND:
        raise ValueError(f"{root}: not a feature store (run `truthtrace preprocess` first)")
    return store


def auto_num_workers() -> int:
    """DataLoader workers for this machine: one core stays with the training loop, at most 4."""
    cores = usable_cpus()
    return 0 if cores <= 1 else min(4, cores - 1)


def _load_labels(labels) -> dict[str, int]:
    """``{trace_id: label}`` from a labels.csv path, a dict, or None (empty)."""
    if labels is None:
        return {}
    if isinstance(labels, (str, Path)):
        return read_label_csv(labels)
    return {str(k): int(v) for k, v in labels.items()}


def _check_keys(keys, schema: dict, root: Path) -> tuple[str, ...]:
    """The requested keys, validated against the feature store's schema (None: every layer sequence the store
    holds and the scalars)."""
    seqs = tuple(seq_key(p) for p in schema.get("positions", POSITIONS) if p in POSITIONS)
    keys = tuple(keys) if keys is not None else seqs + SCALAR_KEYS
    allowed = seqs + SCALAR_KEYS + ((GRAPHS,) if schema.get("graph") else ())
    bad = [k for k in keys if k not in allowed and not is_sample_key(k)]  # sample.* keys: checked on the join
    if bad or not keys:
        older = [k for k in bad if k in SEQ_KEYS]
        raise ValueError(f"keys {bad or keys} not available in {root}; choose from {list(allowed)}"
                         + (f" ({older} came with feature store version {FEATURES_VERSION}: re-run preprocess or "
                            "extract --features)" if older else ""))
    return keys


def _check_graph_layers(positions, schema: dict, root: Path) -> tuple[int, ...] | None:
    """``graph_layers`` as a tuple, checked against the store's graph layers (None stays None)."""
    if positions is None:
        return None
    n = len((schema.get("graph") or {}).get("layers", []))
    positions = tuple(positions)
    bad = [p for p in positions if not (isinstance(p, int) and not isinstance(p, bool) and 0 <= p < n)]
    if bad or not positions:
        raise ValueError(f"graph_layers {list(positions)} must be positions in [0, {n}): {root} holds {n} "
                         "graph layers")
    return positions


def _consumer(rank: int, world_size: int) -> tuple[int, int]:
    """``(index, count)`` of this reader among all DataLoader workers of all ranks."""
    info = get_worker_info()
    worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * n_workers + worker, world_size * n_workers


class FeatureDataset(IterableDataset):
    """Samples of one split of a feature store, streamed shard by shard (see module docstring).

    Args:
        feature_dir: a feature store written by ``truthtrace preprocess``.
        split: "train", "val", "test" (from ``split.json``) or None for every record.
        labels: labels.csv path, ``{trace_id: label}`` or None; missing labels are -1.
        keys: tensor keys to yield (``seq.*``, ``scalar.*``) and/or ``"graphs"``; None: every layer sequence
            the store holds and the scalars.
        shuffle: shuffle shard order, record order and through a buffer; else store order.
        buffer_size: shuffle buffer length (samples).
        seed: base seed; the epoch's seed is derived from ``(seed, epoch)``.
        require_labels: raise if a record of the split has no label.
        rank, world_size: read only this rank's share of the split (default 0/1: all of it, also under
            torchrun, where DDP training deals out the batches itself).
        samples: the samples store (``truthtrace sample``) that ``sample.*`` keys are joined from by question id;
            None: ``<feature_dir>/../samples``. Only opened when a ``sample.*`` key is asked for.
        graph_layers: with ``"graphs"``, yield (and decode) only these positions in ``schema["graph"]["layers"]``,
            in this order; None: every graph layer.
    Raises:
        ValueError: not a feature store, unknown keys or split, missing labels with ``require_labels``, a bad
            ``graph_layers``.
        MissingSamplesError: a ``sample.*`` key is asked for and there is no samples store, or it lacks a
            question of the split (a ValueError; ``train`` skips such detectors with this message).
    """

    def __init__(self, feature_dir, split: str | None = "train", labels=None, keys=None,
                 shuffle: bool = False, buffer_size: int = 256, seed: int = 0, require_labels: bool = False,
                 rank: int | None = None, world_size: int | None = None, samples=None,
                 graph_layers: list[int] | tuple[int, ...] | None = None):
        super().__init__()
        self.root = Path(feature_dir)
        store = _feature_store(self.root)
        self.schema = store.schema
        self.keys = _check_keys(keys, self.schema, self.root)
        self.graph_layers = _check_graph_layers(graph_layers, self.schema, self.root)
        wanted = set(store.ids() if split is None else split_ids(self.root, split))  # the store is open already
        # ids of the split per store shard, in store order: the unit of work
        self.shards = [[i for i in ids if i in wanted] for ids in store.shard_ids()]
        self.n_samples = sum(len(s) for s in self.shards)
        self.labels = _load_labels(labels)
        missing = [i for s in self.shards for i in s if i not in self.labels]
        if require_labels and missing:
            raise ValueError(f"{len(missing)} traces of split {split!r} have no label (e.g. {missing[:3]})")
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self.split, self.shuffle, self.buffer_size, self.seed = split, shuffle, buffer_size, seed
        self.sample_keys = tuple(k for k in self.keys if is_sample_key(k))
        self.samples_dir = samples_beside(self.root, samples) if self.sample_keys else None
        if self.sample_keys:
            self._check_samples(store)
        self._samples: tuple[int, TraceStore] | None = None
        self.rank, self.world_size = self._dist(rank, world_size)
        # shared memory, so set_epoch reaches persistent DataLoader workers too
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_samples"] = None  # workers open their own (parsed shard documents are large)
        return state

    def _open(self) -> TraceStore:
        """This process's TraceStore, shared with every other reader of the store in the process.

        Parsing a shard's JSON document costs more than decoding its seq/scalar tensors
        (~0.2 s per 256 records with graphs), so every loader of a process (train, val, calibration,
        one detector after the other) and a persistent worker across epochs reuse the parsed documents.
        """
        return shared_store(self.root)

    def with_graph_layers(self, positions: list[int] | tuple[int, ...]) -> "FeatureDataset":
        """A copy yielding only graph layers ``positions`` (see ``graph_layers``); the same split, order and
        shuffles, sharing this one's epoch. Raises ValueError on a bad position or without ``"graphs"``."""
        if GRAPHS not in self.keys:
            raise ValueError(f"{self.root}: graph_layers needs the key {GRAPHS!r}")
        narrow = copy.copy(self)
        narrow.graph_layers = _check_graph_layers(positions, self.schema, self.root)
        return narrow

    def _check_samples(self, store: TraceStore) -> None:
        """The samples store exists, knows the asked ``sample.*`` keys and holds every question of the split."""
        samples = open_samples(self.samples_dir)
        check_sample_keys(self.sample_keys, samples)
        wanted = {i for s in self.shards for i in s}
        qids = {str(meta.get("question_id")) for tid, meta in store.metas() if tid in wanted}
        missing = sorted(q for q in qids if q not in samples)
        if missing:
            raise MissingSamplesError(f"{self.samples_dir}: no samples of {len(missing)} questions of split "
                                      f"{self.split!r} (e.g. {missing[:3]}); sample them (truthtrace sample resumes)")

    def _open_samples(self) -> TraceStore:
        """This process's samples store (see :meth:`_open`)."""
        if self._samples is None or self._samples[0] != os.getpid():
            self._samples = (os.getpid(), open_samples(self.samples_dir))
        return self._samples[1]

    @staticmethod
    def _dist(rank, world_size) -> tuple[int, int]:
        # Not taken from torch.distributed: under torchrun every rank reads the whole split and
        # fit_module deals the batches out (truthtrace.training.ddp), so non-torch detectors fit as in one process.
        rank, world_size = rank or 0, world_size or 1
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        return rank, world_size

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s shuffle on the next ``iter()`` (in every worker)."""
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def plan(self, consumer: int = 0, n_consumers: int = 1) -> list[str]:
        """Trace ids one reader yields this epoch, in reading order (before the buffer shuffle).

        Whole shards go to readers when there are at least as many shards as readers;
        otherwise every reader walks the shards and takes every ``n_consumers``-th record.
        """
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.shards)) if self.shuffle else np.arange(len(self.shards))
        shards = [[self.shards[n][j] for j in rng.permutation(len(self.shards[n]))] if self.shuffle
                  else self.shards[n] for n in order if self.shards[n]]
        if len(shards) >= n_consumers:
            return [i for s in shards[consumer::n_consumers] for i in s]
        return [i for s in shards for i in s][consumer::n_consumers]

    def _sample(self, trace) -> dict:
        """One sample dict from one feature-store record."""
        if GRAPHS in self.keys and self.graph_layers is None:
            tensors = trace.tensors()  # one read of the span: graphs are most of it
        else:  # decoded on demand: only the graph layers asked for
            tensors = trace
        qid = str(trace.meta.get("question_id"))
        sample = record_sample(trace.id, qid, tensors, self.keys, self.schema, self.labels.get(trace.id, UNKNOWN),
                               self.graph_layers)
        if self.sample_keys:  # joined by question id from the samples store
            sample.update(join_sample(self._open_samples(), qid, self.sample_keys))
        return sample

    def __iter__(self) -> Iterator[dict]:
        if GRAPHS in self.keys:
            _require_pyg()
        consumer, n_consumers = _consumer(self.rank, self.world_size)
        store = self._open()
        samples = (self._sample(store.get(i)) for i in self.plan(consumer, n_consumers))
        if not self.shuffle:
            yield from samples
            return
        yield from _buffer_shuffle(samples, self.buffer_size, np.random.default_rng([self.seed, self.epoch, consumer]))


def record_sample(trace_id: str, question_id: str, tensors, keys: tuple[str, ...], schema: dict,
                  label: int = UNKNOWN, graph_layers: tuple[int, ...] | None = None) -> dict:
    """One sample as detectors see it, from a feature record's tensors (stored, or computed live).

    Args:
        tensors: ``key -> tensor`` of one record (``seq.*`` ``(Lh, d)``, ``scalar.*``, ``graph.*``).
        keys: the keys to yield, ``"graphs"`` for every graph layer of ``schema`` (``sample.*`` keys are skipped:
            :class:`FeatureDataset` joins them from the samples store).
        schema: the feature store's schema.
        graph_layers: positions in ``schema["graph"]["layers"]`` to yield under ``"graphs"``; None: all.

    Returns:
        ``{"trace_id", "question_id", "label", key: float32 tensor, "graphs": [Data per layer]}``.
    """
    sample = {"trace_id": trace_id, "question_id": question_id, "label": label}
    if GRAPHS in keys:
        layers = schema["graph"]["layers"]
        sample[GRAPHS] = [_graph(tensors, layers[p]) for p in (range(len(layers)) if graph_layers is None
                                                               else graph_layers)]
    for key in keys:
        if key != GRAPHS and not is_sample_key(key):
            sample[key] = tensors[key].float()
    return sample


def _buffer_shuffle(items: Iterator, size: int, rng: np.random.Generator) -> Iterator:
    """Shuffle a stream through a buffer of ``size`` items (each item leaves once)."""
    buffer: list = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = int(rng.integers(size))
        yield buffer[j]
        buffer[j] = item
    for j in rng.permutation(len(buffer)):
        yield buffer[j]


def _require_pyg() -> None:
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        raise ImportError("graph batches need torch_geometric: pip install 'truthtrace[gnn]'") from None


def _graph(tensors: dict, layer: int):
    """``torch_geometric.data.Data`` of one graph layer: x ``(n, node_dim)``, edges ``(2, E)``, ``(E, H)``."""
    from torch_geometric.data import Data

    x = tensors[graph_key(layer, "x")].float()
    return Data(x=x, edge_index=tensors[graph_key(layer, "edge_index")].long(),
                edge_attr=tensors[graph_key(layer, "edge_attr")].float(), num_nodes=x.shape[0])


def collate(samples: list[dict]) -> dict:
    """Batch samples: ids as lists, ``label`` ``(B,)`` long, tensors stacked ``(B, ...)``,
    ``graphs`` as one ``torch_geometric.data.Batch`` per graph layer, anything else (``sample.texts``) as a list."""
    batch = {"trace_id": [s["trace_id"] for s in samples], "question_id": [s["question_id"] for s in samples],
             "label": torch.tensor([s["label"] for s in samples], dtype=torch.long)}
    for key in samples[0]:
        if key in batch:
            continue
        if key == GRAPHS:
            from torch_geometric.data import Batch

            batch[key] = [Batch.from_data_list([s[key][g] for s in samples]) for g in range(len(samples[0][key]))]
        elif isinstance(samples[0][key], torch.Tensor):
            batch[key] = torch.stack([s[key] for s in samples])
        else:
            batch[key] = [s[key] for s in samples]
    return batch


def with_graph_layers(loader, positions: list[int]) -> DataLoader | None:
    """``loader`` (made by :func:`make_loader`) reading only graph layers ``positions``: same batches and order,
    the other graph layers never decoded. None when ``loader`` is not a DataLoader over a :class:`FeatureDataset`
    with ``"graphs"`` (e.g. a list of batches)."""
    ds = getattr(loader, "dataset", None)
    if not isinstance(loader, DataLoader) or not isinstance(ds, FeatureDataset) or GRAPHS not in ds.keys:
        return None
    return make_loader(ds.with_graph_layers(positions), batch_size=loader.batch_size, num_workers=loader.num_workers)


def make_loader(dataset: FeatureDataset, batch_size: int = 64, num_workers: int | None = None) -> DataLoader:
    """A re-iterable DataLoader of collated batches (each ``iter()`` is one epoch).

    Args:
        dataset: a FeatureDataset.
        batch_size: samples per batch (the last batch of each worker may be smaller).
        num_workers: worker processes; None picks ``auto_num_workers()``. Workers persist across epochs.
    Raises:
        ValueError: ``batch_size`` < 1 or ``num_workers`` < 0.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    workers = auto_num_workers() if num_workers is None else num_workers
    if workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {workers}")
    return DataLoader(dataset, batch_size=batch_size, collate_fn=collate, num_workers=workers,
                      persistent_workers=workers > 0)
