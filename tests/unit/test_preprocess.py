"""preprocess: hand-computed features, positions, edges, PCA on train only, splits, resume, CLI."""

import json
import math
import shutil

import pytest
import torch
from planted_store import make_planted_store, planted_direction

from truthtrace.cli import main
from truthtrace.labels.io import read_labels
from truthtrace.naming import layer_key
from truthtrace.features import (PreprocessConfig, TokenLayout, attn_logdet, build, build_edges, fit_pca,
                                   hidden_svd, layout_of, logprob_stats, lookback_ratio, preprocess,
                                   sequence_features)
from truthtrace.features.graphs import PcaMoments
from truthtrace.store import TraceStore, TraceWriter

CFG = dict(node_dim=4, shard_max_traces=16)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return make_planted_store(tmp_path_factory.mktemp("planted"), n=60, layers=2, heads=2, d=8)


# ---------------------------------------------------------------- scalars and positions


def test_logprob_stats_by_hand():
    lp, ent = torch.tensor([-1.0, -3.0]), torch.tensor([0.5, 1.5])
    assert logprob_stats(lp, ent).tolist() == [-2.0, -3.0, 1.0, -3.0, 1.0, 1.5, 0.5, 2.0]
    assert logprob_stats(torch.zeros(0), torch.zeros(0)).tolist() == [0.0] * 8
    with pytest.raises(ValueError, match="one length"):
        logprob_stats(torch.zeros(2), torch.zeros(3))


def _causal(rows: list[list[float]]) -> torch.Tensor:
    """The same (T, T) map for 2 layers x 1 head: (La=2, H=1, T, T)."""
    return torch.tensor(rows).expand(2, 1, -1, -1)


def test_lookback_ratio_by_hand():
    layout = TokenLayout(n_tokens=4, n_prompt=2, kept_start=0)
    on_prompt = _causal([[1, 0, 0, 0], [.5, .5, 0, 0], [.3, .7, 0, 0], [.6, .4, 0, 0]])
    assert torch.allclose(lookback_ratio(on_prompt, layout), torch.ones(2, 1))
    on_self = torch.eye(4).expand(2, 3, 4, 4)  # answer rows look only at themselves
    assert torch.allclose(lookback_ratio(on_self, layout), torch.zeros(2, 3))
    half = _causal([[1, 0, 0, 0], [.5, .5, 0, 0], [.5, 0, .5, 0], [.25, .25, .25, .25]])
    assert torch.allclose(lookback_ratio(half, layout), torch.full((2, 1), 0.5))


def test_attn_logdet_by_hand():
    layout = TokenLayout(n_tokens=3, n_prompt=2, kept_start=0)
    assert torch.allclose(attn_logdet(torch.eye(3).expand(4, 2, 3, 3), layout), torch.zeros(4))
    attn = _causal([[1, 0, 0], [.5, .5, 0], [.25, .25, .5]])
    assert torch.allclose(attn_logdet(attn, layout), torch.full((2,), (math.log(.5) * 2) / 3))
    # a kept suffix: rows are positions 1..2, the diagonal sits at columns 1..2
    suffix = _causal([[.5, .5, 0], [.25, .25, .5]])
    assert torch.allclose(attn_logdet(suffix, TokenLayout(3, 2, 1)), torch.full((2,), math.log(.5)))


def test_hidden_svd_by_hand():
    a = 3.0
    hidden = torch.zeros(1, 4, 5)
    hidden[0, 2, 0], hidden[0, 3, 0] = a, -a  # answer rows: centred singular values (a*sqrt2, 0)
    hidden[0, :2] = 100.0  # prompt rows are ignored when two answer tokens exist
    want = 0.5 * (math.log(2 * a * a + 1e-3) + math.log(1e-3)) / 2
    assert hidden_svd(hidden, TokenLayout(4, 2, 0)).item() == pytest.approx(want, rel=1e-5)


def test_sequence_positions_with_kept_start():
    # T = 10 (6 prompt + 4 answer), only positions 3..9 kept; hidden row value = absolute position
    layout = layout_of({"n_prompt_tokens": 6, "n_answer_tokens": 4, "kept_start": 3}, 7, "t")
    hidden = torch.arange(3, 10).float().view(1, 7, 1).expand(2, 7, 3)
    feats = sequence_features(hidden, layout)
    assert feats["seq.last_answer"][:, 0].tolist() == [9, 9]
    assert feats["seq.mean_answer"][:, 0].tolist() == [7.5, 7.5]
    assert feats["seq.last_prompt"][:, 0].tolist() == [5, 5]
    late = layout_of({"n_prompt_tokens": 6, "n_answer_tokens": 4, "kept_start": 8}, 2, "t")
    assert late.last_prompt_row() == 0 and late.answer_rows() == slice(0, 2)
    with pytest.raises(ValueError, match="trace 'x'.*7 rows"):
        layout_of({"n_prompt_tokens": 6, "n_answer_tokens": 4, "kept_start": 0}, 7, "trace 'x'")


# ---------------------------------------------------------------- graphs and PCA


def test_build_edges_top_k_and_threshold():
    mean = torch.tensor([[1.0, 0, 0], [.2, .8, 0], [.5, .1, .4]])
    attn = torch.stack([mean, mean]).unsqueeze(0)  # 1 layer, 2 equal heads
    [(edge_index, edge_attr)] = build_edges(attn, top_k=2)
    # (source, target) sorted by target: row 0 has one source, rows 1-2 their top 2
    assert edge_index.T.tolist() == [[0, 0], [0, 1], [1, 1], [0, 2], [2, 2]]
    assert edge_attr.shape == (5, 2) and torch.allclose(edge_attr[:, 0], torch.tensor([1.0, .2, .8, .5, .4]))
    [(edge_index, _)] = build_edges(attn, threshold=0.3)
    assert edge_index.T.tolist() == [[0, 0], [1, 1], [0, 2], [2, 2]]
    with pytest.raises(ValueError):
        build_edges(attn)


def test_build_edges_matches_a_plain_loop_on_every_layer():
    g = torch.Generator().manual_seed(1)
    mask = torch.ones(7, 7, dtype=torch.bool).triu(1)
    attn = torch.randn(3, 2, 7, 7, generator=g).masked_fill(mask, float("-inf")).softmax(-1)  # (G, H, n, n)
    for layer, (edge_index, edge_attr) in enumerate(build_edges(attn, top_k=3)):
        mean, want = attn[layer].mean(0), []
        for i in range(7):
            best = sorted(range(i + 1), key=lambda j: -float(mean[i, j]))[:3]
            want += [[j, i] for j in sorted(best)]
        assert edge_index.T.tolist() == want
        assert torch.equal(edge_attr, attn[layer][:, edge_index[1], edge_index[0]].T)


def test_fit_pca_matches_svd():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 500, 6, generator=g) * torch.tensor([5.0, 3, 2, 1, .5, .1])
    moments = PcaMoments(1, 6)
    moments.add(x[:, :200])
    moments.add(x[:, 200:])
    mean, comps = fit_pca(moments, 3)
    centred = x[0] - x[0].mean(0)
    _, _, vh = torch.linalg.svd(centred.double(), full_matrices=False)
    assert torch.allclose(mean[0], x[0].mean(0), atol=1e-5)
    assert torch.allclose(comps[0].double().abs(), vh[:3].abs(), atol=1e-5)
    with pytest.raises(ValueError, match="node_dim"):
        fit_pca(moments, 7)


def _copy_store(src, dst, change: str | None = None):
    """Copy a trace store, adding 5 to every hidden state of trace ``change``."""
    store = TraceStore(src)
    with TraceWriter(dst, store.schema, shard_max_traces=16) as w:
        for trace in store:
            tensors = {k: v.float() if v.is_floating_point() else v for k, v in trace.tensors().items()}
            if trace.id == change:
                tensors = {k: v + 5 if k.endswith("hidden") else v for k, v in tensors.items()}
            w.add(trace.id, tensors, trace.meta)


def test_pca_is_fitted_on_train_only(planted, tmp_path):
    store, labels = planted
    preprocess(store, tmp_path / "a", PreprocessConfig(**CFG), labels=labels, progress=False)
    split = json.loads((tmp_path / "a" / "split.json").read_text())
    pca = (tmp_path / "a" / "pca.safetensors").read_bytes()
    for name, expect_same in (("test", True), ("val", True), ("train", False)):
        _copy_store(store, tmp_path / f"s_{name}", change=split[name][0])
        preprocess(tmp_path / f"s_{name}", tmp_path / f"f_{name}", PreprocessConfig(**CFG), labels=labels,
                   progress=False)
        assert ((tmp_path / f"f_{name}" / "pca.safetensors").read_bytes() == pca) == expect_same, name


# ---------------------------------------------------------------- the stage


def test_split_by_question_is_deterministic_and_stratified(planted, tmp_path):
    store, labels = planted
    for out in ("a", "b"):
        preprocess(store, tmp_path / out, PreprocessConfig(**CFG, graphs=False), labels=labels, progress=False)
    a, b = (json.loads((tmp_path / o / "split.json").read_text()) for o in ("a", "b"))
    assert a == b and a["format"] == "truthtrace.split" and a["fractions"] == [0.7, 0.15, 0.15]
    qid = {tid: row["question_id"] for tid, row in read_labels(labels).items()}
    groups = [{qid[t] for t in a[s]} for s in ("train", "val", "test")]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert sorted(a["train"] + a["val"] + a["test"]) == sorted(qid)
    label = {tid: row["hallucinated"] for tid, row in read_labels(labels).items()}
    assert all({label[t] for t in a[s]} == {0, 1} for s in ("train", "val", "test"))
    preprocess(store, tmp_path / "c", PreprocessConfig(**CFG, graphs=False, split_seed=1), progress=False)
    assert json.loads((tmp_path / "c" / "split.json").read_text())["train"] != a["train"]


def test_records_hold_the_planted_signal(planted, tmp_path):
    store, labels = planted
    preprocess(store, tmp_path / "f", PreprocessConfig(**CFG), labels=labels, progress=False)
    feats, label = TraceStore(tmp_path / "f"), {t: r["hallucinated"] for t, r in read_labels(labels).items()}
    schema = feats.schema
    assert schema["kind"] == "truthtrace.features" and schema["graph"]["layers"] == [0, 1]
    trace = feats.get("t000")
    assert trace.shape_of("seq.last_answer") == (3, 8) and trace.dtype_of("seq.last_answer") == "float16"
    assert trace.shape_of("scalar.lookback") == (2, 2) and trace.shape_of("scalar.hidden_svd") == (3,)
    assert trace.shape_of("graph.1.x")[1] == 4 and trace.dtype_of("graph.1.edge_index") == "int64"
    assert set(trace.meta) == {"question_id", "category", "n_prompt_tokens", "n_answer_tokens"}
    u, y = planted_direction(8), torch.tensor([label[t] for t in feats.ids()])
    shift = torch.stack([feats.read(t, "seq.last_answer")[2].float() @ u for t in feats.ids()])  # noise std 1
    lookback = torch.stack([feats.read(t, "scalar.lookback")[1].float().mean() for t in feats.ids()])
    assert shift[y == 1].mean() - shift[y == 0].mean() == pytest.approx(3.0, abs=0.6)
    assert ((shift > 1.5) == y.bool()).float().mean() > 0.8
    assert torch.equal(lookback < 0.7, y.bool())  # ~0.45 vs ~0.95: the attention plant is clean
    src = TraceStore(store).get("t000")
    want = src[layer_key(2, "hidden")].float()[-1]
    assert torch.allclose(trace["seq.last_answer"][2].float(), want, atol=1e-2)


def test_resume_skips_done_traces_and_config_mismatch_errors(planted, tmp_path, monkeypatch):
    store, labels = planted
    real, calls = build.trace_record, []

    def crash_at_40(*args):
        calls.append(1)
        if len(calls) == 40:
            raise RuntimeError("killed")
        return real(*args)

    monkeypatch.setattr(build, "trace_record", crash_at_40)
    with pytest.raises(RuntimeError):
        preprocess(store, tmp_path / "f", PreprocessConfig(**CFG), labels=labels, progress=False)
    monkeypatch.setattr(build, "trace_record", real)
    done = len(TraceStore(tmp_path / "f"))
    assert 0 < done < 60
    summary = preprocess(store, tmp_path / "f", PreprocessConfig(**CFG), labels=labels, progress=False)
    assert (summary["written"], summary["skipped"]) == (60 - done, done)
    fresh = preprocess(store, tmp_path / "g", PreprocessConfig(**CFG), labels=labels, progress=False)
    assert fresh["written"] == 60
    a, b = TraceStore(tmp_path / "f"), TraceStore(tmp_path / "g")
    for tid in ("t000", "t059"):
        assert all(torch.equal(v, b.get(tid)[k]) for k, v in a.get(tid).tensors().items())
    with pytest.raises(ValueError, match="--overwrite") as err:
        preprocess(store, tmp_path / "f", PreprocessConfig(**{**CFG, "top_k": 2}), labels=labels, progress=False)
    assert "graph.top_k: stored 4, given 2" in str(err.value)
    again = preprocess(store, tmp_path / "f", PreprocessConfig(**{**CFG, "top_k": 2, "overwrite": True}),
                       labels=labels, progress=False)
    assert again["written"] == 60 and TraceStore(tmp_path / "f").schema["graph"]["top_k"] == 2


def test_no_pca_no_graphs_and_bad_layers(planted, tmp_path):
    store, _ = planted
    preprocess(store, tmp_path / "raw", PreprocessConfig(pca=False, max_nodes=5), progress=False)
    raw = TraceStore(tmp_path / "raw")
    assert raw.schema["graph"]["node_dim"] == 8 and not (tmp_path / "raw" / "pca.safetensors").exists()
    assert raw.get("t003").shape_of("graph.0.x") == (5, 8)
    preprocess(store, tmp_path / "none", PreprocessConfig(graphs=False), progress=False)
    assert TraceStore(tmp_path / "none").schema["graph"] is None
    with pytest.raises(ValueError, match="graph_layers"):
        preprocess(store, tmp_path / "bad", PreprocessConfig(graph_layers=[5]), progress=False)
    with pytest.raises(ValueError, match="top_k"):
        PreprocessConfig(top_k=None)
    with pytest.raises(ValueError, match="fractions"):
        PreprocessConfig(fractions=(0.5, 0.5, 0.5))


def test_cli_end_to_end(planted, tmp_path, capsys):
    store, labels = planted
    out = tmp_path / "feats"
    args = ["preprocess", str(store), "--out", str(out), "--labels", str(labels), "--node-dim", "4", "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "60 traces written, 0 skipped" in text and "graph.*.edge_index" in text
    assert main(args) == 0 and "0 traces written, 60 skipped" in capsys.readouterr().out
    assert main([*args[:-3], "--node-dim", "3", "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["preprocess", str(store), "--out", str(tmp_path / "x"), "--fractions", "0.5,a"]) == 2
    assert main(["preprocess", str(tmp_path / "missing"), "--out", str(tmp_path / "y")]) == 2
    shutil.rmtree(out)
