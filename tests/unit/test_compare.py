"""compare-models on tiny random models saved as HF dirs: causal pair, encoder pair, mixed kinds, CLI."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from conftest import make_tiny_model, make_tiny_tokenizer

from truthtrace.cli import main
from truthtrace.compare import CompareConfig, compare_models
from truthtrace.compare import cost, quality
from truthtrace.compare.report import format_table

TEXT = ("The capital of France is Paris. Mars is known as the red planet. A spider has eight legs. "
        "Shakespeare wrote Hamlet. The chemical symbol of gold is Au. ") * 6


def _save(model, tok, path):
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """Tiny causal dirs: a, a copy of a, b = a + noise; tiny BERT encoders and a classifier."""
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    root = tmp_path_factory.mktemp("compare")
    tok = make_tiny_tokenizer()
    a = make_tiny_model(len(tok), seed=0)
    out = {"a": _save(a, tok, root / "a"), "a2": _save(a, tok, root / "a2")}
    torch.manual_seed(1)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out["b"] = _save(a, tok, root / "b")
    bcfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=128, pad_token_id=0)
    torch.manual_seed(2)
    out["enc"] = _save(BertModel(bcfg).eval(), tok, root / "enc")
    out["enc2"] = _save(BertModel.from_pretrained(out["enc"]), tok, root / "enc2")
    bcfg.num_labels, bcfg.id2label, bcfg.label2id = 2, {0: "neg", 1: "pos"}, {"neg": 0, "pos": 1}
    out["cls"] = _save(BertForSequenceClassification(bcfg).eval(), tok, root / "cls")
    (root / "text.txt").write_text(TEXT)
    out["text"] = str(root / "text.txt")
    return out


def _config(tmp_path, **kw):
    base = dict(out_dir=str(tmp_path / "out"), text=None, batch_size=2, seq_len=16, runs=3, threads=1,
                max_length=64, stride=32, memory="off")
    return CompareConfig(**{**base, **kw})


def test_windows_score_every_token_once():
    for n, length, stride in [(10, 4, 2), (100, 32, 32), (2, 8, 4), (37, 16, 5)]:
        scored = []
        for begin, end, k in quality.windows(n, length, stride):
            assert end - begin <= length
            scored += list(range(end - k, end))
        assert scored == list(range(1, n))


def test_causal_compare_every_column(dirs, tmp_path):
    report = compare_models([dirs["a"], dirs["a2"], dirs["b"]], _config(tmp_path, text=dirs["text"]))
    first, same, noisy = report["models"]
    assert same["top1_agreement"] == 1.0 and same["kl_mean"] < 1e-6
    assert same["perplexity"] == pytest.approx(first["perplexity"], rel=1e-6)
    assert noisy["top1_agreement"] < 1.0 and noisy["kl_mean"] > 1e-4
    assert 50 < first["perplexity"] < 2000  # a random model over a 300-token vocab
    for row in report["models"]:
        assert row["disk_bytes"] > 0 and row["disk_source"] == "weight files"
        assert row["parameters"] > 0 and row["sparsity"] == pytest.approx(0.0, abs=1e-3)
        assert row["latency_ms"] > 0 and row["latency_iqr_ms"] >= 0 and len(row["latency_runs_ms"]) == 3
        assert not row["degraded"] or row is noisy
    assert report["machine"]["cores"] >= 1 and report["load_average_before"] is not None
    saved = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert saved["models"][2]["top1_agreement"] == noisy["top1_agreement"]
    assert all((tmp_path / "out" / f"size_quality.{ext}").stat().st_size > 0 for ext in ("png", "svg"))
    assert "| top-1 agree |" in format_table(report) and "top-1 agreement" in format_table(report)


def test_peak_memory_in_a_fresh_subprocess(dirs):
    mem = cost.peak_memory(dirs["a"], None, "cpu", TEXT, batch_size=2, seq_len=8, threads=1)
    assert mem.get("error") is None and 0 < mem["peak_bytes"] < 100e6 and "subprocess" in mem["method"]


def test_device_map_memory_per_device_cpu_and_disk(dirs, tmp_path):
    from truthtrace.models.load import load_any
    from truthtrace.models.placement import Placement

    plain = load_any(dirs["a"], device="cpu").model
    tensors = {id(t): t for t in [*plain.parameters(), *plain.buffers()]}
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    placement = Placement(device_map="sequential", max_memory={"cpu": total // 2}, offload_folder=str(tmp_path / "off"))
    report = compare_models([dirs["a"], dirs["a2"]], _config(tmp_path, placement=placement, plot=False))
    for row in report["models"]:
        assert set(row["device_bytes"]) == {"cpu", "disk"} and sum(row["device_bytes"].values()) == total
        assert row["linear_weights_offloaded"] > 0  # offloaded weights are not read for the sparsity
        assert row["perplexity"] == pytest.approx(report["models"][0]["perplexity"], rel=1e-6)
    assert "weights placed by --device-map: cpu" in format_table(report) and "read from disk" in format_table(report)
    saved = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert saved["config"]["placement"]["device_map"] == "sequential"
    # the memory subprocess loads with the same placement, offloading into a folder of its own (removed after)
    mem = cost.peak_memory(dirs["a"], None, "cpu", TEXT, batch_size=2, seq_len=8, threads=1, placement=placement)
    assert mem.get("error") is None and mem["peak_bytes"] > 0
    assert mem["device_bytes"] == report["models"][0]["device_bytes"] and mem["gpu_peak_bytes"] is None
    assert list((tmp_path / "off").iterdir()) == []
    with pytest.raises(ValueError, match="placement must be a Placement"):
        CompareConfig(placement="sequential")


def test_encoder_identical_cosine_one_and_accuracy(dirs, tmp_path):
    report = compare_models([dirs["enc"], dirs["enc2"]], _config(tmp_path, plot=False))
    assert report["kind"] == "encoder"
    assert [r["cosine"] for r in report["models"]] == pytest.approx([1.0, 1.0], abs=1e-6)
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows([["Paris is in France.", "pos"], ["Mars is red.", "1"], ["Gold is Au.", "neg"]])
    report = compare_models([dirs["cls"], dirs["cls"]], _config(tmp_path, labels_csv=str(labels)))
    acc = report["models"][0]["accuracy"]
    assert acc in (0.0, 1 / 3, 2 / 3, 1.0) and report["models"][1]["accuracy"] == acc
    assert report["models"][1]["cosine"] == pytest.approx(1.0, abs=1e-6)


def test_mixed_kinds_and_one_model_raise(dirs, tmp_path):
    with pytest.raises(ValueError, match="encoders"):
        compare_models([dirs["a"], dirs["enc"]], _config(tmp_path))
    with pytest.raises(ValueError, match="at least two"):
        compare_models([dirs["a"]], _config(tmp_path))
    with pytest.raises(ValueError, match="stride"):
        CompareConfig(max_length=16, stride=32)


def test_different_vocab_gives_na_agreement(dirs, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.train_from_iterator([TEXT] * 5, trainers.BpeTrainer(vocab_size=280, special_tokens=["<pad>", "<unk>"],
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>", eos_token="<pad>")
    other = _save(make_tiny_model(len(tok), seed=3), tok, tmp_path / "other")
    report = compare_models([dirs["a"], other], _config(tmp_path, text=dirs["text"]))
    row = report["models"][1]
    assert row["top1_agreement"] is None and row["kl_mean"] is None and row["perplexity"] > 1
    assert "tokenizer differs" in row["note"] and "N/A" in format_table(report)


def test_detector_auroc_on_traces_of_each_model(dirs, tmp_path):
    from truthtrace.data import load_bundled
    from truthtrace.detectors import get_detector
    from truthtrace.traces.extract import ExtractConfig, extract

    tok = make_tiny_tokenizer()
    extract(load_bundled(n=10), tmp_path / "store", ExtractConfig(max_new_tokens=3, batch_size=10),
            model=make_tiny_model(len(tok)), tokenizer=tok, progress=False)
    get_detector("perplexity").save(tmp_path / "det")
    report = compare_models([dirs["a"], dirs["b"]], _config(tmp_path, text=dirs["text"], store=str(tmp_path / "store"),
                                                            detector=str(tmp_path / "det"), n_questions=6))
    for i, row in enumerate(report["models"]):
        # a random model is always wrong: one class, so the AUROC is undefined and says so
        assert row["detector_n"] == 6 and row["detector_hallucination_rate"] == 1.0
        assert row["detector_auroc"] is None and "one class" in row["detector_note"]
        assert (tmp_path / "out" / "detector_traces" / f"{i}-{'ab'[i]}" / "labels.csv").is_file()
    assert "detector AUROC" in format_table(report)


def test_param_stats_and_disk_bytes(tmp_path):
    lin = torch.nn.Sequential(torch.nn.Linear(10, 10, bias=False), torch.nn.Embedding(5, 4))
    with torch.no_grad():
        lin[0].weight.view(-1)[:30] = 0
    stats = cost.param_stats(lin)
    assert stats["parameters"] == 120 and stats["linear_weights"] == 100 and stats["sparsity"] == 0.3
    head = torch.nn.Linear(4, 5, bias=False)
    head.weight = lin[1].weight  # tied to the embedding: not counted as a linear layer
    assert cost.param_stats(torch.nn.Sequential(*lin, head))["linear_weights"] == 100
    (tmp_path / "model.safetensors").write_bytes(b"x" * 1000)
    (tmp_path / "config.json").write_text("{}")
    assert cost.disk_bytes(tmp_path) == (1000, "weight files")
    recorded = {"bytes_on_disk": {"weights": 123, "dir_total_excluding_compression_json": 999}}
    assert cost.disk_bytes(tmp_path, recorded) == (123, "compression.json")


def test_cli_runs_and_reports_errors(dirs, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["compare-models", dirs["a"], dirs["b"], "--out", str(out), "--text", dirs["text"], "--runs", "2",
            "--batch-size", "2", "--seq-len", "8", "--max-length", "64", "--stride", "32", "--threads", "1",
            "--no-memory"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "perplexity" in printed and "degraded" in printed and "compare.json" in printed
    assert json.loads((out / "compare.json").read_text())["models"][1]["top1_agreement"] < 1
    assert main(["compare-models", dirs["a"], dirs["enc"], "--out", str(out), "--no-memory"]) == 2
    assert "encoders" in capsys.readouterr().err


def _fake_labels(store_path, out_csv, *args, **kwargs):
    """Alternating labels by sorted trace id: a random tiny model is always wrong, and the AUROC needs two classes."""
    from truthtrace.store import TraceStore

    ids = sorted(TraceStore(store_path).ids())
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trace_id", "hallucinated"])
        w.writerows([[tid, i % 2] for i, tid in enumerate(ids)])
    return {"n": len(ids)}


@pytest.fixture(scope="module")
def trained_probe(tmp_path_factory):
    """A tiny store of 20 questions, its feature store (graphs + PCA) and a probe trained on it."""
    from truthtrace.data import load_bundled
    from truthtrace.traces.extract import ExtractConfig, extract
    from truthtrace.features.build import preprocess
    from truthtrace.features.config import PreprocessConfig
    from truthtrace.detectors.train import TrainConfig, train

    root = tmp_path_factory.mktemp("probe")
    tok = make_tiny_tokenizer()
    extract(load_bundled(n=20), root / "store", ExtractConfig(max_new_tokens=3, batch_size=10),
            model=make_tiny_model(len(tok)), tokenizer=tok, progress=False)
    _fake_labels(root / "store", root / "labels.csv")
    preprocess(root / "store", root / "features", PreprocessConfig(node_dim=8, max_nodes=16, top_k=2),
               labels=root / "labels.csv", progress=False)
    train(root / "features", root / "labels.csv", root / "detectors",
          TrainConfig(detectors=("probe",), detector_args={"probe": {"layer": 2}}), progress=False)
    return root


def test_trained_probe_auroc_on_traces_of_each_model(dirs, trained_probe, tmp_path, monkeypatch):
    import truthtrace.compare.detect

    monkeypatch.setattr(truthtrace.compare.detect, "label_store", _fake_labels)
    det = trained_probe / "detectors" / "probe" / "seed-0"
    test_ids = json.loads((trained_probe / "detectors" / "split.json").read_text())["test"]
    report = compare_models([dirs["a"], dirs["a2"]], _config(tmp_path, text=dirs["text"], plot=False,
                                                              store=str(trained_probe / "store"), detector=str(det)))
    first, same = report["models"]
    assert first["detector_n"] == len(test_ids) >= 2 and "test split of" in first["detector_questions"]
    assert 0.0 <= first["detector_auroc"] <= 1.0 and first["detector_note"] == ""
    assert same["detector_auroc"] == first["detector_auroc"]  # identical weights: identical traces and scores
    assert first["detector_features"] == ""  # the probe reads no graphs: no PCA involved


def test_graph_detectors_reuse_the_training_pca(trained_probe, tmp_path):
    from truthtrace.compare.detect import preprocess_config_like
    from truthtrace.features.build import preprocess
    from truthtrace.features.graphs import load_pca

    det = trained_probe / "detectors" / "probe" / "seed-0"
    config, note = preprocess_config_like(det, graphs=True)
    feats = trained_probe / "features"
    assert config.pca_from == str(feats / "pca.safetensors") and str(feats) in note
    assert (config.max_nodes, config.top_k, config.node_dim) == (16, 2, 8)
    preprocess(trained_probe / "store", tmp_path / "again", config, progress=False)
    for a, b in zip(load_pca(feats / "pca.safetensors"), load_pca(tmp_path / "again" / "pca.safetensors")):
        assert torch.equal(a, b)
    config, note = preprocess_config_like(tmp_path / "nowhere", graphs=True)
    assert config.pca_from is None and "refitted" in note


def test_a_model_beyond_a_threshold_must_be_flagged_degraded(dirs, tmp_path):
    """The noisy copy agrees < 100% with the first (see above): at min_agreement 0.9999 it must be flagged,
    with the reason, and the exact copy must not."""
    cfg = _config(tmp_path, text=dirs["text"], runs=1, min_agreement=0.9999, max_ppl_ratio=10.0, min_cosine=-1.0,
                  plot=False)
    first, same, noisy = compare_models([dirs["a"], dirs["a2"], dirs["b"]], cfg)["models"]
    assert noisy["top1_agreement"] < 0.9999
    assert noisy["degraded"] is True and any("top-1 agreement" in r for r in noisy["degraded_reasons"])
    assert same["degraded"] is False and first["degraded"] is False and same["degraded_reasons"] == []
