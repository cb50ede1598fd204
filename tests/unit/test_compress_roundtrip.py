"""compress on tiny models: every step saves, reloads equal within tolerance, records everything; CLI end to end."""

import json

import pytest
import torch

from tests.conftest import make_tiny_model
from tests.unit.test_compress_core import tied_llama
from truthtrace.compress import CompressConfig, compress, model_outputs, verify_batch
from truthtrace.models import load_any
from truthtrace.compress.prune import prunable_linears

META_KEYS = {"format", "format_version", "kind", "source", "config", "steps", "storage",
             "loadable_with_from_pretrained", "sparsity", "bytes_on_disk", "versions", "verification", "seconds"}


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory, tiny_tokenizer):
    d = tmp_path_factory.mktemp("llama")
    make_tiny_model(len(tiny_tokenizer), seed=5).save_pretrained(d)
    tiny_tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def tied_dir(tmp_path_factory, tiny_tokenizer):
    d = tmp_path_factory.mktemp("tied")
    tied_llama(len(tiny_tokenizer), seed=6).save_pretrained(d)
    tiny_tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory, tiny_tokenizer):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(7)
    cfg = BertConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, num_labels=2, pad_token_id=0)
    d = tmp_path_factory.mktemp("bert")
    BertForSequenceClassification(cfg).eval().save_pretrained(d)
    tiny_tokenizer.save_pretrained(d)
    return d


def outputs(spec, **kw):
    lm = load_any(str(spec), device="cpu", **kw)
    return lm, model_outputs(lm.model, verify_batch(lm.tokenizer))


@pytest.mark.parametrize("kwargs,max_rel", [
    ({}, 0.0),
    ({"dtype": "bf16"}, 0.05),
    ({"dtype": "fp16"}, 0.01),
    ({"preset": "small"}, 0.05),
    ({"preset": "small", "dtype": "bf16", "zero_below": 0.001}, 0.1),
    ({"quant": "int8-weight"}, 0.05),
    ({"quant": "int8-dynamic"}, 0.05),
    ({"quant": "int8-weight", "backend": "quanto"}, 0.05),
])
def test_each_method_round_trips_close_to_the_original(tmp_path, llama_dir, kwargs, max_rel):
    out = tmp_path / "out"
    summary = compress(CompressConfig(model=str(llama_dir), out=str(out), **kwargs))
    assert META_KEYS <= set(summary) and summary["verification"]["passed"]
    assert json.loads((out / "compression.json").read_text())["steps"] == summary["steps"]
    _, ref = outputs(llama_dir)
    lm, got = outputs(out)
    assert lm.kind == "causal" and lm.compression["storage"]["method"] == summary["storage"]["method"]
    assert float((ref - got).abs().max()) <= max_rel * float(ref.abs().max()) + 1e-6
    assert not list(tmp_path.glob(".out.*"))  # temp dir renamed away


def test_pruned_zstd_output_has_the_requested_sparsity_and_is_smaller(tmp_path, llama_dir):
    dense = compress(CompressConfig(model=str(llama_dir), out=str(tmp_path / "d"), prune=0.5, prune_scope="layer",
                                    sparse_format="dense"))
    packed = compress(CompressConfig(model=str(llama_dir), out=str(tmp_path / "z"), prune=0.5, prune_scope="layer"))
    assert packed["storage"]["weights_file"] == "model.safetensors.zst" and not packed["loadable_with_from_pretrained"]
    assert packed["bytes_on_disk"]["weights"] < 0.85 * dense["bytes_on_disk"]["weights"]
    for name, value in packed["sparsity"]["before_quantization"]["per_layer"].items():
        assert value == pytest.approx(0.5, abs=1e-3), name
    assert packed["sparsity"]["after_reload"]["global"] == pytest.approx(0.5, abs=1e-3)
    lm, _ = outputs(tmp_path / "z")
    for _, m in prunable_linears(lm.model):
        assert float((m.weight == 0).float().mean()) == pytest.approx(0.5, abs=1e-3)


def test_int8_embeddings_reload_and_the_tied_head_stays_tied(tmp_path, tied_dir):
    summary = compress(CompressConfig(model=str(tied_dir), out=str(tmp_path / "s"), preset="small"))
    assert summary["storage"]["tied"] == {"lm_head.weight": "model.embed_tokens.weight"}
    assert "model.embed_tokens.weight" in summary["steps"][0]["tensors"]
    from safetensors.torch import load_file

    stored = load_file(str(tmp_path / "s" / "model.int8.safetensors"))
    assert stored["model.embed_tokens.weight"].dtype == torch.int8 and "lm_head.weight" not in stored
    # int8 rounding zeroes the smallest weights: the reloaded count is what the file holds
    linears = [n for n in summary["steps"][0]["tensors"] if n != "model.embed_tokens.weight"]
    n_zero = sum(int((stored[n] == 0).sum()) for n in linears)
    sp = summary["sparsity"]
    assert sp["after_reload"]["n_zero"] == n_zero > sp["before_quantization"]["n_zero"] == 0
    lm, got = outputs(tmp_path / "s")
    assert lm.model.lm_head.weight is lm.model.get_input_embeddings().weight
    _, ref = outputs(tied_dir)
    assert float((ref - got).abs().max()) <= 0.05 * float(ref.abs().max())


def test_encoder_classifier_after_int8_and_bare_encoder(tmp_path, bert_dir):
    summary = compress(CompressConfig(model=str(bert_dir), out=str(tmp_path / "b"), preset="small"))
    assert summary["kind"] == "encoder"
    lm, got = outputs(tmp_path / "b")
    _, ref = outputs(bert_dir)
    assert type(lm.model).__name__ == "BertForSequenceClassification" and got.shape == ref.shape == (2, 2)
    assert float((ref - got).abs().max()) < 0.02 and lm.tokenizer.pad_token is not None
    from transformers import BertModel

    BertModel.from_pretrained(bert_dir).save_pretrained(tmp_path / "bare")
    lm, hidden = outputs(tmp_path / "bare")
    assert lm.kind == "encoder" and type(lm.model).__name__ == "BertModel" and hidden.dim() == 3


def test_refuses_to_overwrite_and_a_failed_check_leaves_nothing(tmp_path, llama_dir, monkeypatch):
    out = tmp_path / "o"
    compress(CompressConfig(model=str(llama_dir), out=str(out), dtype="bf16"))
    with pytest.raises(ValueError, match="--force"):
        compress(CompressConfig(model=str(llama_dir), out=str(out)))
    compress(CompressConfig(model=str(llama_dir), out=str(out), force=True))
    assert json.loads((out / "compression.json").read_text())["steps"] == []
    from truthtrace.models import compressed

    real = compressed.dequantize_state_dict
    monkeypatch.setattr(compressed, "dequantize_state_dict", lambda s, d: {k: v * 1.01 for k, v in real(s, d).items()})
    with pytest.raises(ValueError, match="reload check failed"):
        compress(CompressConfig(model=str(llama_dir), out=str(tmp_path / "bad"), preset="small"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_cli_end_to_end_and_load_model(tmp_path, tied_dir, capsys):
    from truthtrace.cli import main
    from truthtrace.models import load_model

    out = tmp_path / "c"
    assert main(["compress", "--model", str(tied_dir), "--out", str(out), "--prune", "0.2", "--preset", "small"]) == 0
    text = capsys.readouterr().out
    assert "prune(0.2), quantize(int8-weight)" in text and "reload check: passed" in text and "20.0%" in text
    assert main(["compress", "--model", str(tied_dir), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["compress", "--model", str(tied_dir), "--out", str(tmp_path / "x"), "--bnb", "nf4",
                 "--device", "cpu"]) == 2
    assert "use --backend torchao" in capsys.readouterr().err
    model, tok = load_model(str(out), device="cpu")
    assert tok.padding_side == "left" and model.lm_head.weight is model.get_input_embeddings().weight
    ids = tok(["Paris is"], return_tensors="pt")
    gen = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert gen.shape == (1, ids["input_ids"].shape[1] + 3)
