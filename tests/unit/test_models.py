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


def test_processes_resolving_one_gguf_together_convert_it_once(monkeypatch, tmp_path):
    """The ranks of `run --procs 2` resolve the embedded model at the same moment: the second waits for the first's
    conversion (a lock beside the cache entry) and uses it, instead of reading a half-written folder."""
    import threading
    import time

    from truthtrace.models import resolve

    monkeypatch.setenv("TRUTHTRACE_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    calls = []

    def slow_convert(source, out_dir):
        calls.append(out_dir)
        time.sleep(0.3)
        out_dir.mkdir(parents=True)
        (out_dir / "config.json").write_text("{}")
        return out_dir

    monkeypatch.setattr(resolve, "convert_gguf", slow_convert)
    found = []
    threads = [threading.Thread(target=lambda: found.append(resolve._resolve_gguf("m", gguf, "m", "gguf")))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(found) == 2 and found[0].path == found[1].path
