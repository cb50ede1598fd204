"""Detectors that must combine many weak, noisy features: the best single raw feature stays near chance while
the detector does not (the planted signals of the other tests are separable by one feature alone)."""

import numpy as np
import torch

from truthtrace import metrics
from truthtrace.detectors import get_detector

LA, H = 6, 6  # 36 lookback ratios, each shifted a little


def _lookback_batches(n, seed, shift=0.06, batch_size=64):
    """Lookback ratios ``(n, LA, H)`` ~ U(0.2, 0.8) + noise; hallucinated ones lower by ``shift`` on every ratio
    (noise sd 0.17 per ratio: one ratio alone d' 0.35, AUROC ~0.6; all 36 together d' 2.1, AUROC ~0.93)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.uniform(0.2, 0.8, size=(n, LA, H)) - shift * y[:, None, None]
    out = []
    for s in range(0, n, batch_size):
        idx = np.arange(s, min(n, s + batch_size))
        out.append({"trace_id": [f"t{seed}-{i}" for i in idx], "label": torch.from_numpy(y[idx]),
                    "scalar.lookback": torch.from_numpy(x[idx].astype(np.float32))})
    return out


def _cat(batches, key):
    return np.concatenate([np.asarray(b[key]) for b in batches])


def test_lookback_combines_36_weak_ratios():
    train, val, test = _lookback_batches(800, 1), _lookback_batches(200, 2), _lookback_batches(400, 3)
    x_tr, y_tr = _cat(train, "scalar.lookback").reshape(800, -1), _cat(train, "label")
    x_te, y_te = _cat(test, "scalar.lookback").reshape(400, -1), _cat(test, "label")
    per_feature = np.array([metrics.auroc(-x_tr[:, j], y_tr) for j in range(LA * H)])
    j = int(np.argmax(per_feature))  # the best single ratio, chosen on train
    single = metrics.auroc(-x_te[:, j], y_te)
    assert per_feature.max() < 0.66 and single < 0.66, (per_feature.max(), single)
    det = get_detector("lookback")
    det.fit(iter(train), iter(val))
    combined = metrics.auroc(det.score(iter(test)), y_te)
    assert combined > 0.85 and combined > single + 0.15, (combined, single)


def test_mlp_combines_a_shift_spread_over_every_coordinate():
    """seq.last_answer (n, 3, 64): layer 1 shifted by 0.25 sd on every coordinate (d' 2 together, 0.25 alone)."""
    def batches(n, seed):
        r = np.random.default_rng(seed)
        y = r.integers(0, 2, n)
        x = r.normal(size=(n, 3, 64))
        x[:, 1] += 0.25 * y[:, None]
        return [{"trace_id": [f"t{i}" for i in range(s, min(n, s + 64))], "label": torch.from_numpy(y[s:s + 64]),
                 "seq.last_answer": torch.from_numpy(x[s:s + 64].astype(np.float32)),
                 "scalar.logprob_stats": torch.from_numpy(r.normal(size=(min(64, n - s), 8)).astype(np.float32))}
                for s in range(0, n, 64)]

    train, val, test = batches(1200, 1), batches(300, 2), batches(400, 3)
    x_te, y_te = _cat(test, "seq.last_answer")[:, 1], _cat(test, "label")
    single = max(metrics.auroc(x_te[:, j], y_te) for j in range(64))  # even the best coordinate on test itself
    det = get_detector("mlp", max_epochs=15, patience=4, tracking="none", sweep_epochs=2, device="cpu")
    info = det.fit(iter(train), iter(val))
    combined = metrics.auroc(det.score(iter(test)), y_te)
    assert single < 0.65 and combined > 0.8 and info["layer_index"] == 1, (single, combined, info["layer_index"])
