"""The live engine's result of one request: the answer, its tokens with their risk, every detector's score.

A result is a JSON-able dict (the cache stores it as is)::

    {"id", "question", "answer", "error", "tokens": [{"id", "text", "logprob", "entropy", "risk": {det: p}}],
     "scores": {det: {"score", "probability", "pre_answer", "family"}}, "risk", "risk_detector",
     "token_risk_detector" (whose running risk colours the tokens),
     "flagged", "abstained", "reason", "model", "dtype", "device", "cached", "timing": {...}}

``risk`` is the primary detector's calibrated probability that the answer is made up.
"""

from __future__ import annotations

import math

import numpy as np

from truthtrace.inference.live import runs_live
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS


def error_result(request, message: str) -> dict:
    """The result of a request that could not be answered (bad input, too long, generation failed)."""
    return {"id": request.id, "question": request.question, "answer": None, "error": message, "tokens": [],
            "scores": {}, "risk": None, "risk_detector": None, "flagged": False, "abstained": False,
            "reason": None, "cached": False, "timing": {}}


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _probabilities(live_detector, values: list, method: str) -> list[float | None]:
    """Calibrated probabilities of raw ``values`` (None kept), or the raw values when there is no calibration."""
    p = live_detector.probabilities(np.asarray([np.nan if v is None else v for v in values], np.float64), method)
    return [_finite(v) for v in (values if p is None else p)]


def detector_scores(live_detector, raw: float, running: list | None, method: str) -> dict:
    """One detector's entry of ``scores``.

    ``score`` is raw; ``probability`` is calibrated (None without a calibration); ``pre_answer`` and
    ``running`` (one per answer token) are probabilities when calibrated, raw scores otherwise.
    """
    calibrated = live_detector.probabilities(np.asarray([raw], np.float64), method) is not None
    run = _probabilities(live_detector, running, method) if running is not None else None
    return {"score": _finite(raw), "probability": _probabilities(live_detector, [raw], method)[0] if calibrated
            else None, "calibrated": calibrated, "family": live_detector.detector.family,
            "pre_answer": run[0] if run else None, "running": run[1:] if run else None}


def token_rows(tokenizer, answer_ids: list[int], tensors: dict, scores: dict) -> list[dict]:
    """One row per answer token: id, text, log-prob, entropy and each running detector's risk after it."""
    lp, ent = tensors[ANSWER_LOGPROBS].tolist(), tensors[ANSWER_ENTROPY].tolist()
    rows = []
    for j, tok in enumerate(answer_ids):
        risk = {name: s["running"][j] for name, s in scores.items() if s["running"] is not None}
        rows.append({"id": int(tok), "text": tokenizer.decode([tok]), "logprob": _finite(lp[j]),
                     "entropy": _finite(ent[j]), "risk": risk})
    return rows


def apply_guard(result: dict, primary: str | None, guard: float | None, action: str) -> dict:
    """Set ``risk`` from the primary detector and, past ``guard``, flag or abstain with the reason recorded."""
    entry = result["scores"].get(primary) if primary else None
    risk = entry["probability"] if entry else None
    result.update(risk=risk, risk_detector=primary, flagged=False, abstained=False, reason=None)
    if guard is not None and risk is not None and risk >= guard:
        result["flagged"] = True
        result["reason"] = f"{primary} puts the chance that this answer is made up at {risk:.0%} (guard {guard:.0%})"
        if action == "abstain":
            result.update(abstained=True, withheld_answer=result["answer"], answer=None)
    return result


def pick_primary(detectors, wanted: str | None) -> str | None:
    """The detector behind ``risk``: ``wanted``, else the calibrated one with the best validation AUROC.

    Raises:
        ValueError: ``wanted`` is not among the loaded detectors.
    """
    names = [d.name for d in detectors]
    if wanted is not None:
        if wanted not in names:
            raise ValueError(f"primary detector {wanted!r} is not loaded; loaded: {names}")
        return wanted
    calibrated = [d for d in detectors if d.calibration and d.calibration.get("platt")]
    if not calibrated:
        return None
    return max(calibrated, key=lambda d: _finite(d.calibration.get("val_auroc")) or 0.0).name


def pick_token_detector(detectors, primary: str | None) -> str | None:
    """The detector whose running risk colours the tokens: ``primary`` when it scores every prefix, else the
    calibrated one that does with the best validation AUROC (None when no calibrated detector runs live)."""
    live = [d for d in detectors if runs_live(d.detector.inputs) and d.calibration and d.calibration.get("platt")]
    if any(d.name == primary for d in live):
        return primary
    return max(live, key=lambda d: _finite(d.calibration.get("val_auroc")) or 0.0).name if live else None
