"""extract --features: the feature store written in the forward pass equals preprocess of stored traces.

Tolerance: records are stored in float16 (as preprocess stores them). Forward features run SDPA for the
attention output and recompute the kept rows' weights (eager traces round otherwise); graph node features
are rounded to float16 before the PCA (preprocess rounds the traces' float32 hidden states only after it).
So float keys agree within ATOL + RTOL * |reference| (measured ~5e-4 of the range on graph x, <1e-5 elsewhere),
integer keys (edges) exactly.
"""

import csv
import json

import numpy as np
import pytest
import torch
from conftest import make_tiny_model

from truthtrace.cli import main
from truthtrace.data import Question
from truthtrace.detectors import load_detector
from truthtrace.detectors.train import TrainConfig, train
from truthtrace.features import PCA_FILE, SPLIT_FILE, PreprocessConfig, preprocess
from truthtrace.features import forward as fwd
from truthtrace.features.dataset import FeatureDataset, make_loader
from truthtrace.features.direct import DirectConfig, extract_features, staging_dir
from truthtrace.features import passes
from truthtrace.features.forward import FeatureReducer, features_attention_forward, reducing
from truthtrace.features.passes import batch_plans
from truthtrace.inference import Engine, EngineConfig
from truthtrace.labels.io import read_label_csv
from truthtrace.labels.score import LabelConfig, label_store
from truthtrace.store import TraceStore
from truthtrace.traces.extract import ExtractConfig, extract

ATOL, RTOL = 2e-3, 2e-3
QUESTIONS = [Question(id=f"q{i:02d}", question=f"What is {i} plus {i}?" + " Think." * (i % 4),
                      answers=(str(2 * i),), category="numbers") for i in range(14)]
GRAPH = dict(max_nodes=8, node_dim=4, top_k=3)


@pytest.fixture(scope="module")
def model3(tiny_tokenizer):
    return make_tiny_model(len(tiny_tokenizer), seed=5, layers=3)


def _ext(**kw):
    return ExtractConfig(**{"model": "tiny", "batch_size": 4, "max_new_tokens": 5, "storage_dtype": "float32", **kw})


def _assert_same_store(ref_dir, got_dir):
    """Key by key: same ids, keys, shapes, dtypes; values within the tolerance; schema equal but the source."""
    ref, got = TraceStore(ref_dir), TraceStore(got_dir)
    assert {k: v for k, v in ref.schema.items() if k != "source"} == \
        {k: v for k, v in got.schema.items() if k != "source"}
    assert sorted(ref.ids()) == sorted(got.ids())
    for tid in ref.ids():
        a, b = ref.get(tid), got.get(tid)
        assert a.keys() == b.keys(), tid
        for key in a.keys():
            x, y = a[key], b[key]
            assert (x.shape, x.dtype) == (y.shape, y.dtype), (tid, key)
            if x.is_floating_point():
                torch.testing.assert_close(y.float(), x.float(), atol=ATOL, rtol=RTOL, msg=f"{tid} {key}")
            else:
                assert torch.equal(x, y), (tid, key)
        assert {k: got.meta(tid)[k] for k in ref.meta(tid)} == ref.meta(tid)
    assert json.loads((ref_dir / SPLIT_FILE).read_text()) == json.loads((got_dir / SPLIT_FILE).read_text())


@pytest.mark.parametrize("capture,keep,traced", [("forward", "all", "forward"), ("forward", "last:6", "forward"),
                                                ("forward", "all", "generate"), ("generate", "all", "generate"),
                                                ("generate", "answer", "generate")])
def test_forward_features_equal_preprocess_of_traces(tmp_path, model3, tiny_tokenizer, capture, keep, traced):
    """Traces captured in mode ``traced``, then preprocess, against features reduced while the model runs in
    mode ``capture`` (one forward pass after generation, or the generation steps)."""
    pre = PreprocessConfig(**GRAPH)
    extract(QUESTIONS, tmp_path / "traces", _ext(capture=traced, keep=keep), model3, tiny_tokenizer,
            progress=False)
    preprocess(tmp_path / "traces", tmp_path / "pre", pre, progress=False)
    summary = extract_features(QUESTIONS, tmp_path / "feats", tmp_path / "sample",
                               DirectConfig(_ext(keep=keep, capture=capture), pre, trace_sample=3), model3,
                               tiny_tokenizer, progress=False)
    assert summary["n_new"] == len(QUESTIONS) and summary["n_traces"] == 3 and summary["pca"]
    assert summary["peak_memory_mb"] > 0 and not staging_dir(tmp_path / "feats").exists()
    _assert_same_store(tmp_path / "pre", tmp_path / "feats")
    torch.testing.assert_close(_pca(tmp_path / "feats"), _pca(tmp_path / "pre"), atol=5e-3, rtol=5e-3)


def _pca(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / PCA_FILE))["components"]


def test_attention_subset_threshold_and_no_pca(tmp_path, model3, tiny_tokenizer):
    ext = _ext(attn_layers=[0, 2], hidden_layers=[0, 2, 3])
    pre = PreprocessConfig(max_nodes=6, top_k=None, threshold=0.005, pca=False)
    extract(QUESTIONS[:6], tmp_path / "traces", ext, model3, tiny_tokenizer, progress=False)
    preprocess(tmp_path / "traces", tmp_path / "pre", pre, progress=False)
    extract_features(QUESTIONS[:6], tmp_path / "feats", tmp_path / "sample", DirectConfig(ext, pre), model3,
                     tiny_tokenizer, progress=False)
    _assert_same_store(tmp_path / "pre", tmp_path / "feats")
    assert TraceStore(tmp_path / "feats").schema["attn_layers"] == [0, 2]
    assert len(TraceStore(tmp_path / "sample")) == 0 and TraceStore(tmp_path / "sample").schema["attn_backend"]


def test_resume_after_a_crash_equals_one_run(tmp_path, model3, tiny_tokenizer, monkeypatch):
    config = DirectConfig(_ext(batch_size=2), PreprocessConfig(**GRAPH), trace_sample=2)
    whole = extract_features(QUESTIONS, tmp_path / "whole", tmp_path / "t1", config, model3, tiny_tokenizer,
                             progress=False)
    calls, real = [], passes.forward_records

    def crash(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr("truthtrace.features.direct.forward_records", crash)
    with pytest.raises(KeyboardInterrupt):
        extract_features(QUESTIONS, tmp_path / "part", tmp_path / "t2", config, model3, tiny_tokenizer,
                         progress=False)
    assert len(TraceStore(staging_dir(tmp_path / "part"))) == 4  # two batches kept, the feature store not done
    monkeypatch.setattr("truthtrace.features.direct.forward_records", real)
    again = extract_features(QUESTIONS, tmp_path / "part", tmp_path / "t2", config, model3, tiny_tokenizer,
                             progress=False)
    assert (again["n_new"], again["n_skipped"]) == (len(QUESTIONS) - 4, 4)
    assert whole["n_new"] == len(QUESTIONS)
    _assert_same_store(tmp_path / "whole", tmp_path / "part")
    done = extract_features(QUESTIONS, tmp_path / "part", tmp_path / "t2", config, model3, tiny_tokenizer,
                            progress=False)
    assert (done["n_new"], done["n_skipped"]) == (0, len(QUESTIONS))


def test_bad_settings_are_refused(tmp_path, model3, tiny_tokenizer):
    for kw, field in ((dict(trace_sample=-1), "trace_sample"), (dict(row_chunk=0), "row_chunk"),
                      (dict(extract="tiny"), "extract")):
        with pytest.raises(ValueError, match=field):
            DirectConfig(**kw)
    with pytest.raises(ValueError, match="no-graphs"):
        extract_features(QUESTIONS[:4], tmp_path / "f0", tmp_path / "t0", DirectConfig(_ext(attentions=False)),
                         model3, tiny_tokenizer, progress=False)
    config = DirectConfig(_ext(), PreprocessConfig(**GRAPH))
    extract_features(QUESTIONS[:6], tmp_path / "f", tmp_path / "t", config, model3, tiny_tokenizer, progress=False)
    other = DirectConfig(_ext(), PreprocessConfig(**dict(GRAPH, top_k=2)))
    with pytest.raises(ValueError, match="overwrite"):
        extract_features(QUESTIONS[:6], tmp_path / "f", tmp_path / "t", other, model3, tiny_tokenizer,
                         progress=False)


def test_no_attention_map_is_built(model3, tiny_tokenizer, monkeypatch):
    """The attention function returns no weights; the largest weight block is (H, row_chunk, T), not (L, H, T, T)."""
    seqs, n_prompt = [list(range(4, 44)), list(range(10, 30))], [35, 15]
    schema = dict(hidden_layers=[0, 1, 2, 3], attn_layers=[0, 1, 2], n_heads=2,
                  graph=dict(layers=[1], max_nodes=8, top_k=3, threshold=None))
    returned = []

    def spy(*args, **kwargs):
        out = features_attention_forward(*args, **kwargs)
        returned.append(out[1])
        return out

    monkeypatch.setattr(fwd, "features_attention_forward", spy)
    reducer = FeatureReducer(schema, row_chunk=8)
    reducer.start(batch_plans([len(s) for s in seqs], n_prompt, "all", schema["graph"]))
    ids = torch.tensor([seqs[0], seqs[1] + [0] * 20])
    mask = (torch.arange(40) < torch.tensor([[40], [20]])).long()  # right padding
    with reducing(model3, reducer), torch.no_grad():
        model3(input_ids=ids, attention_mask=mask, use_cache=False)
    assert len(returned) == 3 and all(w is None for w in returned)
    assert reducer.largest_weights == (2, 8, 40)
    assert all(len(s.lookback) == 3 and s.window[1].shape == (2, 8, 8) for s in reducer.samples)
    assert model3.config._attn_implementation == "eager"  # switched back


def test_labels_and_cli_from_the_feature_store(tmp_path, model3, tiny_tokenizer, monkeypatch):
    extract(QUESTIONS[:6], tmp_path / "traces", _ext(), model3, tiny_tokenizer, progress=False)
    label_store(tmp_path / "traces", tmp_path / "a.csv", LabelConfig())
    monkeypatch.setattr("truthtrace.features.direct.load_model", lambda *a, **k: (model3, tiny_tokenizer))
    monkeypatch.setattr("truthtrace.cli.args.load_bundled", lambda n=None, seed=0: QUESTIONS[:6])
    main(["extract", "--out", str(tmp_path / "sample"), "--features", str(tmp_path / "feats"), "--batch-size", "4",
          "--max-new-tokens", "5", "--storage-dtype", "float32", "--trace-sample", "2", "--node-dim", "4",
          "--max-nodes", "8", "--top-k", "3"])
    label_store(tmp_path / "feats", tmp_path / "b.csv", LabelConfig())
    assert read_label_csv(tmp_path / "a.csv") == read_label_csv(tmp_path / "b.csv")
    assert len(TraceStore(tmp_path / "sample")) == 2


def test_train_and_the_live_engine_read_the_direct_store(tmp_path, tiny_model, tiny_tokenizer):
    """Detectors trained on a feature store written in the forward pass score live answers as they score it."""
    extract_features(QUESTIONS, tmp_path / "feats", tmp_path / "traces",
                     DirectConfig(_ext(capture="generate", storage_dtype="float16"), PreprocessConfig(**GRAPH)),
                     tiny_model, tiny_tokenizer, progress=False)
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["trace_id", "hallucinated"]] + [[q.id, i % 2] for i, q in enumerate(QUESTIONS)])
    names = ("probe", "perplexity", "lookback", "attn_logdet", "hidden_svd")
    train(tmp_path / "feats", tmp_path / "labels.csv", tmp_path / "det", TrainConfig(detectors=names, seeds=(0,)),
          progress=False)
    engine = Engine(EngineConfig(detectors=[tmp_path / "det"], dtype="float32", cache=None, max_batch=4),
                    tiny_model, tiny_tokenizer)
    results = engine.answer([q.question for q in QUESTIONS], ids=[q.id for q in QUESTIONS])
    store = TraceStore(tmp_path / "feats")
    assert [r["answer"] for r in results] == [store.meta(q.id)["generation"] for q in QUESTIONS]
    for name in names:
        det = load_detector(tmp_path / "det" / name / "seed-0")
        ds = FeatureDataset(tmp_path / "feats", split=None, keys=det.inputs)
        ids = [i for s in ds.shards for i in s]
        offline = dict(zip(ids, det.score(iter(make_loader(ds, batch_size=64, num_workers=0)))))
        live = np.array([r["scores"][name]["score"] for r in results])
        want = np.array([offline[q.id] for q in QUESTIONS])
        assert np.max(np.abs(live - want) / (1 + np.abs(want))) < 2e-3, name


def test_fused_log_sum_exp_equals_recomputed_rows(model3, monkeypatch):
    """The CPU kernel's log-sum-exp path (diagonals without rows) equals recomputing every kept row's weights."""
    seqs, n_prompt = [list(range(4, 44)), list(range(10, 30))], [35, 15]
    schema = dict(hidden_layers=[0, 1, 2, 3], attn_layers=[0, 1, 2], n_heads=2,
                  graph=dict(layers=[1, 2], max_nodes=8, top_k=3, threshold=None))
    fused = passes.forward_records(model3, seqs, n_prompt, schema, "all", 0)
    monkeypatch.setattr(fwd, "fused_attention", lambda *a, **k: None)
    rows = passes.forward_records(model3, seqs, n_prompt, schema, "all", 0)
    for a, b in zip(fused, rows):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-5, msg=key)


def test_without_attention_maps(tmp_path, model3, tiny_tokenizer):
    ext, pre = _ext(attentions=False), PreprocessConfig(graphs=False)
    extract(QUESTIONS[:5], tmp_path / "traces", ext, model3, tiny_tokenizer, progress=False)
    preprocess(tmp_path / "traces", tmp_path / "pre", pre, progress=False)
    extract_features(QUESTIONS[:5], tmp_path / "feats", tmp_path / "sample", DirectConfig(ext, pre), model3,
                     tiny_tokenizer, progress=False)
    _assert_same_store(tmp_path / "pre", tmp_path / "feats")
    assert TraceStore(tmp_path / "feats").get("q00")["scalar.lookback"].shape == (0, 2)
