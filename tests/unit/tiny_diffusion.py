"""A tiny random Stable Diffusion pipeline built from configs, offline (no download), for the diffusion tests.

The CLIP tokenizer gets a vocabulary written here: every byte-level character, each with the
end-of-word mark, and whole-word merges for WORDS (so "cat" is one token, "zebra" several).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = ("a", "cat", "dog", "red", "ball", "on", "the", "grass", "blue", "sky")
MAX_LENGTH = 16  # tokenizer model_max_length: text maps hold this many token positions
IMAGE = 32  # pixels; the tiny VAE halves each side: latents 16 x 16, UNet levels 16 x 16 and 8 x 8


def _bytes_to_unicode() -> list[str]:
    """GPT-2's byte-to-character table, as CLIP's tokenizer uses it (256 printable characters)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tokenizer(folder: Path) -> None:
    """``vocab.json`` + ``merges.txt`` + tokenizer config of a small CLIP BPE into ``folder``."""
    from transformers import CLIPTokenizer

    chars = _bytes_to_unicode()
    vocab = chars + [c + "</w>" for c in chars]
    merges = []
    for word in WORDS:  # merge left to right: c a -> ca, ca t</w> -> cat</w>
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            merges.append(f"{pieces[0]} {pieces[1]}")
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
            if pieces[0] not in vocab:
                vocab.append(pieces[0])
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(dict.fromkeys(vocab))}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=MAX_LENGTH,
                        pad_token="<|endoftext|>")
    tok.save_pretrained(str(folder))


def tiny_pipeline(folder: Path | None = None, seed: int = 0):
    """A random ``StableDiffusionPipeline`` (UNet with 2 cross-attention levels, 2-level VAE, 2-layer CLIP);
    saved to ``folder`` when given (a local model directory as a user has one)."""
    import tempfile

    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4)
    vae = AutoencoderKL(block_out_channels=(8, 8), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=IMAGE)
    with tempfile.TemporaryDirectory() as tmp:
        write_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer.from_pretrained(tmp)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=MAX_LENGTH,
                                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                        pad_token_id=tokenizer.pad_token_id))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    if folder is not None:
        pipe.save_pretrained(str(folder), safe_serialization=True)
    return pipe


def tiny_sdxl_pipeline(folder: Path | None = None, seed: int = 0):
    """A random ``StableDiffusionXLPipeline``: two CLIP text encoders (the second with a projection), a UNet
    with SDXL's added time/text conditioning; saved to ``folder`` when given."""
    import tempfile

    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=4, norm_num_groups=4, use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=4, projection_class_embeddings_input_dim=6 * 4 + 16, cross_attention_dim=32)
    vae = AutoencoderKL(block_out_channels=(8, 8), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=IMAGE)
    with tempfile.TemporaryDirectory() as tmp:
        write_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer.from_pretrained(tmp)
    text = dict(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=MAX_LENGTH, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, projection_dim=16)
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=CLIPTextModel(CLIPTextConfig(**text)), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**text)), tokenizer_2=tokenizer, unet=unet,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                         steps_offset=1, timestep_spacing="leading"))
    pipe.set_progress_bar_config(disable=True)
    if folder is not None:
        pipe.save_pretrained(str(folder), safe_serialization=True)
    return pipe
