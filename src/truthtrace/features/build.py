"""The preprocess stage: turn a trace store into a feature store that detectors stream.

Two passes over the source store. Pass 1 samples train-split tokens of every graph layer
(fixed seed, at most ``pca_max_tokens``) and fits one PCA per layer on them — never on
val/test traces. Pass 2 computes each trace's record (``trace_record``) and appends it
with ``TraceWriter``, so the job is atomic per shard and resumable: a re-run skips the
traces already stored, and refuses a store written with other settings.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from truthtrace.features.config import (
    FEATURES_KIND,
    FEATURES_VERSION,
    LOGPROB_STATS,
    PCA_FILE,
    POSITIONS,
    PreprocessConfig,
)
from truthtrace.features.graphs import (
    PcaMoments,
    fit_pca,
    load_pca,
    save_pca,
)
from truthtrace.features.record import feature_cast, stack_layers, trace_record
from truthtrace.features.splits import (
    SPLIT_FILE,
    SPLIT_METHOD,
    SPLITS,
    make_split,
    read_split,
    split_balance,
    write_split,
)
from truthtrace.fileio import check_output_apart
from truthtrace.labels.io import read_label_csv
from truthtrace.naming import (
    parse_feature_key,
)
from truthtrace.store import TraceStore, TraceWriter
from truthtrace.store.index import INDEX_NAME, load_index, schema_diff

FEATURE_FILES = (SPLIT_FILE, PCA_FILE)  # written beside the shards: --overwrite deletes them with the store


def feature_schema(source: TraceStore, config: PreprocessConfig) -> dict:
    """The feature store's schema for ``source`` under ``config`` (``docs/FORMAT.md``).

    Raises:
        ValueError: a graph layer lacks its attention map or its input hidden state.
    """
    src = source.schema
    hidden, attn = list(src["hidden_layers"]), list(src["attn_layers"])
    graph = None
    if config.graphs:
        layers = attn if config.graph_layers is None else config.graph_layers
        missing = [i for i in layers if i not in attn or i not in hidden]
        if missing or not layers:
            raise ValueError(f"graph_layers {missing or layers}: the store {source.root} lacks their attention "
                             f"maps (stored {attn}) or input hidden states (stored {hidden}); pass --no-graphs")
        node_dim = min(config.node_dim, src["d_model"]) if config.pca else src["d_model"]
        if config.pca and node_dim < config.node_dim:
            warnings.warn(f"node_dim {config.node_dim} > d_model {src['d_model']}: using {node_dim}", stacklevel=3)
        graph = {"layers": list(layers), "max_nodes": config.max_nodes, "top_k": config.top_k,
                 "threshold": config.threshold, "node_dim": node_dim, "pca": config.pca}
        if config.pca and config.pca_from:  # recorded only when set: older stores keep their schema
            graph["pca_from"] = str(pca_source(config.pca_from))
    return {"kind": FEATURES_KIND, "version": FEATURES_VERSION, "source": str(Path(source.root).resolve()),
            "model": src.get("model"), "n_layers": src["n_layers"], "n_heads": src["n_heads"],
            "d_model": src["d_model"], "hidden_layers": hidden, "attn_layers": attn,
            "positions": list(POSITIONS), "logprob_stats": list(LOGPROB_STATS), "graph": graph,
            "split": {"seed": config.split_seed, "fractions": list(config.fractions), "method": SPLIT_METHOD}}


def compute_split(source: TraceStore, config: PreprocessConfig) -> dict:
    """``split.json``'s document: trace ids per split, by question id alone (labels play no part)."""
    ids, qids = [], []
    for tid, meta in source.metas():
        if "question_id" not in meta:
            raise ValueError(f"{source.root}: trace {tid!r}: meta field 'question_id' is missing")
        ids.append(tid)
        qids.append(str(meta["question_id"]))
    if not ids:
        raise ValueError(f"{source.root}: the trace store is empty")
    return make_split(ids, qids, config.fractions, config.split_seed)


def _pca_pass(source: TraceStore, train_ids: list[str], schema: dict, config: PreprocessConfig,
              progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Pass 1: moments of up to ``pca_max_tokens`` graph-window tokens of train traces, then PCA."""
    graph = schema["graph"]
    moments = PcaMoments(len(graph["layers"]), schema["d_model"])
    order = np.random.default_rng(config.split_seed).permutation(len(train_ids))
    bar = tqdm(total=config.pca_max_tokens, desc="pca sample", unit="tok", disable=not progress)
    for i in order:
        trace = source.get(train_ids[i])
        x = stack_layers(trace, graph["layers"], "hidden")[:, -graph["max_nodes"]:]  # (G, n, d)
        x = x[:, : config.pca_max_tokens - moments.count]
        moments.add(x)
        bar.update(x.shape[1])
        if moments.count >= config.pca_max_tokens:
            break
    bar.close()
    return fit_pca(moments, graph["node_dim"])


def _stored_split(out: Path) -> dict | None:
    """The feature store's ``split.json``, or None when it is unreadable or of another version."""
    try:
        return read_split(out)
    except ValueError:
        return None


def check_existing(out: Path, schema: dict, split_doc: dict) -> bool:
    """True if ``out`` already holds a feature store with this schema and split; ValueError if another."""
    if not (out / INDEX_NAME).exists():
        return False
    problems = schema_diff(load_index(out)["schema"], schema)
    if (out / SPLIT_FILE).exists() and _stored_split(out) != split_doc:
        problems.append(f"{SPLIT_FILE}: the split differs (other seed, fractions, traces or split version)")
    if problems:
        raise ValueError(f"{out} holds a feature store written with other settings:\n  " + "\n  ".join(problems)
                         + "\npass --overwrite (overwrite=True) to replace it, or choose another --out")
    return True


def pca_source(pca_from: str | Path) -> Path:
    """The ``pca.safetensors`` that ``pca_from`` names: the file itself, or the one inside a feature store dir."""
    path = Path(pca_from)
    return (path / PCA_FILE if path.is_dir() else path).resolve()


def given_pca(pca_from: str | Path, schema: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the PCA ``pca_from`` names and check it fits ``schema``'s graph layers and node_dim.

    Returns:
        ``(mean (G, d), components (G, k, d))``.
    Raises:
        FileNotFoundError: no such file.
        ValueError: its shapes differ from ``(G, node_dim, d_model)`` of this store (file named).
    """
    path = pca_source(pca_from)
    if not path.is_file():
        raise FileNotFoundError(f"pca_from: {path} does not exist")
    mean, comps = load_pca(path)
    graph = schema["graph"]
    want = (len(graph["layers"]), graph["node_dim"], schema["d_model"])
    if tuple(comps.shape) != want:
        raise ValueError(f"pca_from: {path} holds components {tuple(comps.shape)}, this store needs {want} "
                         "(graph layers, node_dim, d_model): preprocess with the settings it was fitted with")
    return mean, comps


def prepare_pca(out: Path, source, split_doc, schema, config, resuming: bool, progress: bool):
    """The PCA to apply: the given one (``pca_from``), reloaded when resuming, else fitted (pass 1).

    Saved as ``out/pca.safetensors`` either way (a stale one is deleted without PCA).

    Returns:
        ``(mean (G, d), components (G, node_dim, d))``, or None without PCA.
    """
    graph = schema["graph"]
    if not graph or not graph["pca"]:
        (out / PCA_FILE).unlink(missing_ok=True)
        return None
    if config.pca_from:
        mean, comps = given_pca(config.pca_from, schema)
        save_pca(out / PCA_FILE, mean, comps)
        return mean, comps
    if resuming and (out / PCA_FILE).exists():
        mean, comps = load_pca(out / PCA_FILE)
        if tuple(comps.shape) == (len(graph["layers"]), graph["node_dim"], schema["d_model"]):
            return mean, comps
    mean, comps = _pca_pass(source, split_doc["train"], schema, config, progress)
    save_pca(out / PCA_FILE, mean, comps)
    return mean, comps


def _warn_unlabelled(source: TraceStore, label_map: dict[str, int] | None, labels) -> None:
    """Say how many traces the given labels leave out (they are skipped by ``train`` and ``evaluate``)."""
    if label_map is None:
        return
    missing = [tid for tid in source.ids() if tid not in label_map]
    if missing:
        where = labels if isinstance(labels, (str, Path)) else "the labels given"
        warnings.warn(f"{len(missing)} of {len(source)} traces have no label in {where} (e.g. {missing[0]!r}): "
                      "train and evaluate skip them", stacklevel=3)


def open_source(store: str | Path, out: Path, config: PreprocessConfig, labels, warn: bool = True):
    """Check the paths, open the source store and read the labels; the feature schema and split of ``out``.

    Returns:
        ``(source TraceStore, {trace_id: label} or None, schema, split document)``.
    """
    check_output_apart(out, {"trace store": store, "labels": labels if isinstance(labels, (str, Path)) else None,
                             "--pca-from": config.pca_from})
    if config.threads:
        torch.set_num_threads(config.threads)
    source = TraceStore(store)
    label_map = read_label_csv(labels) if isinstance(labels, (str, Path)) else labels
    if warn:
        _warn_unlabelled(source, label_map, labels)
    return source, label_map, feature_schema(source, config), compute_split(source, config)


def feature_writer(out: Path, schema: dict, config: PreprocessConfig) -> TraceWriter:
    """The resumable float16 writer of the feature store ``out`` (``split.json``/``pca.safetensors`` its own)."""
    return TraceWriter(out, schema, storage_dtype="float16", shard_max_traces=config.shard_max_traces,
                       resume=True, overwrite=config.overwrite, own_files=FEATURE_FILES)


def write_records(source: TraceStore, writer: TraceWriter, schema: dict, pca, ids: set[str] | None = None,
                  progress: bool = True) -> tuple[int, int]:
    """Pass 2: the record of every source trace (of ``ids``, if given) that ``writer`` lacks, in store order.

    Args:
        pca: ``(mean (G, d), components (G, k, d))`` or None (raw node features, or no graphs).
    Returns:
        ``(written, skipped)``: records added, and records ``writer`` held already.
    """
    written = skipped = 0
    bar = tqdm(total=len(source) if ids is None else len(ids), desc="preprocess", unit="trace",
               disable=not progress)
    for shard in source.iter_shards():
        for trace in shard:
            if ids is not None and trace.id not in ids:
                continue  # another rank's trace: not decoded
            if writer.has(trace.id):
                skipped += 1
            else:
                tensors, meta = trace_record(trace, schema, pca)
                writer.add(trace.id, {k: feature_cast(v) for k, v in tensors.items()}, meta)
                written += 1
            bar.update(1)
    bar.close()
    return written, skipped


def feature_summary(out: Path, source: TraceStore, schema: dict, split_doc: dict, label_map, counts: tuple[int, int],
                    seconds: float) -> dict:
    """``preprocess``'s summary of the feature store ``out``; ``counts`` = ``(written, skipped)``."""
    info = TraceStore(out).info()
    return {"out": str(out), "source": schema["source"], "n_traces": len(source), "written": counts[0],
            "skipped": counts[1], "seconds": round(seconds, 2), "bytes_on_disk": info["bytes_on_disk"],
            "bytes_per_key": key_bytes(out), "split": {name: len(split_doc[name]) for name in SPLITS},
            "balance": split_balance(split_doc, label_map) if label_map is not None else None,
            "pca": (out / PCA_FILE).exists()}


def preprocess(store: str | Path, out: str | Path, config: PreprocessConfig | None = None,
               labels: str | Path | dict[str, int] | None = None, progress: bool = True) -> dict:
    """Build (or resume) the feature store ``out`` from the trace store ``store``.

    Under torchrun see :func:`truthtrace.features.sharded.sharded_preprocess` (the CLI picks it).

    Args:
        store: source trace store directory.
        out: feature store directory; ``split.json`` and ``pca.safetensors`` go beside its shards.
        config: options (default ``PreprocessConfig()``).
        labels: labels.csv path or ``{trace_id: label}``: only reported (label balance per split);
            the split never depends on labels.
        progress: show progress bars.
    Returns:
        summary: out, n_traces, written, skipped, seconds, bytes_on_disk, bytes_per_key, split sizes,
        and with labels the label balance per split (``balance``).
    Raises:
        ValueError: bad settings, or ``out`` holds a feature store of other settings (names ``--overwrite``).
        StoreError: the source store is unreadable or corrupt, or ``out`` holds files preprocess did not
            write (a new store or ``overwrite`` needs a folder of nothing else; they are named, none deleted).
    """
    config, out, t0 = config or PreprocessConfig(), Path(out), time.perf_counter()
    source, label_map, schema, split_doc = open_source(store, out, config, labels)
    resuming = not config.overwrite and check_existing(out, schema, split_doc)
    with feature_writer(out, schema, config) as writer:
        write_split(out, split_doc)
        todo = any(not writer.has(tid) for tid in source.ids())
        pca = prepare_pca(out, source, split_doc, schema, config, resuming, progress) if todo else None
        counts = write_records(source, writer, schema, pca, progress=progress)
    return feature_summary(out, source, schema, split_doc, label_map, counts, time.perf_counter() - t0)


def key_bytes(feature_dir: str | Path) -> dict[str, int]:
    """Compressed bytes on disk per key, graph layers pooled (``graph.*.x``), from the shard documents."""
    totals: dict[str, int] = {}
    for _, key, entry in TraceStore(feature_dir).entries():
        parsed = parse_feature_key(key)
        name = f"graph.*.{parsed[2]}" if parsed is not None and parsed[0] == "graph" else key
        totals[name] = totals.get(name, 0) + entry["nbytes"]
    return dict(sorted(totals.items()))
