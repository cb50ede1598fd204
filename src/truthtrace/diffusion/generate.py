"""The ``diffuse`` stage: images from a prompt file, and a trace store of what each prompt word did.

Layout of ``--out``::

    out/images/<id>.png     the generated images (written atomically before their trace)
    out/traces/             a trace store (docs/FORMAT.md), one trace per prompt:
        token_ids           (N,) int64, the prompt's N text positions (start, words, end, padding)
        layers.<i>.xattn    (S, N, R, R) head-mean cross-attention of layer i at each of the S steps
        heatmap             (N, R, R) DAAM map: mean over layers and steps (sums to 1 over tokens)
        token_peak          (S, N) Attend-and-Excite peak per step and token; token_mass (S, N) its share
        image               (H, W, 3) uint8, the image
      meta: prompt, seed, words (peak, mass, neglect per word), neglected, layer_sizes
    out/words.json          per image: its most neglected word and every word's scores

Re-running the same command resumes: prompts already in the store are skipped; other settings are refused.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from truthtrace.diffusion.capture import capture_cross_attention, cross_attention_names
from truthtrace.diffusion.config import DiffuseConfig
from truthtrace.diffusion.heatmaps import daam_heatmap, most_neglected, token_scores, word_scores, word_spans
from truthtrace.diffusion.pipeline import generator, load_pipeline, require_pil
from truthtrace.diffusion.prompts import load_prompts
from truthtrace.fileio import atomic_write, read_versioned_json, write_json_atomic
from truthtrace.machine import peak_memory
from truthtrace.store import TraceStore, TraceWriter

SOURCE = "diffusion"
WORDS_FORMAT, WORDS_VERSION = "truthtrace.diffusion.words", 1


def xattn_key(layer: int) -> str:
    """Store key of cross-attention layer ``layer``'s maps, e.g. ``layers.3.xattn`` ``(S, N, R, R)``."""
    if layer < 0:
        raise ValueError(f"layer must be >= 0, got {layer}")
    return f"layers.{layer}.xattn"


def image_size(pipe, config: DiffuseConfig) -> tuple[int, int]:
    """``(height, width)`` in pixels: the config's, else the UNet's sample size times the VAE factor."""
    default = pipe.unet.config.sample_size * pipe.vae_scale_factor
    return config.height or default, config.width or default


def store_schema(pipe, config: DiffuseConfig) -> dict:
    """The trace store's schema: model, pipeline and scheduler classes, settings, cross-attention layers."""
    return {"kind": "truthtrace.traces", "source": SOURCE, "model": config.model, "pipeline": type(pipe).__name__,
            "scheduler_class": type(pipe.scheduler).__name__, "settings": config.schema_fields(),
            "size": list(image_size(pipe, config)), "n_text_tokens": pipe.tokenizer.model_max_length,
            "xattn_layers": [n.removesuffix(".processor") for n in cross_attention_names(pipe.unet)]}


def prompt_tokens(tokenizer, prompt: str) -> tuple[torch.Tensor, list[tuple[str, list[int]]], int]:
    """``(token_ids (N,), words with their positions, n_words)`` of ``prompt`` padded to the model's length.

    ``n_words`` counts the positions between the start token and the end token (truncated prompts lose
    their last words, as the pipeline does).
    """
    enc = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_offsets_mapping=True)
    ids = torch.tensor(enc["input_ids"], dtype=torch.int64)
    eos = (ids == tokenizer.eos_token_id).nonzero()
    n_words = int(eos[0]) - 1 if len(eos) else len(ids) - 1
    offsets = [tuple(o) for o in enc["offset_mapping"]][:n_words + 1]
    return ids, word_spans(prompt, offsets), n_words


def trace_of(maps: dict[int, torch.Tensor], tokenizer, prompt: str, image: np.ndarray) -> tuple[dict, dict]:
    """``(tensors, meta)`` of one image from its captured maps ``{layer: (S, N, R, R)}``."""
    ids, words, n_words = prompt_tokens(tokenizer, prompt)
    peak, mass = token_scores(maps, n_words)
    rows = word_scores(words, peak, mass)
    tensors = {"token_ids": ids, **{xattn_key(i): m for i, m in maps.items()}, "heatmap": daam_heatmap(maps),
               "token_peak": peak, "token_mass": mass,
               "image": torch.from_numpy(np.ascontiguousarray((image * 255).round().clip(0, 255).astype(np.uint8)))}
    meta = {"prompt": prompt, "words": rows, "neglected": most_neglected(rows), "n_prompt_tokens": len(ids),
            "n_answer_tokens": 0}
    return tensors, meta


def save_png(path: Path, image: np.ndarray) -> None:
    """Write ``image`` ``(H, W, 3)`` floats in [0, 1] as a PNG, atomically."""
    pil = require_pil().fromarray((image * 255).round().clip(0, 255).astype(np.uint8))
    atomic_write(path, lambda tmp: pil.save(tmp, format="PNG"))


def _generate(pipe, config: DiffuseConfig, prompt: str, seed: int) -> np.ndarray:
    """One image ``(H, W, 3)`` in [0, 1]."""
    height, width = image_size(pipe, config)
    out = pipe(prompt, num_inference_steps=config.steps, guidance_scale=config.guidance, height=height,
               width=width, generator=generator(seed, config.resolve_device()), output_type="np")
    return np.asarray(out.images[0], dtype=np.float32)


def diffuse(config: DiffuseConfig, prompts, out, overwrite: bool = False, progress: bool = True) -> dict:
    """Generate an image per prompt into ``out/images`` and trace it into the store ``out/traces``.

    Args:
        config: the run's :class:`DiffuseConfig`.
        prompts: prompt file (:func:`truthtrace.diffusion.prompts.load_prompts`) or a list of ``(id, prompt)``.
        out: output folder.
        overwrite: replace an existing store at ``out/traces`` instead of resuming it.
        progress: show a tqdm bar.
    Returns:
        summary dict: n_prompts, generated, skipped (already stored), seconds, words (``out/words.json``),
        store, images, peak memory.
    Raises:
        ValueError: bad prompts or model. StoreError: the store was written with other settings.
    """
    items = load_prompts(prompts) if isinstance(prompts, (str, Path)) else list(prompts)
    out, start = Path(out), time.perf_counter()
    (out / "images").mkdir(parents=True, exist_ok=True)
    pipe = load_pipeline(config)
    height, width = image_size(pipe, config)
    done = skipped = 0
    with TraceWriter(out / "traces", store_schema(pipe, config), storage_dtype=config.storage_dtype,
                     resume=not overwrite, overwrite=overwrite, shard_max_traces=64) as writer, \
            capture_cross_attention(pipe, config.resolution) as recorder:
        recorder.latent_hw = (height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
        for i, (pid, prompt) in enumerate(tqdm(items, desc="diffuse", unit="image", disable=not progress)):
            if writer.has(pid):
                skipped += 1
                continue
            recorder.reset()
            image = _generate(pipe, config, prompt, config.seed + i)
            tensors, meta = trace_of(recorder.maps(), pipe.tokenizer, prompt, image)
            save_png(out / "images" / f"{pid}.png", image)
            writer.add(pid, tensors, {**meta, "seed": config.seed + i, "layer_sizes": recorder.sizes})
            done += 1
    words = write_words(out)
    return {"n_prompts": len(items), "generated": done, "skipped": skipped, "store": str(out / "traces"),
            "images": str(out / "images"), "words": str(words), "seconds": round(time.perf_counter() - start, 2),
            **peak_memory()}


def write_words(out: Path) -> Path:
    """``out/words.json``: ``{"images": {id: {prompt, neglected, words}}}`` for every image in the store."""
    store = TraceStore(out / "traces")
    images = {tid: {k: store.meta(tid).get(k) for k in ("prompt", "neglected", "words")} for tid in store.ids()}
    write_json_atomic(out / "words.json", {"format": WORDS_FORMAT, "version": WORDS_VERSION, "images": images})
    return out / "words.json"


def read_words(path) -> dict:
    """``{id: {prompt, neglected, words}}`` of a ``words.json``; ValueError naming the file if it is not one."""
    return read_versioned_json(path, WORDS_FORMAT, (WORDS_VERSION,))["images"]
