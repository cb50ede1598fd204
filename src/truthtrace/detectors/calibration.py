"""Calibrated probabilities for a saved detector: Platt and isotonic maps fitted on the validation split.

Detector scores are logits, log-probs or entropies on arbitrary scales. ``train`` fits both maps on
the validation split right after the detector is fit and saves them as ``calibration.json`` beside
``config.json``, so anything that scores live (:mod:`truthtrace.inference`) can say "the probability
that this answer is made up". The isotonic map is stored as its breakpoints and applied by linear
interpolation, clipped at the ends (what scikit-learn's ``IsotonicRegression.predict`` does), so
using it needs neither scikit-learn nor a pickle.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from truthtrace import metrics
from truthtrace.fileio import read_versioned_json, write_json_atomic

CALIBRATION_FILE = "calibration.json"
FORMAT, VERSIONS = "truthtrace.calibration", (1,)
METHODS = ("platt", "isotonic")


def fit_calibration(val_scores: np.ndarray, val_labels: np.ndarray) -> dict:
    """Both calibration maps for scores ``(n,)`` with labels ``(n,)`` (1 = hallucinated).

    Returns:
        ``{"platt": {"a", "b"}, "isotonic": {"x", "y"}, "n_val", "positive_rate", "val_auroc"}``; a map is None when
        validation holds one class only (nothing to calibrate on).
    """
    from sklearn.isotonic import IsotonicRegression

    s, y = np.asarray(val_scores, np.float64), np.asarray(val_labels, np.int64)
    ok = np.isfinite(s)
    s, y = s[ok], y[ok]
    doc = {"n_val": int(len(y)), "positive_rate": float(y.mean()) if len(y) else math.nan, "platt": None,
           "isotonic": None, "val_auroc": None}
    if len(np.unique(y)) < 2:
        return doc
    doc["val_auroc"] = float(metrics.auroc(s, y))
    a, b = metrics.platt_calibrator(s, y)
    doc["platt"] = {"a": a, "b": b}
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, y)
    doc["isotonic"] = {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    return doc


def write_calibration(detector_dir: str | Path, doc: dict) -> Path:
    """Write ``calibration.json`` (with its format header) into a saved detector's folder."""
    path = Path(detector_dir) / CALIBRATION_FILE
    write_json_atomic(path, {"format": FORMAT, "version": VERSIONS[-1], **doc})
    return path


def read_calibration(detector_dir: str | Path) -> dict | None:
    """The detector's calibration document, or None when it has none (trained before calibration was saved).

    Raises:
        ValueError: the file exists but is not a calibration document (names the file and field).
    """
    path = Path(detector_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    doc = read_versioned_json(path, FORMAT, VERSIONS)
    for method in METHODS:
        if doc.get(method) is not None and not isinstance(doc[method], dict):
            raise ValueError(f"{path}: field {method!r} must be an object or null")
    iso = doc.get("isotonic")
    if iso is not None and (len(iso.get("x", [])) != len(iso.get("y", [])) or not iso.get("x")):
        raise ValueError(f"{path}: field 'isotonic' needs equally long, non-empty 'x' and 'y'")
    return doc


def calibrate(doc: dict | None, scores: np.ndarray, method: str = "platt") -> np.ndarray | None:
    """P(hallucinated) ``(n,)`` for raw scores ``(n,)`` under ``method``; None without a usable map.

    Raises:
        ValueError: an unknown method.
    """
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
    params = (doc or {}).get(method)
    s = np.asarray(scores, np.float64)
    if params is None:
        return None
    if method == "platt":
        if not (math.isfinite(params["a"]) and math.isfinite(params["b"])):
            return None
        return 1.0 / (1.0 + np.exp(-np.clip(params["a"] * s + params["b"], -50, 50)))
    return np.interp(s, np.asarray(params["x"], np.float64), np.asarray(params["y"], np.float64))
