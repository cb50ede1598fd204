"""truthtrace.diffusion on a tiny random Stable Diffusion pipeline (built offline in tiny_diffusion.py).

Schedulers, memory options (same image as the plain pipeline), the capture processor (same image as
without it; maps of the expected shapes summing to 1 over tokens), the store round trip and resume,
validate/inspect on the store, the heat-map arithmetic on synthetic maps with known answers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from tiny_diffusion import IMAGE, MAX_LENGTH, tiny_pipeline, tiny_sdxl_pipeline  # noqa: E402

from truthtrace.diffusion import DiffuseConfig, diffuse, xattn_key  # noqa: E402
from truthtrace.diffusion.capture import capture_cross_attention  # noqa: E402
from truthtrace.diffusion.generate import prompt_tokens  # noqa: E402
from truthtrace.diffusion.heatmaps import daam_heatmap, token_scores, word_scores, word_spans  # noqa: E402
from truthtrace.diffusion.pipeline import generator, load_pipeline  # noqa: E402
from truthtrace.diffusion.prompts import load_prompts  # noqa: E402
from truthtrace.store import StoreError, TraceStore  # noqa: E402
from truthtrace.traces.inspect import inspect_store  # noqa: E402
from truthtrace.traces.validate.stage import validate_store  # noqa: E402

STEPS = 3
PROMPT = "a red cat on the grass"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-sd")
    tiny_pipeline(folder)
    return str(folder)


def _image(pipe, seed=0, prompt=PROMPT, steps=STEPS):
    out = pipe(prompt, num_inference_steps=steps, height=IMAGE, width=IMAGE, generator=generator(seed, "cpu"),
               output_type="np")
    return np.asarray(out.images[0])


@pytest.fixture(scope="module")
def plain_image(model_dir):
    return _image(load_pipeline(DiffuseConfig(model=model_dir, device="cpu")))


@pytest.mark.parametrize("scheduler", ["ddim", "dpm", "euler", "default"])
def test_every_scheduler_runs(model_dir, scheduler):
    pipe = load_pipeline(DiffuseConfig(model=model_dir, scheduler=scheduler, device="cpu"))
    expected = {"ddim": "DDIMScheduler", "dpm": "DPMSolverMultistepScheduler", "euler": "EulerDiscreteScheduler",
                "default": "DDIMScheduler"}[scheduler]
    assert type(pipe.scheduler).__name__ == expected
    with capture_cross_attention(pipe, resolution=4) as rec:
        rec.latent_hw = (IMAGE // 2, IMAGE // 2)
        image = _image(pipe)
    assert image.shape == (IMAGE, IMAGE, 3) and np.isfinite(image).all()
    assert {tuple(m.shape) for m in rec.maps().values()} == {(STEPS, MAX_LENGTH, 4, 4)}


@pytest.mark.parametrize("options", [{"attention_slicing": 1}, {"attention_slicing": "max"}, {"vae_slicing": True},
                                     {"vae_tiling": True}, {"offload": "model"}, {"offload": "sequential"},
                                     {"xformers": True}])
def test_memory_options_give_the_plain_image(model_dir, plain_image, options):
    warns = {"xformers": "xFormers is not installed", "offload": "ignored on the CPU"}
    match = next((text for name, text in warns.items() if options.get(name) in (True, "sequential")), None)
    with pytest.warns(UserWarning, match=match) if match else _no_context():
        pipe = load_pipeline(DiffuseConfig(model=model_dir, device="cpu", **options))
    assert np.abs(_image(pipe) - plain_image).max() < 1e-4


class _no_context:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("slicing", [None, 1])
def test_capture_keeps_the_image_and_maps_sum_to_one(model_dir, plain_image, slicing):
    pipe = load_pipeline(DiffuseConfig(model=model_dir, device="cpu", attention_slicing=slicing))
    before = dict(pipe.unet.attn_processors)
    with capture_cross_attention(pipe, resolution=8) as rec:
        rec.latent_hw = (IMAGE // 2, IMAGE // 2)
        image = _image(pipe)
    assert np.abs(image - plain_image).max() < 1e-4  # AttnProcessor's arithmetic equals SDPA's within round-off
    assert {k: type(v) for k, v in pipe.unet.attn_processors.items()} == {k: type(v) for k, v in before.items()}
    maps = rec.maps()
    assert len(maps) == 4 and rec.sizes == {0: [16, 16], 1: [16, 16], 2: [16, 16], 3: [8, 8]}
    for m in maps.values():
        assert m.shape == (STEPS, MAX_LENGTH, 8, 8)
        torch.testing.assert_close(m.sum(1), torch.ones(STEPS, 8, 8), atol=1e-5, rtol=0)
    torch.testing.assert_close(daam_heatmap(maps).sum(0), torch.ones(8, 8), atol=1e-5, rtol=0)


def test_processor_error_restores_processors(model_dir):
    pipe = load_pipeline(DiffuseConfig(model=model_dir, device="cpu"))
    before = {k: type(v) for k, v in pipe.unet.attn_processors.items()}
    with pytest.raises(RuntimeError, match="boom"):
        with capture_cross_attention(pipe):
            raise RuntimeError("boom")
    assert {k: type(v) for k, v in pipe.unet.attn_processors.items()} == before


def test_store_round_trip_resume_validate_inspect(model_dir, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "cat", "prompt": "a red cat on the grass"}\n{"id": "zebra", "prompt": "a zebra"}\n')
    config = DiffuseConfig(model=model_dir, steps=STEPS, resolution=8, seed=3, device="cpu")
    summary = diffuse(config, prompts, tmp_path / "out", progress=False)
    assert summary["generated"] == 2 and (tmp_path / "out/images/cat.png").is_file()
    store = TraceStore(tmp_path / "out/traces")
    trace = store.get("cat")
    assert store.schema["source"] == "diffusion" and len(store.schema["xattn_layers"]) == 4
    assert trace["image"].shape == (IMAGE, IMAGE, 3) and trace["image"].dtype == torch.uint8
    pipe = load_pipeline(config)  # the stored maps equal a live pass with the same seed (float16 storage)
    with capture_cross_attention(pipe, resolution=8) as rec:
        rec.latent_hw = (IMAGE // 2, IMAGE // 2)
        live = _image(pipe, seed=3, prompt="a red cat on the grass")
    assert np.abs(trace["image"].numpy() / 255 - live).max() <= 0.5 / 255 + 1e-4
    for layer, m in rec.maps().items():
        torch.testing.assert_close(trace[xattn_key(layer)].float(), m, atol=1e-3, rtol=1e-3)
    words = json.loads((tmp_path / "out/words.json").read_text())["images"]
    assert [w["word"] for w in words["cat"]["words"]] == ["a", "red", "cat", "on", "the", "grass"]
    assert words["zebra"]["words"][1]["tokens"] == [2, 3, 4, 5, 6] and words["cat"]["neglected"] in PROMPT.split()
    again = diffuse(config, prompts, tmp_path / "out", progress=False)
    assert again["generated"] == 0 and again["skipped"] == 2
    with pytest.raises(StoreError, match="steps"):
        diffuse(DiffuseConfig(model=model_dir, steps=2, resolution=8, seed=3, device="cpu"), prompts,
                tmp_path / "out", progress=False)
    report = validate_store(tmp_path / "out/traces")
    assert report.ok, report.problems
    assert inspect_store(tmp_path / "out/traces")["n_traces"] == 2


def test_interrupted_run_resumes_with_the_rest(model_dir, tmp_path, monkeypatch):
    from truthtrace.diffusion import generate

    prompts = [("p0", "a cat"), ("p1", "a dog"), ("p2", "a red ball")]
    config = DiffuseConfig(model=model_dir, steps=2, resolution=4, device="cpu")
    real, calls = generate._generate, []

    def stop_at_third(*args):
        calls.append(args[2])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(generate, "_generate", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        diffuse(config, prompts, tmp_path, progress=False)
    assert TraceStore(tmp_path / "traces").ids() == ["p0", "p1"]  # what was complete is kept
    monkeypatch.setattr(generate, "_generate", real)
    summary = diffuse(config, prompts, tmp_path, progress=False)
    assert (summary["generated"], summary["skipped"]) == (1, 2)
    assert TraceStore(tmp_path / "traces").ids() == ["p0", "p1", "p2"] and validate_store(tmp_path / "traces").ok


def test_sdxl_pipeline_is_traced(tmp_path):
    tiny_sdxl_pipeline(tmp_path / "sdxl")
    config = DiffuseConfig(model=str(tmp_path / "sdxl"), steps=2, resolution=4, device="cpu", scheduler="ddim")
    summary = diffuse(config, [("x", "a red cat")], tmp_path / "out", progress=False)
    store = TraceStore(tmp_path / "out/traces")
    assert summary["generated"] == 1 and store.schema["pipeline"] == "StableDiffusionXLPipeline"
    trace = store.get("x")
    assert trace[xattn_key(0)].shape == (2, MAX_LENGTH, 4, 4) and trace["image"].shape == (IMAGE, IMAGE, 3)
    torch.testing.assert_close(trace["heatmap"].sum(0), torch.ones(4, 4), atol=1e-3, rtol=0)
    assert validate_store(tmp_path / "out/traces").ok


def test_prompt_tokens_and_word_spans(model_dir):
    pipe = load_pipeline(DiffuseConfig(model=model_dir, device="cpu"))
    ids, words, n_words = prompt_tokens(pipe.tokenizer, "A zebra, on  grass")
    assert ids.shape == (MAX_LENGTH,) and n_words == 9  # a | z e b r a , | on | grass
    assert words == [("A", [1]), ("zebra,", [2, 3, 4, 5, 6, 7]), ("on", [8]), ("grass", [9])]
    assert word_spans("ab cd", [(0, 0), (0, 1), (1, 2), (3, 5), (0, 0)]) == [("ab", [1, 2]), ("cd", [3])]


def test_token_scores_known_answer():
    n, r, steps = 6, 4, 2
    maps = torch.zeros(steps, n, r, r)
    maps[:, 0] = 0.5  # the start token takes half everywhere (it is left out of the peaks)
    maps[:, 1] = 0.5  # word 1 the rest, except at one pixel where word 2 has it all
    maps[:, 1, 0, 0], maps[:, 2, 0, 0] = 0.0, 0.5
    peak, mass = token_scores({0: maps, 1: maps}, n_words=3)
    assert peak.shape == mass.shape == (steps, n)
    torch.testing.assert_close(mass[0], torch.tensor([0.5, 0.5 * 15 / 16, 0.5 / 16, 0, 0, 0]))
    assert peak[0, 1] > 0.99 and 0.4 < peak[0, 2] < 1.0 and peak[0, 3] == 0 and peak[0, 0] == 0
    rows = word_scores([("dog", [1]), ("ball", [2, 3]), ("sky", [3])], peak, mass)
    assert [r["word"] for r in sorted(rows, key=lambda r: r["neglect"])] == ["dog", "ball", "sky"]
    assert rows[2]["neglect"] == 1.0 and rows[1]["mass"] == pytest.approx(0.5 / 16)


def test_prompt_files_and_config_errors(tmp_path):
    text = tmp_path / "p.txt"
    text.write_text("# comment\na cat\n\na dog\n")
    assert load_prompts(text) == [("p-00001", "a cat"), ("p-00003", "a dog")]
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"id": "x", "prompt": "a"}\n{"id": "../etc", "prompt": "b"}\n')
    with pytest.raises(ValueError, match=r"p\.jsonl:2: field 'id'"):
        load_prompts(bad)
    bad.write_text('{"id": "x", "prompt": "a"}\n{"id": "x", "prompt": "b"}\n')
    with pytest.raises(ValueError, match="appears twice"):
        load_prompts(bad)
    for field, value in (("steps", 0), ("scheduler", "heun"), ("offload", "disk"), ("height", 30),
                         ("attention_slicing", "some"), ("resolution", -1)):
        with pytest.raises(ValueError, match=field):
            DiffuseConfig(model="m", **{field: value})
    with pytest.raises(ValueError, match="float16 needs a CUDA"):
        DiffuseConfig(model="m", dtype="float16", device="cpu")
    with pytest.raises(ValueError, match="model_index.json"):
        load_pipeline(DiffuseConfig(model=str(tmp_path), device="cpu"))
