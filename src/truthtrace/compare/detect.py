"""A trained detector's AUROC on traces re-extracted with each compared model.

The questions come from a trace store (its held-out test split when the detector was saved by
``truthtrace train``, whose ``split.json`` is beside it); each model answers them again, the answers
are labelled, preprocessed into features with the settings (and the PCA) the detector was trained on, and scored.
"""

from __future__ import annotations

from pathlib import Path

from truthtrace import metrics
from truthtrace.data import Question
from truthtrace.detectors import load_detector
from truthtrace.detectors.train import training_split
from truthtrace.features.build import preprocess
from truthtrace.features.config import PCA_FILE, PreprocessConfig
from truthtrace.features.dataset import FeatureDataset, make_loader
from truthtrace.labels.score import label_store
from truthtrace.store import TraceStore
from truthtrace.traces.extract import ExtractConfig, extract


def held_out_ids(detector_dir: str | Path) -> tuple[set[str] | None, str]:
    """Test-split trace ids from the training run's ``split.json``, so the detector is scored on
    questions it was not fit on.

    Returns:
        ``(ids or None, path of split.json or "")``.
    """
    doc, path = training_split(detector_dir)
    if doc is not None and isinstance(doc.get("test"), list):
        return {str(i) for i in doc["test"]}, path
    return None, ""


def preprocess_config_like(detector_dir: str | Path, graphs: bool):
    """A PreprocessConfig repeating the graph settings of the feature store the detector was trained on.

    A graph detector's node features are projected with the training store's PCA: a PCA refitted on
    re-extracted traces would put them in another basis. The store is ``split.json``'s ``features_dir``.

    Returns:
        ``(PreprocessConfig, note)``; the note says which PCA was used ("" when no graphs are needed).
    """
    if not graphs:
        return PreprocessConfig(graphs=False, overwrite=True), ""
    doc, path = training_split(detector_dir)
    feats = Path(doc["features_dir"]) if doc and doc.get("features_dir") else None
    if feats is None or not feats.is_dir():
        return PreprocessConfig(overwrite=True), (f"training feature store not found ({path or 'no split.json'}): "
                                                  "graph settings and PCA refitted on the re-extracted traces")
    graph = TraceStore(feats).schema.get("graph") or {}
    use_pca = bool(graph.get("pca")) and (feats / PCA_FILE).is_file()
    config = PreprocessConfig(graph_layers=graph.get("layers"), max_nodes=graph.get("max_nodes", 64),
                              top_k=graph.get("top_k"), threshold=graph.get("threshold"), pca=use_pca,
                              node_dim=graph.get("node_dim", 64), overwrite=True,
                              pca_from=str(feats / PCA_FILE) if use_pca else None)
    return config, (f"graph settings and PCA of {feats}" if use_pca else f"graph settings of {feats} (no PCA)")


def store_questions(store, n: int, only: set[str] | None = None) -> list:
    """Up to ``n`` questions rebuilt from a trace store's metas (only trace ids in ``only`` if given).

    Raises:
        ValueError: a meta lacks question_id, question or answers (the trace is named).
    """
    out = []
    for tid, meta in store.metas():
        if only is not None and tid not in only:
            continue
        missing = [k for k in ("question_id", "question", "answers") if k not in meta]
        if missing:
            raise ValueError(f"{store.root}: trace {tid!r}: meta fields {missing} are missing")
        out.append(Question(id=str(meta["question_id"]), question=meta["question"], answers=meta["answers"],
                            category=meta.get("category") or "unknown"))
        if len(out) == n:
            break
    return out


def extract_config_like(schema: dict, spec: str, threads: int):
    """An ExtractConfig capturing exactly what the store's schema records (layers, keep, generation)."""
    gen = schema.get("generation") or {}
    attn = list(schema.get("attn_layers") or [])
    return ExtractConfig(model=spec, threads=threads, hidden_layers=list(schema["hidden_layers"]),
                         attn_layers=attn or None, attentions=bool(attn), keep=schema.get("keep", "all"),
                         capture=schema.get("capture", "forward"), storage_dtype=schema.get("storage_dtype", "float16"),
                         **{k: v for k, v in gen.items() if k in ExtractConfig.__dataclass_fields__})


def build_features(lm, questions: list, extract_config, preprocess_config, work: Path) -> Path:
    """Answer ``questions`` with one loaded model into ``work/traces``, label them (``work/labels.csv``)
    and preprocess them into ``work/features``.

    Returns:
        the feature store directory.
    """
    if extract_config.attentions and hasattr(lm.model, "set_attn_implementation"):
        lm.model.set_attn_implementation("eager")  # attention maps need the eager kernel
    extract(questions, work / "traces", extract_config, model=lm.model, tokenizer=lm.tokenizer, progress=False)
    label_store(work / "traces", work / "labels.csv")
    preprocess(work / "traces", work / "features", preprocess_config, labels=work / "labels.csv", progress=False)
    return work / "features"


def detector_auroc(lm, questions: list, extract_config, det, work: Path, preprocess_config=None) -> dict:
    """Extract ``questions`` with one loaded model, label its answers, build features, score ``det``.

    Args:
        preprocess_config: how to build features (see :func:`preprocess_config_like`); None = the
            defaults, with graphs only when ``det`` reads them.
    Returns:
        detector_auroc (None when one class only), detector_n, detector_hallucination_rate, detector_note.
    """
    import numpy as np

    config = preprocess_config or PreprocessConfig(graphs="graphs" in det.inputs, overwrite=True)
    feats = build_features(lm, questions, extract_config, config, work)
    ds = FeatureDataset(feats, split=None, labels=str(work / "labels.csv"), keys=tuple(det.inputs),
                        require_labels=True)
    batches = list(make_loader(ds, batch_size=64, num_workers=0))
    y = np.concatenate([np.asarray(b["label"]) for b in batches])
    scores = det.score(iter(batches))  # (n,)
    one_class = len(np.unique(y)) < 2
    auc = None if one_class else float(metrics.auroc(scores, y))
    return {"detector_auroc": auc, "detector_n": int(len(y)), "detector_hallucination_rate": float(y.mean()),
            "detector_note": "all answers in one class: AUROC undefined" if one_class else ""}


def detector_aurocs(loaded: list, config) -> list[dict]:
    """Detector AUROC on traces re-extracted with each model from ``config.store``'s questions
    (its held-out test split when the detector's ``split.json`` is found), up to ``config.n_questions``.

    Traces go under ``config.out_dir/detector_traces/<i>-<name>`` (resumable) or a temp dir.
    """
    import tempfile

    det = load_detector(config.detector)
    store = TraceStore(config.store)
    test_ids, split_path = held_out_ids(config.detector)
    questions = store_questions(store, config.n_questions, test_ids)
    if not questions:
        raise ValueError(f"{config.store}: no questions to re-extract (test split of {split_path or 'none'})")
    base = Path(config.out_dir) / "detector_traces" if config.out_dir else Path(tempfile.mkdtemp(prefix="tt-cmp-"))
    source = f"test split of {split_path}" if test_ids is not None else "first traces of the store (no split.json)"
    prep, features_note = preprocess_config_like(config.detector, "graphs" in det.inputs)
    rows = []
    for i, lm in enumerate(loaded):
        cfg = extract_config_like(store.schema, lm.spec, config.threads)
        row = detector_auroc(lm, questions, cfg, det, base / f"{i}-{Path(lm.spec).name}", prep)
        rows.append({**row, "detector_questions": f"{len(questions)} from the {source}",
                     "detector_features": features_note})
    return rows
