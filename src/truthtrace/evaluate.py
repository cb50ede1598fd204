"""Stage ``evaluate``: grade saved detectors on the held-out test split.

Uses the split saved by ``train`` (``split.json``), so test traces are never those a
detector was fit or tuned on. The decision threshold is chosen on validation and
applied to test. Writes ``report.json`` (versioned) and ``report.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from truthtrace import metrics
from truthtrace.detectors import CONFIG_FILE, Detector, load_detector
from truthtrace.features_io import Features, iter_batches, load_labeled
from truthtrace.fileio import json_safe, write_json_atomic, write_text_atomic
from truthtrace.train import SPLIT_FILE, read_split, split_stats

REPORT_FORMAT = "truthtrace.report"
REPORT_VERSION = 1


@dataclass
class EvalConfig:
    """Settings of the ``evaluate`` stage.

    Args:
        detectors: names (sub-dirs of the detectors dir) to grade; ``None`` = all saved.
        n_bootstrap: bootstrap resamples for the AUROC confidence interval.
        ci_level: confidence level of that interval.
        seed: bootstrap seed.
        batch_size: traces per scoring batch.
    Raises:
        ValueError: naming the field for out-of-range values.
    """

    detectors: tuple[str, ...] | None = None
    n_bootstrap: int = 1000
    ci_level: float = 0.95
    seed: int = 0
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.detectors is not None:
            self.detectors = tuple(self.detectors)
            if not self.detectors:
                raise ValueError("detectors must be None (all) or name at least one detector")
        if self.n_bootstrap <= 0:
            raise ValueError(f"n_bootstrap must be > 0, got {self.n_bootstrap}")
        if not 0 < self.ci_level < 1:
            raise ValueError(f"ci_level must be in (0, 1), got {self.ci_level}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {self.batch_size}")


def find_detectors(detectors_dir: Path, names: tuple[str, ...] | None) -> dict[str, Path]:
    """Return ``{name: dir}`` of saved detectors; ValueError if none or a name is missing."""
    if names is None:
        found = {p.name: p for p in sorted(detectors_dir.iterdir()) if (p / CONFIG_FILE).is_file()}
    else:
        found = {n: detectors_dir / n for n in names}
        missing = [n for n, p in found.items() if not (p / CONFIG_FILE).is_file()]
        if missing:
            raise ValueError(f"detectors: no saved detector for {missing} in {detectors_dir}")
    if not found:
        raise ValueError(f"{detectors_dir}: no saved detectors (sub-dirs with {CONFIG_FILE})")
    return found


def evaluate_detector(det: Detector, features: Features, split: dict[str, np.ndarray], config: EvalConfig) -> dict:
    """Score val and test with ``det``; return its row of the report."""
    assert features.labels is not None
    y_val, y_test = features.labels[split["val"]], features.labels[split["test"]]
    s_val = det.score(iter_batches(features, split["val"], config.batch_size))  # (n_val,)
    s_test = det.score(iter_batches(features, split["test"], config.batch_size))  # (n_test,)
    threshold = metrics.threshold_from_val(s_val, y_val)
    lo, hi = metrics.bootstrap_auroc_ci(s_test, y_test, config.n_bootstrap, config.seed, config.ci_level)
    return {
        "detector": det.name,
        "detail": det.describe(),
        "test_auroc": metrics.auroc(s_test, y_test),
        "test_auroc_ci": [lo, hi],
        "test_auprc": metrics.auprc(s_test, y_test),
        "test_accuracy": metrics.accuracy_at(s_test, y_test, threshold),
        "test_balanced_accuracy": metrics.balanced_accuracy_at(s_test, y_test, threshold),
        "threshold": threshold,
        "val_auroc": metrics.auroc(s_val, y_val),
        "n_test": int(len(y_test)),
        "base_rate": float(y_test.mean()) if len(y_test) else float("nan"),
    }


def _sort_key(row: dict) -> float:
    auc = row["test_auroc"]
    return -auc if auc is not None and not math.isnan(auc) else math.inf


def evaluate(
    features_dir: str | Path,
    labels_csv: str | Path,
    detectors_dir: str | Path,
    out_dir: str | Path,
    config: EvalConfig | None = None,
) -> dict:
    """Grade every saved detector on the test split saved by ``train``.

    Args:
        features_dir: feature dir used for training.
        labels_csv: labels CSV used for training.
        detectors_dir: ``out_dir`` of ``train`` (holds ``split.json`` and detectors).
        out_dir: where ``report.json`` and ``report.md`` go.
        config: :class:`EvalConfig`; defaults if ``None``.
    Returns:
        The report (as written to ``report.json``, NaN as ``None``), rows sorted by
        test AUROC, best first.
    """
    config = config or EvalConfig()
    ddir = Path(detectors_dir)
    features = load_labeled(features_dir, labels_csv)
    split = read_split(ddir / SPLIT_FILE, features)
    rows = [
        evaluate_detector(load_detector(path), features, split, config)
        for path in find_detectors(ddir, config.detectors).values()
    ]
    report = json_safe({
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "features_dir": str(features_dir),
        "detectors_dir": str(ddir),
        "model": features.model,
        "ci_level": config.ci_level,
        "n_bootstrap": config.n_bootstrap,
        "split": split_stats(features, split),
        "results": sorted(rows, key=_sort_key),
    })
    out = Path(out_dir)
    write_json_atomic(out / "report.json", report)
    write_text_atomic(out / "report.md", report_markdown(report))
    return report


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _cells(row: dict) -> list[str]:
    lo, hi = row["test_auroc_ci"]
    return [
        row["detector"],
        row.get("detail", ""),
        f"{_fmt(row['test_auroc'])} [{_fmt(lo)}, {_fmt(hi)}]",
        _fmt(row["test_auprc"]),
        _fmt(row["test_accuracy"]),
        _fmt(row["val_auroc"]),
        str(row["n_test"]),
    ]


HEADERS = ["detector", "fitted", "test AUROC [CI]", "test AUPRC", "test acc @ val thr", "val AUROC", "n test"]


def format_table(report: dict) -> str:
    """Return the report's results as a markdown table (also fine in a terminal)."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in report["results"]]
    return "\n".join(lines)


def report_markdown(report: dict) -> str:
    """Return the full ``report.md``: split sizes, hallucination rates and the table."""
    n, rate = report["split"]["n"], report["split"]["hallucination_rate"]
    sizes = ", ".join(f"{k} {n[k]}" for k in n)
    rates = ", ".join(f"{k} {_fmt(rate[k])}" for k in rate)
    level = round(100 * report["ci_level"])
    return (
        f"# truthtrace report\n\nModel: `{report['model']}`  \n"
        f"Split sizes (traces): {sizes}  \nHallucination rate: {rates}\n\n"
        f"Sorted by test AUROC; CI is a {level}% bootstrap interval "
        f"({report['n_bootstrap']} resamples); accuracy uses the threshold chosen on val.\n\n"
        f"{format_table(report)}\n"
    )


def rich_table(report: dict):
    """Return the results as a ``rich.table.Table`` for pretty terminal printing."""
    from rich.table import Table

    table = Table(title=f"truthtrace report ({report['model']})")
    for h in HEADERS:
        table.add_column(h, justify="left" if h in ("detector", "fitted") else "right")
    for row in report["results"]:
        table.add_row(*_cells(row))
    return table
