"""Out-of-distribution grading: leave-one-category-out and the category transfer matrix.

A detector graded on a random split has seen questions of every kind in training. Here it is trained
again on some categories and tested on others (``evaluate --split category``):

- **leave-one-category-out**: for each category, every detector is refit on the other categories
  (train/val cut by question hash) and graded on all of that category's traces;
- **transfer matrix**: one detector (``transfer_detector``, the probe by default) is fit on one category
  and graded on a held-in share of it (the diagonal) and on every other category.

Each refit trains on a *view* of the feature store: a folder of symbolic links to its shards with its
own ``split.json`` (:func:`truthtrace.features.splits.group_split`), so nothing is copied or re-extracted.
Everything goes under ``<report>/ood/``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from truthtrace import metrics
from truthtrace.detectors import DETECTORS, load_detector, read_config
from truthtrace.detectors.torch_base import TorchDetector
from truthtrace.detectors.train import TrainConfig, train
from truthtrace.features.dataset import FeatureDataset, make_loader
from truthtrace.features.splits import SPLIT_FILE, group_split, write_split
from truthtrace.labels.io import read_label_csv
from truthtrace.store import TraceStore

MIN_TRACES = 10  # a held-out category smaller than this (or with one class) is skipped, and said so


def feature_view(features_dir: Path, split_doc: dict, out: Path) -> Path:
    """A folder ``out`` linking every file of the feature store but ``split.json``, with ``split_doc`` as its split.

    Returns ``out``. Existing links are replaced, so a re-run with another split is safe.
    """
    out.mkdir(parents=True, exist_ok=True)
    for src in Path(features_dir).resolve().iterdir():
        if src.name == SPLIT_FILE or src.name.startswith(".") or not src.is_file():
            continue
        link = out / src.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(src)
    write_split(out, split_doc, features_dir=str(features_dir))
    return out


def store_groups(features_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """``(trace ids, question ids, categories)`` of every record of a feature store (category "unknown" if unset)."""
    ids, qids, cats = [], [], []
    for tid, meta in TraceStore(features_dir).metas():
        ids.append(tid)
        qids.append(str(meta.get("question_id", tid)))
        cats.append(str(meta.get("category") or "unknown"))
    return ids, qids, cats


def saved_setup(detectors_dir: Path, names: list[str]) -> dict[str, dict]:
    """Each detector's constructor args as saved (``config.json``, first seed), so refits match the originals."""
    args = {}
    for name in names:
        first = sorted((detectors_dir / name).glob("seed-*/config.json"))
        if first:
            args[name] = {k: v for k, v in read_config(first[0].parent)["args"].items()
                          if k not in ("seed", "log_dir", "checkpoint_dir")}
    return {k: v for k, v in args.items() if v}


def test_scores(view: Path, labels, det_dir: Path, batch_size: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(trace ids, scores (n,), labels (n,))`` of the view's test split under the detector saved in ``det_dir``."""
    det = load_detector(det_dir)
    ds = FeatureDataset(view, split="test", labels=labels, keys=tuple(det.inputs), require_labels=True)
    batches = list(make_loader(ds, batch_size=batch_size, num_workers=0))
    ids = [str(t) for b in batches for t in b["trace_id"]]
    y = np.concatenate([np.asarray(b["label"]) for b in batches]) if batches else np.zeros(0, np.int64)
    return ids, det.score(iter(batches)), y


def _auroc(scores: np.ndarray, y: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one class: NaN
        return metrics.auroc(scores, y)


def _fit(view: Path, labels, out: Path, names: list[str], args: dict, seed: int) -> Path:
    """Train ``names`` on the view (first seed only) into ``out``, always afresh; return it.

    ``train`` would resume detectors saved there by an earlier run, which may have had other labels.
    """
    cfg = TrainConfig(detectors=tuple(names), seeds=(seed,), detector_args=args, overwrite=True)
    train(view, labels, out, cfg, progress=False)
    return out


def _category_table(ids, cats, label_map) -> dict[str, tuple[list[str], str | None]]:
    """Per category: its labelled trace ids and why it cannot be held out (None if it can)."""
    out = {}
    for c in sorted(set(cats)):
        held = [t for t, g in zip(ids, cats) if g == c and t in label_map]
        classes = {label_map[t] for t in held}
        reason = (f"{len(held)} labelled traces (< {MIN_TRACES})" if len(held) < MIN_TRACES else
                  "one class only" if len(classes) < 2 else None)
        out[c] = (held, reason)
    return out


def leave_category_out(features_dir: Path, labels, label_map: dict, detectors_dir: Path, out: Path,
                       names: list[str], config) -> dict:
    """Refit ``names`` without each category and grade them on it.

    Returns:
        ``{"categories": {c: {"n", "hallucination_rate"} or {"skipped": why}}, "auroc": {detector: {c: a}},
        "mean_auroc": {detector: n-weighted mean over categories}, "_scores": {detector: {c: (s, y)}}}``.
    """
    ids, qids, cats = store_groups(features_dir)
    table = _category_table(ids, cats, label_map)
    args = saved_setup(detectors_dir, names)
    res = {"categories": {}, "auroc": {n: {} for n in names}, "mean_auroc": {}, "_scores": {n: {} for n in names}}
    for c, (held, reason) in tqdm(table.items(), desc="leave-one-category-out"):
        if reason:
            res["categories"][c] = {"skipped": reason}
            continue
        doc = group_split(ids, qids, cats, [g for g in table if g != c], [c], seed=config.seed)
        view = feature_view(features_dir, doc, out / c / "features")
        fitted = _fit(view, labels, out / c / "detectors", names, args, seed=0)
        res["categories"][c] = {"n": len(held), "hallucination_rate": float(np.mean([label_map[t] for t in held]))}
        for name in names:
            runs = sorted((fitted / name).glob("seed-*/config.json"))
            if runs:  # a detector train skipped (e.g. its samples are missing) is left out
                _, s, y = test_scores(view, labels, runs[0].parent, config.batch_size)
                res["auroc"][name][c] = _auroc(s, y)
                res["_scores"][name][c] = (s, y)
    for name in names:
        graded = [(res["auroc"][name][c], res["categories"][c]["n"]) for c in res["auroc"][name]
                  if np.isfinite(res["auroc"][name][c])]
        res["mean_auroc"][name] = (float(sum(a * n for a, n in graded) / sum(n for _, n in graded))
                                   if graded else float("nan"))
    return res


def paired_over_categories(a: dict, b: dict, n_boot: int, seed: int, level: float) -> dict:
    """n-weighted mean over categories of AUROC(a) - AUROC(b), with a bootstrap resampling inside each category.

    Args:
        a, b: ``{category: (scores (n,), labels (n,))}`` of two detectors on the same held-out traces.
    """
    cats = [c for c in a if c in b and len(np.unique(a[c][1])) == 2]
    if not cats:
        return {"difference": float("nan"), "difference_ci": [float("nan")] * 2}
    rng = np.random.default_rng(seed)
    weights = np.array([len(a[c][1]) for c in cats], np.float64)

    def diff(idx_of):
        d = [metrics.rank_auroc(a[c][0][idx_of[c]], a[c][1][idx_of[c]])
             - metrics.rank_auroc(b[c][0][idx_of[c]], b[c][1][idx_of[c]]) for c in cats]
        return float(np.average(d, weights=weights))

    full = diff({c: np.arange(len(a[c][1])) for c in cats})
    draws = []
    for _ in range(n_boot):
        idx = {c: rng.integers(0, len(a[c][1]), len(a[c][1])) for c in cats}
        if all(len(np.unique(a[c][1][idx[c]])) == 2 for c in cats):
            draws.append(diff(idx))
    alpha = (1 - level) / 2
    return {"difference": full, "difference_ci": np.quantile(draws, [alpha, 1 - alpha]).tolist()}


def transfer_matrix(features_dir: Path, labels, label_map: dict, detectors_dir: Path, out: Path, name: str,
                    config) -> dict:
    """Fit ``name`` on each category alone; AUROC on every category (its own held-in 15% on the diagonal).

    Returns ``{"detector", "categories": [...], "auroc": [[train x test]], "n": [[...]], "skipped": {c: why}}``;
    NaN where a test category has one class, a whole NaN row where a category could not be fit on.
    """
    ids, qids, cats = store_groups(features_dir)
    table = _category_table(ids, cats, label_map)
    order = [c for c, (_, reason) in table.items() if reason is None]
    cat_of = dict(zip(ids, cats))
    args = saved_setup(detectors_dir, [name])
    res = {"detector": name, "categories": order, "auroc": [], "n": [], "skipped": {}}
    for a in tqdm(order, desc=f"transfer matrix ({name})"):
        doc = group_split(ids, qids, cats, [a], order, test_fraction_in_train=0.15, seed=config.seed)
        view = feature_view(features_dir, doc, out / a / "features")
        try:
            fitted = _fit(view, labels, out / a / "detectors", [name], args, seed=0)
            tids, s, y = test_scores(view, labels, next((fitted / name).glob("seed-*")), config.batch_size)
        except (ValueError, StopIteration) as err:  # one class in the category's train split, nothing saved
            res["skipped"][a] = str(err) or "not fitted"
            res["auroc"].append([float("nan")] * len(order))
            res["n"].append([0] * len(order))
            continue
        by_cat = np.array([cat_of[t] for t in tids])
        res["auroc"].append([_auroc(s[by_cat == b], y[by_cat == b]) for b in order])
        res["n"].append([int((by_cat == b).sum()) for b in order])
    return res


def default_ood_detectors(names: list[str]) -> list[str]:
    """The detectors refit per category by default: every saved one but the stack and the torch-trained ones
    (refitting an MLP, LSTM or GNN once per category costs hours on a CPU; name them to include them)."""
    return [n for n in names if n != "stack" and not issubclass(DETECTORS[n], TorchDetector)]


def ood_section(features_dir: Path, labels_csv, detectors_dir: Path, out: Path, rows: list[dict], config) -> dict:
    """The report's ``ood`` section: leave-one-category-out AUROC beside the in-distribution one, the paired
    interval of the best learned vs the best training-free detector out of distribution, and the transfer matrix."""
    label_map = read_label_csv(labels_csv)
    saved = [r["detector"] for r in rows]
    names = list(config.ood_detectors) if config.ood_detectors else default_ood_detectors(saved)
    loco = leave_category_out(Path(features_dir), labels_csv, label_map, Path(detectors_dir), out / "category",
                              names, config)
    in_dist = {r["detector"]: r["test_auroc"] for r in rows}
    table = {n: {"in_distribution": in_dist.get(n), "leave_category_out": loco["mean_auroc"][n],
                 "gap": (in_dist[n] - loco["mean_auroc"][n]) if n in in_dist else None,
                 "per_category": loco["auroc"][n]} for n in names}
    best = {}
    for fam in ("learned", "training-free"):
        cands = [n for n in names if DETECTORS[n].family == fam and np.isfinite(loco["mean_auroc"][n])]
        if cands:
            best[fam] = max(cands, key=lambda n: loco["mean_auroc"][n])
    comparison = None
    if len(best) == 2:
        paired = paired_over_categories(loco["_scores"][best["learned"]], loco["_scores"][best["training-free"]],
                                        config.n_bootstrap, config.seed, config.ci_level)
        comparison = {"best_learned": best["learned"], "best_training_free": best["training-free"], **paired,
                      "significant": bool(paired["difference_ci"][0] > 0)}
    transfer = (transfer_matrix(Path(features_dir), labels_csv, label_map, Path(detectors_dir), out / "transfer",
                                config.transfer_detector, config) if config.transfer_detector else None)
    return {"categories": loco["categories"], "detectors": table, "comparison": comparison, "transfer": transfer}
