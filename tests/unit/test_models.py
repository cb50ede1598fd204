"""Model spec resolution and loading from a local directory (no network, no download)."""

import pytest
import torch

from truthtrace.models import ModelNotFoundError, cache_dir, load_model, resolve_model


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TRUTHTRACE_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"


def test_missing_model_names_what_was_tried(tmp_path):
    with pytest.raises(ModelNotFoundError, match="embedded names.*directory.*gguf.*hub id"):
        resolve_model(str(tmp_path / "nope"))


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_hub_id_resolves_without_loading():
    r = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert r.source == "hub" and r.model_id == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_bad_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype"):
        load_model("x", dtype="int3")


def test_load_local_directory(tmp_path, tiny_model, tiny_tokenizer):
    tiny_model.save_pretrained(tmp_path / "m")
    tiny_tokenizer.save_pretrained(tmp_path / "m")
    model, tok = load_model(str(tmp_path / "m"), device="cpu")
    assert model.truthtrace_id == "m" and tok.padding_side == "left" and tok.pad_token is not None
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, tiny_model(ids).logits)
    bf, _ = load_model(str(tmp_path / "m"), dtype="bfloat16", device="cpu")
    assert bf.dtype == torch.bfloat16
