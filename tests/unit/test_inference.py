"""The live engine: its scores equal extract -> preprocess -> detector on the same questions."""


import numpy as np
import pytest
from tiny_runs import tiny_trained_run

from truthtrace.data import Question
from truthtrace.detectors import load_detector
from truthtrace.features.dataset import FeatureDataset, make_loader
from truthtrace.inference import Engine, EngineConfig
from truthtrace.store import TraceStore

WORDS = ["France", "Mars", "Hamlet", "gold", "spider", "planet", "capital", "red", "legs", "symbol"]
QUESTIONS = [Question(id=f"q{i:02d}", question=f"What is the {WORDS[i % 10]} of {WORDS[(i * 3) % 10]} {i}?",
                      answers=("x",), category="test") for i in range(40)]
DETECTORS = ("probe", "probe_exact", "perplexity", "max_entropy", "attn_logdet", "hidden_svd", "lookback", "mlp", "lstm", "gnn")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_model, tiny_tokenizer):
    """extract (generate capture) -> labels -> preprocess -> train on a tiny random model."""
    args = {"mlp": {"max_epochs": 2, "sweep_epochs": 1, "hidden": [8], "log_dir": None},
            "lstm": {"max_epochs": 2, "log_dir": None}, "gnn": {"max_epochs": 2, "log_dir": None}}
    return tiny_trained_run(tmp_path_factory.mktemp("live"), tiny_model, tiny_tokenizer, QUESTIONS, DETECTORS,
                            detector_args=args)


def offline_scores(root, name):
    det = load_detector(root / "det" / name / "seed-0")
    ds = FeatureDataset(root / "feats", split=None, keys=det.inputs)
    ids = [i for s in ds.shards for i in s]
    return dict(zip(ids, det.score(iter(make_loader(ds, batch_size=64, num_workers=0)))))


@pytest.fixture(scope="module")
def engine(pipeline, tiny_model, tiny_tokenizer):
    return Engine(EngineConfig(detectors=[pipeline / "det"], dtype="float32", cache=None, max_batch=4),
                  tiny_model, tiny_tokenizer)


def test_live_scores_equal_stored_pipeline(pipeline, engine):
    results = engine.answer([q.question for q in QUESTIONS], ids=[q.id for q in QUESTIONS])
    store = TraceStore(pipeline / "traces")
    assert [r["answer"] for r in results] == [store.meta(q.id)["generation"] for q in QUESTIONS]
    worst = {}
    for name in DETECTORS:
        offline = offline_scores(pipeline, name)
        live = np.array([r["scores"][name]["score"] for r in results])
        want = np.array([offline[q.id] for q in QUESTIONS])
        worst[name] = float(np.max(np.abs(live - want) / (1 + np.abs(want))))
    print("\nworst relative difference, live vs stored:", worst)
    assert max(worst.values()) < 2e-3, worst


def test_running_risk_ends_at_the_final_score(engine):
    [res] = engine.answer([QUESTIONS[3].question])
    for name in ("probe", "probe_exact", "perplexity", "mlp"):
        entry = res["scores"][name]
        assert len(entry["running"]) == len(res["tokens"]) and entry["pre_answer"] is not None
        final = entry["probability"] if entry["calibrated"] else entry["score"]
        assert entry["running"][-1] == pytest.approx(final, rel=1e-5, abs=1e-6)
    assert res["scores"]["attn_logdet"]["running"] is None  # reads attention: scored on the whole answer only
    assert all(set(t) == {"id", "text", "logprob", "entropy", "risk"} for t in res["tokens"])
    best = max(engine.detectors.detectors, key=lambda d: d.calibration["val_auroc"]).name
    assert 0 <= res["risk"] <= 1 and res["risk_detector"] == best
    colour = res["token_risk_detector"]  # the primary when it scores every prefix, else the best one that does
    assert res["scores"][colour]["running"] is not None
    assert colour == best or res["scores"][best]["running"] is None


def test_one_bad_request_never_breaks_the_batch(engine):
    long = "word " * 400  # over the tiny model's context of 256
    results = engine.answer(["", 42, long, QUESTIONS[0].question, "   "])
    errors = [r["error"] for r in results]
    assert "empty" in errors[0] and "must be text" in errors[1] and "over the limit" in errors[2]
    assert errors[3] is None and results[3]["answer"] is not None and "empty" in errors[4]


def test_a_failing_batch_is_retried_request_by_request(engine, monkeypatch):
    real = engine._run_batch

    def flaky(batch):
        if any(r.question == "boom" for r in batch):
            raise RuntimeError("kernel exploded")
        return real(batch)

    monkeypatch.setattr(engine, "_run_batch", flaky)
    results = engine.answer([QUESTIONS[1].question, "boom", QUESTIONS[2].question])
    assert results[1]["error"] == "could not answer: RuntimeError: kernel exploded"
    assert results[0]["error"] is None and results[2]["error"] is None


def test_batches_follow_length_and_budget(engine):
    reqs = [engine.request(i, "word " * n, None) for i, n in enumerate([30, 1, 20, 2, 10, 3])]
    batches = engine.buckets(reqs)
    assert all(len(b) <= engine.config.max_batch for b in batches)
    lengths = [len(r.prompt) for b in batches for r in b]
    assert lengths == sorted(lengths)


def test_cache_hit_returns_the_same_result(pipeline, tiny_model, tiny_tokenizer, tmp_path):
    cfg = EngineConfig(detectors=[pipeline / "det"], dtype="float32", cache=tmp_path / "c.sqlite")
    eng = Engine(cfg, tiny_model, tiny_tokenizer)
    first = eng.answer([QUESTIONS[5].question])[0]
    again = Engine(cfg, tiny_model, tiny_tokenizer).answer([QUESTIONS[5].question])[0]  # a new process: the file
    assert not first["cached"] and again["cached"]
    assert again["scores"] == first["scores"] and again["answer"] == first["answer"]
    assert eng.cache.stats()["rows"] == 1


def test_guard_flags_or_abstains_with_a_reason(pipeline, tiny_model, tiny_tokenizer):
    base = dict(detectors=[pipeline / "det"], dtype="float32", cache=None)
    flag = Engine(EngineConfig(**base, guard=1e-9), tiny_model, tiny_tokenizer).answer([QUESTIONS[0].question])[0]
    assert flag["flagged"] and not flag["abstained"] and flag["answer"] is not None
    assert flag["risk_detector"] in flag["reason"]
    cfg = EngineConfig(**base, guard=1e-9, guard_action="abstain")
    held = Engine(cfg, tiny_model, tiny_tokenizer).answer([QUESTIONS[0].question])[0]
    assert held["abstained"] and held["answer"] is None and held["withheld_answer"] == flag["answer"]


def test_score_existing_answers_equals_forward_capture(pipeline, engine):
    """Teacher-forced scoring of the stored answers: the same features as a forward-capture extract."""
    store = TraceStore(pipeline / "traces")
    pairs = [(q.question, store.meta(q.id)["generation"]) for q in QUESTIONS[:6]]
    scored = engine.score(pairs)
    assert [r["answer"] for r in scored] == [a for _, a in pairs]
    assert all(r["error"] is None and set(r["scores"]) == set(DETECTORS) for r in scored)


def test_every_result_records_timing_dtype_and_device(engine):
    [res] = engine.answer([QUESTIONS[7].question])
    t = res["timing"]
    assert t["prefill_s"] > 0 and t["decode_s"] >= 0 and t["tokens_per_s"] > 0 and t["detectors_s"] > 0
    assert res["dtype"] == "float32" and res["device"] == "cpu"


def test_config_is_validated():
    for bad in ({"detectors": ()}, {"detectors": ("x",), "dtype": "int8"}, {"detectors": ("x",), "guard": 1.5},
                {"detectors": ("x",), "max_batch": 0}, {"detectors": ("x",), "calibration": "beta"}):
        with pytest.raises(ValueError):
            EngineConfig(**bad)


def test_stream_yields_each_token_with_the_risk_of_the_final_result(engine):
    events = list(engine.stream(QUESTIONS[9].question, "q09"))
    tokens, final = events[:-1], events[-1]
    assert final["type"] == "result" and all(e["type"] == "token" for e in tokens)
    result = final["result"]
    batch = engine.answer([QUESTIONS[9].question], ids=["q09"])[0]
    assert (result["answer"], result["scores"], result["risk"]) == (batch["answer"], batch["scores"], batch["risk"])
    assert [e["id"] for e in tokens] == [t["id"] for t in result["tokens"]]
    for e, t in zip(tokens, result["tokens"]):
        assert e["logprob"] == pytest.approx(t["logprob"], abs=1e-5)
        assert e["entropy"] == pytest.approx(t["entropy"], abs=1e-5)
        assert set(e["risk"]) == set(t["risk"])
        for name, p in e["risk"].items():
            assert p == pytest.approx(t["risk"][name], abs=1e-5)


def test_stream_of_a_bad_request_is_one_error_event(engine):
    assert [e["type"] for e in engine.stream("   ")] == ["error"]
