"""LoRA adapters (--adapter, BASE+DIR, compress --merge-adapter) and big-model placement (--device-map, --load-in)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import make_tiny_model
from truthtrace.models.adapters import adapter_disabled, apply_adapter, split_adapter_spec, with_adapter
from truthtrace.models.load import load_any, load_model
from truthtrace.models.placement import Placement, device_summary, parse_max_memory

peft = pytest.importorskip("peft")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, tiny_tokenizer):
    root = tmp_path_factory.mktemp("adapters")
    base = make_tiny_model(len(tiny_tokenizer), layers=4)
    base.save_pretrained(root / "base")
    tiny_tokenizer.save_pretrained(root / "base")
    torch.manual_seed(1)
    lora = peft.get_peft_model(make_tiny_model(len(tiny_tokenizer), layers=4),
                               peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                               init_lora_weights=False))  # random B: the adapter does something
    lora.save_pretrained(root / "lora")
    return root


def _hidden(model, tok) -> list[torch.Tensor]:
    """Every layer's hidden states of one fixed prompt: list of (1, T, d)."""
    ids = tok(["Question: What is the capital of France? Answer:"], return_tensors="pt")
    with torch.no_grad():
        return list(model(**ids, output_hidden_states=True).hidden_states)


def _max_diff(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def test_adapter_changes_states_disabled_equals_base_merged_equals_adapter(dirs, tiny_tokenizer):
    base = load_any(str(dirs / "base"), device="cpu").model
    ref = _hidden(base, tiny_tokenizer)
    wrapped = apply_adapter(load_any(str(dirs / "base"), device="cpu").model, dirs / "lora")
    adapted = _hidden(wrapped, tiny_tokenizer)
    assert _max_diff(ref, adapted) > 1e-3  # the adapter changes hidden states
    with adapter_disabled(wrapped):
        assert _max_diff(ref, _hidden(wrapped, tiny_tokenizer)) == 0.0  # disabled = base, exactly
    merged, tok = load_model(f"{dirs / 'base'}+{dirs / 'lora'}", device="cpu")  # the BASE+DIR spec merges
    assert not hasattr(merged, "peft_config")
    assert _max_diff(adapted, _hidden(merged, tiny_tokenizer)) < 1e-5
    assert merged.truthtrace_id.endswith("+lora") and merged.truthtrace_path is None
    with pytest.raises(ValueError, match="no peft adapter to disable"):
        with adapter_disabled(merged):
            pass


def test_adapter_spec_errors(dirs, tmp_path):
    assert split_adapter_spec(f"m+{dirs / 'lora'}") == ("m", str(dirs / "lora"))
    assert split_adapter_spec("plain") == ("plain", None)
    assert with_adapter("m", str(dirs / "lora")) == f"m+{dirs / 'lora'}"
    with pytest.raises(ValueError, match="no adapter_config.json"):
        split_adapter_spec(f"m+{tmp_path}")
    with pytest.raises(ValueError, match="not a directory"):
        with_adapter("m", str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="already names an adapter"):
        with_adapter(f"m+{dirs / 'lora'}", str(dirs / "lora"))


def test_compress_merge_adapter(dirs, tiny_tokenizer, tmp_path):
    from truthtrace.compress import CompressConfig, compress

    compress(CompressConfig(model=str(dirs / "base"), out=str(tmp_path / "merged"), merge_adapter=str(dirs / "lora")))
    merged = load_any(str(tmp_path / "merged"), device="cpu").model
    wrapped = apply_adapter(load_any(str(dirs / "base"), device="cpu").model, dirs / "lora")
    assert _max_diff(_hidden(wrapped, tiny_tokenizer), _hidden(merged, tiny_tokenizer)) < 1e-5


def test_device_map_splits_over_cpu_and_disk(dirs, tiny_tokenizer, tmp_path):
    ref = _hidden(load_any(str(dirs / "base"), device="cpu").model, tiny_tokenizer)
    total = sum(p.numel() * 4 for p in load_any(str(dirs / "base"), device="cpu").model.parameters())
    placement = Placement(device_map="sequential", max_memory={"cpu": total // 2}, offload_folder=str(tmp_path))
    lm = load_any(str(dirs / "base"), placement=placement)
    assert set(device_summary(lm.model)) == {"cpu", "disk"}
    assert _max_diff(ref, _hidden(lm.model, tiny_tokenizer)) == 0.0
    with pytest.raises(ValueError, match="offloaded to disk; merge it once with truthtrace compress"):
        load_any(f"{dirs / 'base'}+{dirs / 'lora'}", placement=placement)


def test_adapter_on_a_device_map_stays_unmerged(dirs, tiny_tokenizer):
    wrapped = apply_adapter(load_any(str(dirs / "base"), device="cpu").model, dirs / "lora")
    lm = load_any(f"{dirs / 'base'}+{dirs / 'lora'}", placement=Placement(device_map="auto"))
    assert hasattr(lm.model, "peft_config")  # peft wraps the accelerate-dispatched modules
    assert _max_diff(_hidden(wrapped, tiny_tokenizer), _hidden(lm.model, tiny_tokenizer)) == 0.0


def test_placement_checks():
    assert parse_max_memory("0=20GiB, cpu=64GiB") == {0: "20GiB", "cpu": "64GiB"}
    with pytest.raises(ValueError, match="--max-memory"):
        parse_max_memory("cpu")
    with pytest.raises(ValueError, match="device_map must be one of"):
        Placement(device_map="everywhere")
    with pytest.raises(ValueError, match="max_memory applies with a device_map"):
        Placement(max_memory={"cpu": 1})
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--load-in 8bit needs a CUDA GPU"):
            Placement(load_in="8bit").kwargs()
