"""``truthtrace diffuse``, ``diffuse-train`` and ``visualize`` on a diffusion store, through the CLI's main()."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("diffusers")

from tiny_diffusion import tiny_pipeline  # noqa: E402

from truthtrace.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-sd")
    tiny_pipeline(folder)
    return str(folder)


def test_diffuse_validate_inspect_visualize(model_dir, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cat on the grass\na blue dog\n")
    args = ["diffuse", "--model", model_dir, "--prompts", str(prompts), "--out", str(tmp_path / "run"),
            "--steps", "2", "--seed", "1", "--resolution", "8", "--scheduler", "euler", "--attention-slicing", "auto",
            "--vae-slicing", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 images generated, 0 already stored" in out and "neglected:" in out
    assert main(args) == 0 and "0 images generated, 2 already stored" in capsys.readouterr().out
    assert main(["validate", str(tmp_path / "run/traces")]) == 0
    assert main(["inspect", str(tmp_path / "run/traces")]) == 0
    capsys.readouterr()
    assert main(["visualize", str(tmp_path / "run/traces"), "--trace", "p-00000", "--out", str(tmp_path / "viz")]) == 0
    assert (tmp_path / "viz/heatmaps-p-00000.png").stat().st_size > 1000
    page = (tmp_path / "viz/index.html").read_text()
    assert "heatmaps-p-00000.png" in page and "a red cat on the grass" in page
    words = json.loads((tmp_path / "run/words.json").read_text())["images"]
    assert set(words) == {"p-00000", "p-00001"}


def test_bad_input_is_one_line(model_dir, tmp_path, capsys):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a cat"}\n{"id": 3, "prompt": "a dog"}\n')
    rc = main(["diffuse", "--model", model_dir, "--prompts", str(prompts), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "p.jsonl:2: field 'id'" in err
    prompts.write_text('{"prompt": "a cat"}\n')
    rc = main(["diffuse", "--model", str(tmp_path), "--prompts", str(prompts), "--out", str(tmp_path / "o")])
    assert rc == 2 and "model_index.json" in capsys.readouterr().err


def test_diffuse_train_then_adapter(model_dir, tmp_path, capsys):
    from PIL import Image

    data = tmp_path / "pairs"
    data.mkdir()
    for i, caption in enumerate(["a red ball", "a blue sky", "a red cat", "a blue dog"]):
        Image.fromarray(np.full((32, 32, 3), 60 * i, np.uint8)).save(data / f"{i}.png")
        (data / f"{i}.txt").write_text(caption)
    train = ["diffuse-train", "--model", model_dir, "--data", str(data), "--out", str(tmp_path / "lora"),
             "--epochs", "2", "--lr", "0.03", "--batch-size", "2", "--device", "cpu", "--quiet"]
    assert main(train) == 0
    out = capsys.readouterr().out
    assert "epoch   2" in out and (tmp_path / "lora/logs").is_dir()  # TensorBoard events by default
    assert main([*train, "--resume"]) == 0 and "epoch   2" in capsys.readouterr().out  # nothing left: same history
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red ball\n")
    assert main(["diffuse", "--model", model_dir, "--prompts", str(prompts), "--out", str(tmp_path / "run"),
                 "--steps", "2", "--adapter", str(tmp_path / "lora/adapter"), "--quiet"]) == 0
    assert (tmp_path / "run/images/p-00000.png").is_file()
