"""Hostile models and prompts (issue 10, items 4, 5, 6 and 8): a resume with other weights, weight files
missing tensors, prompts longer than the model's context, and junk GGUF files all end in a clear error
(or a clear refusal of the one question), never in garbage traces or a traceback from deep inside."""

import json
import re
import shutil
import struct

import gguf
import numpy as np
import pytest
import torch
from conftest import make_tiny_model
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

from truthtrace.cli import main
from truthtrace.data import Question
from truthtrace.models import load_model, resolve_model
from truthtrace.store import StoreError, TraceStore
from truthtrace.traces.capture import DEFAULT_TEMPLATE, build_prompt_ids
from truthtrace.traces.extract import ExtractConfig, extract

QUESTIONS = [Question(id=f"q{i}", question=f"What is {i} plus {i}?", answers=(str(2 * i),), category="numbers")
             for i in range(4)]
LONG = Question(id="long", question="What is the capital of France? " * 40, answers=("Paris",), category="geo")


def _llama(vocab_size: int, seed: int = 0, tie: bool = False, max_positions: int = 256) -> LlamaForCausalLM:
    """A random 2-block Llama with hidden size 32."""
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=max_positions,
                      tie_word_embeddings=tie, pad_token_id=0, eos_token_id=2, bos_token_id=1)
    model = LlamaForCausalLM(cfg).eval()
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 0
    return model


def _save(model, tokenizer, directory):
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _rewrite_weights(directory, edit) -> None:
    """Replace ``directory/model.safetensors`` by ``edit(state)`` (a dict of tensors)."""
    path = directory / "model.safetensors"
    state = edit(load_file(path))
    save_file(state, path, metadata={"format": "pt"})


def _config(model, **kw) -> ExtractConfig:
    return ExtractConfig(model=str(model), device="cpu", batch_size=2, max_new_tokens=3, **kw)


# item 5: missing or unexpected weights are an error, except the tied ones


@pytest.mark.parametrize("tie", [False, True])
def test_missing_layer_tensors_are_an_error_naming_them(tmp_path, tiny_tokenizer, tie):
    model = _llama(len(tiny_tokenizer), tie=tie)
    full = _save(model, tiny_tokenizer, tmp_path / "full")
    loaded, _ = load_model(str(full), device="cpu")  # complete weights load (tied: lm_head is not in the file)
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
    broken = tmp_path / "broken"
    shutil.copytree(full, broken)
    _rewrite_weights(broken, lambda state: {k: v for k, v in state.items() if ".layers.1." not in k})
    with pytest.raises(ValueError, match=re.escape(str(broken))) as err:
        load_model(str(broken), device="cpu")
    assert "missing tensors 9" in str(err.value) and "model.layers.1.self_attn.q_proj.weight" in str(err.value)


def test_unexpected_tensor_is_an_error(tmp_path, tiny_tokenizer):
    d = _save(_llama(len(tiny_tokenizer)), tiny_tokenizer, tmp_path / "m")
    _rewrite_weights(d, lambda state: {**state, "model.layers.7.mlp.up_proj.weight": torch.zeros(64, 32)})
    with pytest.raises(ValueError, match=r"unexpected tensors 1 \(model\.layers\.7\.mlp\.up_proj\.weight\)"):
        load_model(str(d), device="cpu")


def test_tensor_of_the_wrong_shape_is_a_value_error_naming_the_directory(tmp_path, tiny_tokenizer):
    d = _save(_llama(len(tiny_tokenizer)), tiny_tokenizer, tmp_path / "m")
    _rewrite_weights(d, lambda state: {**state, "model.norm.weight": torch.ones(5)})
    with pytest.raises(ValueError, match=re.escape(str(d)) + r".*wrong shape.*model\.norm\.weight"):
        load_model(str(d), device="cpu")


# item 4: a store is resumed only with the weights it was written from


def test_resume_with_other_weights_is_refused_naming_both(tmp_path, tiny_tokenizer):
    a = _save(_llama(len(tiny_tokenizer), seed=0), tiny_tokenizer, tmp_path / "a" / "m")
    b = _save(_llama(len(tiny_tokenizer), seed=1), tiny_tokenizer, tmp_path / "b" / "m")  # same name, same shapes
    out = tmp_path / "store"
    extract(QUESTIONS[:2], out, _config(a), progress=False)
    with pytest.raises(StoreError, match="other weights") as err:
        extract(QUESTIONS, out, _config(b), progress=False)
    assert TraceStore(out).schema["model_fingerprint"].startswith("files-v1:")
    assert str(a) in str(err.value) and str(b) in str(err.value)
    assert "--out" in str(err.value) and "--overwrite" in str(err.value)
    assert TraceStore(out).ids() == ["q0", "q1"]
    moved = shutil.copytree(a, tmp_path / "c" / "m")  # the same weights elsewhere resume the store
    assert extract(QUESTIONS, out, _config(moved), progress=False)["n_new"] == 2
    assert extract(QUESTIONS, out, _config(b, overwrite=True), progress=False)["n_new"] == 4


def test_resume_with_another_in_memory_model_is_refused(tmp_path, tiny_tokenizer):
    first, second = make_tiny_model(len(tiny_tokenizer), seed=0), make_tiny_model(len(tiny_tokenizer), seed=5)
    assert first.truthtrace_id == second.truthtrace_id
    cfg = ExtractConfig(model="tiny", batch_size=2, max_new_tokens=3)
    extract(QUESTIONS[:2], tmp_path / "s", cfg, first, tiny_tokenizer, progress=False)
    with pytest.raises(StoreError, match="'tiny-llama'.*fingerprint tensors-v1:.*other weights"):
        extract(QUESTIONS, tmp_path / "s", cfg, second, tiny_tokenizer, progress=False)


def test_store_without_fingerprint_resumes_with_a_warning(tmp_path, tiny_model, tiny_tokenizer):
    cfg = ExtractConfig(model="tiny", batch_size=2, max_new_tokens=3)
    extract(QUESTIONS[:2], tmp_path / "s", cfg, tiny_model, tiny_tokenizer, progress=False)
    index_path = tmp_path / "s" / "index.json"
    index = json.loads(index_path.read_text())
    for key in ("model_fingerprint", "model_source", "volatile"):  # as written before fingerprints
        index["schema"].pop(key, None)
    index_path.write_text(json.dumps(index))
    with pytest.warns(UserWarning, match="no model fingerprint"):
        summary = extract(QUESTIONS, tmp_path / "s", cfg, tiny_model, tiny_tokenizer, progress=False)
    assert summary["n_new"] == 2 and TraceStore(tmp_path / "s").ids() == [q.id for q in QUESTIONS]


# item 6: prompts longer than the model's context (or --max-prompt-tokens) are refused one by one


def test_prompt_over_the_model_context_is_refused_and_the_rest_extracted(tmp_path, tiny_tokenizer):
    model = _llama(len(tiny_tokenizer), max_positions=96)
    questions = [QUESTIONS[0], LONG, QUESTIONS[1]]
    with pytest.warns(UserWarning, match="'long' skipped"):
        summary = extract(questions, tmp_path / "s", ExtractConfig(model="tiny", max_new_tokens=4), model,
                          tiny_tokenizer, progress=False)
    assert [r["id"] for r in summary["refused"]] == ["long"] and summary["n_refused"] == 1
    assert "context of 96 tokens minus max_new_tokens 4" in summary["refused"][0]["reason"]
    assert summary["n_new"] == 2 and TraceStore(tmp_path / "s").ids() == ["q0", "q1"]


def test_max_prompt_tokens_flag_skips_longer_prompts(tmp_path, tiny_tokenizer, capsys):
    d = _save(_llama(len(tiny_tokenizer)), tiny_tokenizer, tmp_path / "m")
    qfile = tmp_path / "q.jsonl"
    rows = [{"id": "short", "question": "Who?", "answers": ["x"], "category": "c"},
            {"id": "longer", "question": "Who wrote Hamlet and which planet is red?", "answers": ["x"],
             "category": "c"}]
    qfile.write_text("".join(json.dumps(r) + "\n" for r in rows))
    limit = len(build_prompt_ids(tiny_tokenizer, "Who?", DEFAULT_TEMPLATE))
    with pytest.warns(UserWarning, match="'longer' skipped"):
        rc = main(["extract", "--questions", str(qfile), "--out", str(tmp_path / "s"), "--model", str(d),
                   "--device", "cpu", "--max-new-tokens", "3", "--max-prompt-tokens", str(limit)])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["n_new"] == 1 and [r["id"] for r in summary["refused"]] == ["longer"]
    assert f"limit of {limit} (set by --max-prompt-tokens" in summary["refused"][0]["reason"]


@pytest.mark.parametrize("value", [0, -3, 2.5])
def test_max_prompt_tokens_is_validated(value):
    with pytest.raises(ValueError, match="max_prompt_tokens"):
        ExtractConfig(max_prompt_tokens=value)


# item 8: a junk .gguf file is a ValueError naming it, and leaves no cache entry behind


def _tiny_gguf(path) -> bytes:
    """The bytes of a small well-formed GGUF file (a llama header and one tensor) written at ``path``."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


JUNK = {
    "empty": lambda real: b"",
    "magic_only": lambda real: real[:4],
    "cut_in_metadata": lambda real: real[:60],
    "cut_in_tensors": lambda real: real[:-64],
    "garbage_after_magic": lambda real: b"GGUF" + struct.pack("<I", 3) + np.random.default_rng(0).bytes(600),
}


@pytest.mark.parametrize("case", sorted(JUNK))
def test_junk_gguf_is_a_clear_error_naming_the_file(tmp_path, monkeypatch, capsys, case):
    monkeypatch.setenv("TRUTHTRACE_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "x.gguf"
    bad.write_bytes(JUNK[case](_tiny_gguf(tmp_path / "real.gguf")))
    with pytest.raises(ValueError, match=re.escape(str(bad)) + ": .*GGUF"):
        resolve_model(str(bad))
    assert main(["model", str(bad)]) == 2 and str(bad) in capsys.readouterr().err
    models = tmp_path / "cache" / "models"
    assert not models.exists() or list(models.iterdir()) == []
