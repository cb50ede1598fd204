"""LoRA fine-tuning of the UNet's attention projections on a folder of image/caption pairs (``diffuse-train``).

The training pieces are the house's (:mod:`truthtrace.training`): ``LoopConfig`` for the settings,
AdamW with linear warmup + cosine decay, gradient clipping, an optional EMA of the LoRA weights, atomic
``last`` checkpoints that resume exactly (the noise of epoch ``e`` is drawn from ``seed`` and ``e`` alone),
and the tracker (TensorBoard by default: per-epoch loss, per-step lr, weight histograms). The loss is the
usual denoising MSE (noise, or velocity for v-prediction models) on VAE latents and text embeddings that
are computed once. ``eval_loss`` is the same loss on fixed noise and timesteps, so epochs compare.

Writes ``out/adapter/pytorch_lora_weights.safetensors`` (diffusers' LoRA format: ``diffuse --adapter``,
``pipe.load_lora_weights``), ``out/train.json``, ``out/checkpoints/``, ``out/logs/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from truthtrace.diffusion.config import DiffuseConfig
from truthtrace.diffusion.images import load_pairs
from truthtrace.diffusion.lora_state import LoraParams, add_lora, save_adapter
from truthtrace.diffusion.pipeline import load_pipeline
from truthtrace.fileio import write_json_atomic
from truthtrace.machine import peak_memory
from truthtrace.training.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from truthtrace.training.config import LoopConfig
from truthtrace.training.ema import ema_module, make_ema
from truthtrace.training.loop import warmup_cosine
from truthtrace.training.tracking import module_tensors, start_tracker

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # the attention projections of every UNet attention module


@dataclass
class LoraTrainConfig:
    """Settings of one ``diffuse-train`` run.

    Args:
        model: pipeline directory or hub id.
        data: folder of image/caption pairs (:func:`truthtrace.diffusion.images.find_pairs`).
        out: output folder.
        rank: LoRA rank; alpha: LoRA scale numerator (None: ``rank``, a scale of 1).
        targets: UNet module names the adapters wrap.
        size: training image side in pixels (None: the model's default).
        loop: the training loop's :class:`~truthtrace.training.config.LoopConfig` (lr, epochs, EMA, seed,
            batch size, device, tracking, resume); its checkpoint and log dirs default to ``out``'s.
    Raises:
        ValueError: naming the field of the first bad value.
    """

    model: str
    data: str
    out: str
    rank: int = 4
    alpha: float | None = None
    targets: tuple[str, ...] = TARGETS
    size: int | None = None
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(lr=1e-4, max_epochs=10, batch_size=1))

    def __post_init__(self) -> None:
        for name in ("model", "data", "out"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty path, got {getattr(self, name)!r}")
        if not (isinstance(self.rank, int) and not isinstance(self.rank, bool) and self.rank >= 1):
            raise ValueError(f"rank must be an int >= 1, got {self.rank!r}")
        if self.alpha is not None and not (isinstance(self.alpha, (int, float)) and self.alpha > 0):
            raise ValueError(f"alpha must be None or > 0, got {self.alpha!r}")
        if not self.targets or not all(isinstance(t, str) and t for t in self.targets):
            raise ValueError(f"targets must be module names like {list(TARGETS)}, got {self.targets!r}")
        if self.size is not None and not (isinstance(self.size, int) and self.size >= 8 and self.size % 8 == 0):
            raise ValueError(f"size must be None or a multiple of 8, got {self.size!r}")
        if not isinstance(self.loop, LoopConfig):
            raise ValueError(f"loop must be a LoopConfig, got {type(self.loop).__name__}")
        if self.loop.checkpoint_dir is None:
            self.loop.checkpoint_dir = str(Path(self.out) / "checkpoints")
        if self.loop.log_dir is None:
            self.loop.log_dir = str(Path(self.out) / "logs")


@torch.no_grad()
def encode_data(pipe, images: torch.Tensor, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(latents (n, c, h, w), text embeddings (n, N, D))``: the VAE means times its scaling factor, and the
    text encoder's last hidden states of the captions padded to the tokenizer's length."""
    device = pipe.unet.device
    latents = pipe.vae.encode(images.to(device)).latent_dist.mean * pipe.vae.config.scaling_factor
    ids = pipe.tokenizer(captions, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    return latents, pipe.text_encoder(ids.to(device))[0]


def denoising_loss(pipe, latents, text, generator: torch.Generator) -> torch.Tensor:
    """MSE of the UNet's prediction on ``latents`` ``(b, c, h, w)`` noised at random timesteps (from ``generator``)."""
    sched = pipe.scheduler
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    t = torch.randint(0, sched.config.num_train_timesteps, (latents.shape[0],), generator=generator).to(latents.device)
    noisy = sched.add_noise(latents, noise, t)
    target = sched.get_velocity(latents, noise, t) if sched.config.prediction_type == "v_prediction" else noise
    pred = pipe.unet(noisy, t, encoder_hidden_states=text).sample
    return torch.nn.functional.mse_loss(pred.float(), target.float())


@torch.no_grad()
def eval_loss(pipe, latents, text, seed: int, repeats: int = 4) -> float:
    """The denoising loss on fixed noise and timesteps (seeded by ``seed``), averaged over ``repeats`` draws."""
    g = torch.Generator().manual_seed(10_000 + seed)
    return sum(float(denoising_loss(pipe, latents, text, g)) for _ in range(repeats)) / repeats


def _epoch(pipe, params, opt, sched, ema, data, loop: LoopConfig, epoch: int, lrs: list) -> float:
    """One pass over the shuffled data; the mean training loss."""
    latents, text = data
    g = torch.Generator().manual_seed(loop.seed * 1_000_003 + epoch)  # a resumed run draws the same noise
    order, losses = torch.randperm(latents.shape[0], generator=g), []
    for start in range(0, len(order), loop.batch_size):
        idx = order[start:start + loop.batch_size]
        loss = denoising_loss(pipe, latents[idx], text[idx], g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if loop.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params.parameters(), loop.clip_norm)
        opt.step()
        sched.step()
        if ema is not None:
            ema.update_parameters(params)
        lrs.append((sched.last_epoch, sched.get_last_lr()[0]))
        losses.append(float(loss.detach()))
    return sum(losses) / len(losses)


def _setup(config: LoraTrainConfig):
    """Pipeline with LoRA on the UNet (everything else frozen), data encoded, optimizer, schedule, EMA."""
    loop = config.loop
    torch.manual_seed(loop.seed)
    pipe = load_pipeline(DiffuseConfig(model=config.model, dtype="float32", device=loop.resolve_device()))
    if pipe.unet.config.addition_embed_type is not None:  # SDXL: pooled text + size/crop conditioning
        raise ValueError(f"{config.model}: a {type(pipe).__name__} UNet takes added conditioning "
                         f"({pipe.unet.config.addition_embed_type!r}) that diffuse-train does not feed yet; "
                         "it trains Stable Diffusion 1.x/2.x UNets")
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.requires_grad_(False)
    add_lora(pipe.unet, config.rank, config.alpha or config.rank, config.targets)
    params = LoraParams(pipe.unet)
    side = config.size or pipe.unet.config.sample_size * pipe.vae_scale_factor
    images, captions = load_pairs(config.data, (side, side))
    data = encode_data(pipe, images, captions)
    opt = torch.optim.AdamW(params.parameters(), lr=loop.lr, weight_decay=loop.weight_decay)
    steps = loop.max_epochs * -(-len(captions) // loop.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps, loop.warmup_frac))
    ema = make_ema(params, loop.ema_decay) if loop.ema_decay else None
    return pipe, params, data, opt, sched, ema


def train_lora(config: LoraTrainConfig) -> dict:
    """Fine-tune LoRA adapters; resume from ``checkpoints/last`` when ``config.loop.resume`` and it exists.

    Returns:
        summary: epochs, history (per epoch: train_loss, eval_loss, lr), eval_loss_before, adapter path,
        n_images, n_lora_parameters, seconds, peak memory (also written to ``out/train.json``).
    Raises:
        ValueError: bad data folder, model or settings; a checkpoint that does not fit.
    """
    loop, start = config.loop, time.perf_counter()
    pipe, params, data, opt, sched, ema = _setup(config)
    meta = {"epoch": 0, "history": [], "eval_loss_before": None}
    if loop.resume and has_checkpoint(loop.checkpoint_dir, "last"):
        meta, _ = load_checkpoint(loop.checkpoint_dir, "last", model=params, optimizer=opt, scheduler=sched, ema=ema)
    else:
        meta["eval_loss_before"] = eval_loss(pipe, *data, loop.seed)
    tracker = start_tracker(loop.tracking, loop.log_dir, {**loop.to_dict(), "rank": config.rank},
                            run_name="diffuse-train")
    try:
        for epoch in tqdm(range(meta["epoch"], loop.max_epochs), desc="diffuse-train", disable=loop.quiet):
            lrs: list = []
            train = _epoch(pipe, params, opt, sched, ema, data, loop, epoch, lrs)
            record = {"epoch": epoch + 1, "train_loss": train, "lr": lrs[-1][1],
                      "eval_loss": _eval_with(pipe, params, ema, data, loop.seed)}
            meta = {**meta, "epoch": epoch + 1, "history": [*meta["history"], record]}
            tracker.log({"train/loss": train, "eval/loss": record["eval_loss"], "lr": record["lr"]}, epoch + 1)
            if tracker.active:
                tracker.steps("lr/step", lrs)
                tracker.histograms(module_tensors(params), epoch + 1)
            save_checkpoint(loop.checkpoint_dir, "last", model=params, optimizer=opt, scheduler=sched, ema=ema,
                            best_state=None, meta=meta)
    finally:
        tracker.close()
    adapter = save_adapter(pipe, ema_module(ema, params), Path(config.out) / "adapter")
    summary = {"epochs": meta["epoch"], "eval_loss_before": meta["eval_loss_before"], "history": meta["history"],
               "adapter": str(adapter), "n_images": int(data[0].shape[0]), "n_lora_parameters": params.numel(),
               "seconds": round(time.perf_counter() - start, 2), **peak_memory()}
    write_json_atomic(Path(config.out) / "train.json", summary)
    return summary


def _eval_with(pipe, params, ema, data, seed: int) -> float:
    """``eval_loss`` with the weights that will be saved (the EMA copy when there is one)."""
    if ema is None:
        return eval_loss(pipe, *data, seed)
    live = {k: v.detach().clone() for k, v in params.state_dict().items()}
    params.load_state_dict(ema.module.state_dict())
    try:
        return eval_loss(pipe, *data, seed)
    finally:
        params.load_state_dict(live)
