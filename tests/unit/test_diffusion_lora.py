"""LoRA fine-tuning of the tiny pipeline's UNet attention on 4 image/caption pairs: the loss goes down,
an interrupted run resumes to the very same history, the adapter loads into ``diffuse --adapter``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from tiny_diffusion import IMAGE, tiny_pipeline  # noqa: E402

from truthtrace.diffusion import lora as lora_mod  # noqa: E402
from truthtrace.diffusion.config import DiffuseConfig  # noqa: E402
from truthtrace.diffusion.images import find_pairs, load_pairs  # noqa: E402
from truthtrace.diffusion.lora import LoraTrainConfig, train_lora  # noqa: E402
from truthtrace.diffusion.pipeline import generator, load_pipeline  # noqa: E402
from truthtrace.training.config import LoopConfig  # noqa: E402

CAPTIONS = ("a red ball", "a blue sky", "a red cat", "a blue dog")
COLOURS = ((220, 30, 30), (30, 60, 220), (200, 40, 60), (40, 40, 200))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-sd")
    tiny_pipeline(folder)
    return str(folder)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("pairs")
    for i, (caption, colour) in enumerate(zip(CAPTIONS, COLOURS)):
        pixels = np.zeros((40, 48, 3), np.uint8)  # not square: resized and centre-cropped to 32 x 32
        pixels[:] = colour
        pixels[10:30, 12 + 4 * i:30 + 4 * i] = 255
        Image.fromarray(pixels).save(folder / f"img{i}.png")
        (folder / f"img{i}.txt").write_text(caption + "\n")
    return folder


def _config(model_dir, data_dir, out, **loop):
    settings = {"lr": 3e-2, "max_epochs": 6, "batch_size": 2, "seed": 0, "device": "cpu", "tracking": "none",
                "quiet": True, "warmup_frac": 0.0, "checkpoint_dir": str(out / "checkpoints"), **loop}
    return LoraTrainConfig(model=model_dir, data=str(data_dir), out=str(out), rank=4, loop=LoopConfig(**settings))


def test_pairs_folder(data_dir, tmp_path):
    images, captions = load_pairs(data_dir, (IMAGE, IMAGE))
    assert images.shape == (4, 3, IMAGE, IMAGE) and list(captions) == list(CAPTIONS)
    assert float(images.min()) >= -1 and float(images.max()) <= 1
    (tmp_path / "x.png").write_bytes((data_dir / "img0.png").read_bytes())
    with pytest.raises(ValueError, match="no caption file x.txt"):
        find_pairs(tmp_path)
    (tmp_path / "x.txt").write_text("a cat")
    (tmp_path / "y.png").write_bytes(b"not a png")
    (tmp_path / "y.txt").write_text("a dog")
    with pytest.raises(ValueError, match=r"y\.png: not a readable image"):
        load_pairs(tmp_path, (IMAGE, IMAGE))
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "../x.png", "text": "a"}\n')
    with pytest.raises(ValueError, match="metadata.jsonl:1: field 'file_name'"):
        find_pairs(tmp_path)


def test_lora_lowers_the_loss_and_resumes(model_dir, data_dir, tmp_path, monkeypatch):
    full = train_lora(_config(model_dir, data_dir, tmp_path / "full"))
    losses = [r["eval_loss"] for r in full["history"]]
    assert full["epochs"] == 6 and losses[-1] < full["eval_loss_before"] - 0.03, (full["eval_loss_before"], losses)
    assert (tmp_path / "full/adapter/pytorch_lora_weights.safetensors").is_file()
    real_epoch = lora_mod._epoch

    def crash_in_epoch_3(*args):
        if args[7] == 2:
            raise KeyboardInterrupt
        return real_epoch(*args)

    monkeypatch.setattr(lora_mod, "_epoch", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_lora(_config(model_dir, data_dir, tmp_path / "cut"))
    monkeypatch.setattr(lora_mod, "_epoch", real_epoch)
    resumed = train_lora(_config(model_dir, data_dir, tmp_path / "cut", resume=True))
    assert resumed["history"] == full["history"] and resumed["eval_loss_before"] == full["eval_loss_before"]


def test_adapter_loads_and_changes_the_image(model_dir, data_dir, tmp_path):
    train_lora(_config(model_dir, data_dir, tmp_path, max_epochs=2, ema_decay=0.5))
    images = []
    for adapter in (None, str(tmp_path / "adapter")):
        pipe = load_pipeline(DiffuseConfig(model=model_dir, device="cpu", adapter=adapter))
        out = pipe("a red ball", num_inference_steps=2, height=IMAGE, width=IMAGE, generator=generator(0, "cpu"),
                   output_type="np")
        images.append(np.asarray(out.images[0]))
    assert np.abs(images[0] - images[1]).max() > 1e-3
    assert any("lora" in name for name, _ in pipe.unet.named_parameters())
    with pytest.raises(ValueError, match="no pytorch_lora_weights"):
        load_pipeline(DiffuseConfig(model=model_dir, device="cpu", adapter=str(data_dir)))
    torch.manual_seed(0)


def test_sdxl_is_refused_with_a_reason(data_dir, tmp_path):
    from tiny_diffusion import tiny_sdxl_pipeline

    tiny_sdxl_pipeline(tmp_path / "sdxl")
    with pytest.raises(ValueError, match="added conditioning"):
        train_lora(_config(str(tmp_path / "sdxl"), data_dir, tmp_path / "out"))
