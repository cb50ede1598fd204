"""The live engine on the embedded model: its scores equal the stored pipeline's (marked slow)."""

import numpy as np
import pytest

from truthtrace.data import load_bundled
from truthtrace.detectors import load_detector
from truthtrace.features.dataset import FeatureDataset, make_loader
from truthtrace.inference import Engine, EngineConfig
from truthtrace.pipeline import RunConfig, run
from truthtrace.store import TraceStore
from truthtrace.traces.extract import ExtractConfig

pytestmark = pytest.mark.slow
DETECTORS = ["probe", "perplexity", "max_entropy", "attn_logdet", "hidden_svd", "lookback"]


@pytest.fixture(scope="module")
def default_model():
    from truthtrace.models import load_model

    return load_model(device="cpu")


@pytest.fixture(scope="module")
def live_run(tmp_path_factory, default_model):
    """A 24-question run captured from the generation steps, one question per batch (no padding)."""
    out = tmp_path_factory.mktemp("live-run")
    cfg = RunConfig(out_dir=str(out), n_questions=24, detectors=DETECTORS, graphs=False,
                    extract=ExtractConfig(batch_size=1, max_new_tokens=12, capture="generate"))
    run(cfg, *default_model, progress=False, log=lambda *_: None)
    return out


def offline(out, name):
    det = load_detector(out / "detectors" / name / "seed-0")
    ds = FeatureDataset(out / "features", split=None, keys=det.inputs)
    return dict(zip([i for s in ds.shards for i in s], det.score(iter(make_loader(ds, 64, num_workers=0)))))


def test_live_scores_equal_the_stored_pipeline_on_the_embedded_model(live_run, default_model):
    store = TraceStore(live_run / "traces")
    qs = load_bundled(n=24, seed=0)
    engine = Engine(EngineConfig(detectors=[live_run / "detectors"], dtype="float32", cache=None, max_batch=1),
                    *default_model)
    results = engine.answer([q.question for q in qs], ids=[q.id for q in qs])
    assert [r["answer"] for r in results] == [store.meta(q.id)["generation"] for q in qs]
    worst = {}
    for name in DETECTORS:
        want = offline(live_run, name)
        live = np.array([r["scores"][name]["score"] for r in results])
        ref = np.array([want[q.id] for q in qs])
        worst[name] = float(np.max(np.abs(live - ref) / (1 + np.abs(ref))))
    print("\nembedded model, live vs stored, worst relative difference:", worst)
    assert max(worst.values()) < 1e-3, worst


def test_batched_bf16_engine_stays_close(live_run):
    """Batched (left padded) and in bfloat16: the answers stay close to the stored float32 ones."""
    qs = load_bundled(n=24, seed=0)
    engine = Engine(EngineConfig(detectors=[live_run / "detectors"], cache=None, max_batch=8, dtype="bfloat16"))
    results = engine.answer([q.question for q in qs], ids=[q.id for q in qs])
    assert all(r["error"] is None for r in results) and results[0]["dtype"] == "bfloat16"
    store = TraceStore(live_run / "traces")
    same = np.mean([r["answer"] == store.meta(q.id)["generation"] for r, q in zip(results, qs)])
    print(f"\nbatched engine ({results[0]['dtype']}): {same:.0%} of answers identical to the stored ones")
    assert same >= 0.5
