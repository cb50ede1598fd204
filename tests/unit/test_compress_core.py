"""Compression building blocks without saving a model: pruning, int8 rows, tied tensors, zstd, config checks."""

import pytest
import torch

from tests.conftest import make_tiny_model
from truthtrace.compress import CompressConfig, prune_linear, sparsity_report, zero_below
from truthtrace.compress.quantize import int8_targets
from truthtrace.models.int8 import dequantize_rows, quantize_rows
from truthtrace.compress.prune import prunable_linears
from truthtrace.models.sparse_io import read_state_dict, split_tied, write_state_dict


def tied_llama(vocab=64, seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_pruning_reaches_the_requested_sparsity(scope):
    model = make_tiny_model(64, seed=1)
    rep = prune_linear(model, 0.5, scope)
    n = rep["n_weights"]
    assert rep["global"] == pytest.approx(round(0.5 * n) / n, abs=1.0 / n)
    if scope == "layer":  # each layer exactly its share
        for name, m in prunable_linears(model):
            assert rep["per_layer"][name] == pytest.approx(round(0.5 * m.weight.numel()) / m.weight.numel())
    assert not any(hasattr(m, "weight_orig") for _, m in prunable_linears(model))  # made permanent
    assert sparsity_report(model)["global"] == rep["global"]


def test_global_pruning_removes_the_smallest_weights():
    model = make_tiny_model(64, seed=2)
    allw = torch.cat([m.weight.detach().abs().flatten() for _, m in prunable_linears(model)])
    cut = allw.sort().values[int(0.3 * allw.numel()) - 1]
    prune_linear(model, 0.3, "global")
    for _, m in prunable_linears(model):
        kept = m.weight.detach().abs()
        assert bool((kept[kept > 0] >= cut).all())


def test_tied_lm_head_is_not_pruned_and_zero_below():
    model = tied_llama()
    assert "lm_head" not in dict(prunable_linears(model))
    emb = model.get_input_embeddings().weight.detach().clone()
    rep = zero_below(model, 0.01)
    assert torch.equal(model.get_input_embeddings().weight, emb)
    w = torch.cat([m.weight.detach().flatten() for _, m in prunable_linears(model)])
    assert float(w[w != 0].abs().min()) >= 0.01 and rep["global"] == pytest.approx(float((w == 0).float().mean()))


def test_int8_rows_round_trip_within_half_a_step():
    torch.manual_seed(0)
    w = torch.randn(16, 40)
    w[3] = 0.0
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8 and scale.shape == (16,)
    back = dequantize_rows(q, scale)
    assert bool(((back - w).abs() <= scale[:, None] / 2 + 1e-7).all())
    assert torch.equal(back[3], torch.zeros(40))
    qg, sg = quantize_rows(w, group=8)  # per-group scales: (rows, cols // group), never a coarser error
    assert sg.shape == (16, 5) and bool((sg <= scale[:, None] + 1e-9).all())
    assert bool(((dequantize_rows(qg, sg) - w).abs() <= sg.repeat_interleave(8, 1) / 2 + 1e-7).all())


def test_int8_targets_and_split_tied_handle_the_tied_head():
    model = tied_llama()
    assert "lm_head.weight" not in int8_targets(model, embeddings=False)
    with_emb = int8_targets(model, embeddings=True)
    assert "model.embed_tokens.weight" in with_emb and "lm_head.weight" not in with_emb
    state, tied = split_tied(model.state_dict())
    assert tied == {"lm_head.weight": "model.embed_tokens.weight"} and "lm_head.weight" not in state


def test_zstd_is_smaller_than_dense_for_half_pruned_weights(tmp_path):
    model = make_tiny_model(64, seed=3)
    prune_linear(model, 0.5, "global")
    state = model.state_dict()
    dense = write_state_dict(tmp_path / "d.safetensors", state, compress=False)
    packed = write_state_dict(tmp_path / "z.safetensors", state, compress=True)
    assert packed.name == "z.safetensors.zst"
    assert packed.stat().st_size < 0.8 * dense.stat().st_size
    back = read_state_dict(packed)
    assert all(torch.equal(back[k], v) for k, v in state.items())
    (tmp_path / "bad.safetensors.zst").write_bytes(b"nope")
    with pytest.raises(ValueError, match="bad.safetensors.zst"):
        read_state_dict(tmp_path / "bad.safetensors.zst")


def test_presets_fill_unset_fields():
    small = CompressConfig(model="m", out="o", preset="small")
    assert (small.quant, small.quant_embeddings, small.backend, small.sparse_format) == \
        ("int8-weight", True, "truthtrace", "dense")
    assert CompressConfig(model="m", out="o", preset="fast").dtype == "bf16"
    assert CompressConfig(model="m", out="o", prune=0.3).sparse_format == "zstd"
    assert CompressConfig(model="m", out="o", quant="int8-weight").backend == "torchao"


@pytest.mark.parametrize("kwargs,match", [
    ({"prune": 0.95}, "prune must be in"),
    ({"preset": "tiny"}, "preset must be one of"),
    ({"dtype": "int3"}, "dtype must be"),
    ({"backend": "bnb", "quant": "int8-weight", "device": "cpu"}, "use --backend torchao"),
    ({"quant": "int4-weight", "device": "cpu"}, "use --quant int8-weight"),
    ({"quant": "int8-dynamic", "backend": "quanto"}, "use --backend torchao --quant int8-dynamic"),
    ({"quant": "int8-weight", "backend": "torchao", "quant_embeddings": True}, "--backend truthtrace"),
    ({"quant": "int8-dynamic", "backend": "truthtrace"}, "use --backend torchao"),
    ({"quant": "int8-weight", "backend": "torchao", "sparse_format": "zstd"}, "--sparse-format dense"),
    ({"backend": "quanto"}, "needs --quant"),
])
def test_unsupported_combinations_are_refused_with_the_alternative(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompressConfig(model="m", out="o", **kwargs)


def _bert(seed=0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    return BertModel(BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, max_position_embeddings=64)).eval()


@pytest.mark.parametrize("make", [tied_llama, _bert], ids=["tied-llama", "bert"])
def test_build_from_state_assigns_the_weights_and_rebuilds_buffers(make):
    """Built on meta: the stored tensors become the parameters (one copy), non-persistent buffers
    (rotary inv_freq, BERT position_ids) equal a normally built model's, outputs are identical."""
    from truthtrace.models.compressed import build_from_state
    from truthtrace.models.load import auto_class, model_kind

    ref = make()
    state, tied = split_tied(ref.state_dict())
    state = {k: v.clone() for k, v in state.items()}
    model = build_from_state(auto_class(model_kind(ref.config)[1]), ref.config, state, torch.float32, tied, {})
    assert all(model.get_parameter(k).data_ptr() == v.data_ptr() for k, v in state.items()
               if k in dict(model.named_parameters()))
    assert [n for n, b in ref.named_buffers()] == [n for n, b in model.named_buffers()]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(ref.named_buffers(), model.named_buffers()))
    assert bool(tied) == (make is tied_llama)
    if tied:
        assert model.lm_head.weight is model.get_input_embeddings().weight
    ids = torch.randint(0, 64, (2, 10))
    with torch.no_grad():
        out, got = ref(input_ids=ids), model.eval()(input_ids=ids)
    key = "logits" if hasattr(out, "logits") else "last_hidden_state"
    assert torch.equal(getattr(out, key), getattr(got, key))
    del state["model.norm.weight" if tied else "pooler.dense.bias"]
    with pytest.raises(ValueError, match="missing"):
        build_from_state(auto_class(model_kind(ref.config)[1]), ref.config, state, torch.float32, tied, {})
