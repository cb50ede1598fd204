"""CLI subcommands: diffuse (images + cross-attention traces of a text-to-image model), diffuse-train (LoRA)."""

from __future__ import annotations

import json
from pathlib import Path

from truthtrace.diffusion import diffuse
from truthtrace.diffusion.config import MODEL_DTYPES, OFFLOADS, SCHEDULERS, DiffuseConfig
from truthtrace.diffusion.generate import read_words
from truthtrace.diffusion.lora import LoraTrainConfig, train_lora
from truthtrace.dtypes import STORAGE_DTYPES
from truthtrace.machine import peak_memory_line
from truthtrace.training.config import TRACKERS, LoopConfig


def _slicing(text: str | None) -> str | int | None:
    """``--attention-slicing``: ``auto``, ``max`` or a slice size."""
    if text is None or text in ("auto", "max"):
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--attention-slicing must be 'auto', 'max' or an int, got {text!r}") from None


def diffuse_config(args) -> DiffuseConfig:
    """The :class:`DiffuseConfig` of parsed ``diffuse`` arguments."""
    return DiffuseConfig(model=args.model, steps=args.steps, seed=args.seed, scheduler=args.scheduler,
                         guidance=args.guidance, height=args.height, width=args.width, resolution=args.resolution,
                         attention_slicing=_slicing(args.attention_slicing), vae_slicing=args.vae_slicing,
                         vae_tiling=args.vae_tiling, xformers=args.xformers, offload=args.offload, dtype=args.dtype,
                         device=args.device, adapter=args.adapter, storage_dtype=args.storage_dtype)


def cmd_diffuse(args) -> None:
    """Run :func:`truthtrace.diffusion.diffuse`; print each new image's most neglected word and where things went."""
    summary = diffuse(diffuse_config(args), args.prompts, args.out, overwrite=args.overwrite,
                      progress=not args.quiet)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    words = read_words(summary["words"])
    for tid, doc in list(words.items())[:20]:
        top = ", ".join(f"{w['word']} {w['peak']:.2f}" for w in doc["words"][:8])
        print(f"{tid:14s} neglected: {doc['neglected']!s:12s} peaks: {top}")
    print(f"{summary['generated']} images generated, {summary['skipped']} already stored, in {summary['seconds']} s; "
          f"{peak_memory_line()}")
    print(f"images {summary['images']}  traces {summary['store']}  words {summary['words']}")
    print(f"next: truthtrace validate {summary['store']}; truthtrace visualize {summary['store']} --trace "
          f"{next(iter(words), 'ID')} --out {args.out}/viz")


def cmd_diffuse_train(args) -> None:
    """Run :func:`truthtrace.diffusion.lora.train_lora` and print the loss per epoch and the adapter's path."""
    loop = LoopConfig(lr=args.lr, max_epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                      ema_decay=args.ema_decay, warmup_frac=args.warmup_frac, clip_norm=args.clip_norm,
                      device=args.device, tracking=args.tracking, resume=args.resume, quiet=args.quiet,
                      checkpoint_dir=str(Path(args.out) / "checkpoints"), log_dir=str(Path(args.out) / "logs"))
    summary = train_lora(LoraTrainConfig(model=args.model, data=args.data, out=args.out, rank=args.rank,
                                         alpha=args.alpha, size=args.size, loop=loop))
    print(f"eval loss before training {summary['eval_loss_before']:.4f}")
    for record in summary["history"]:
        print(f"epoch {record['epoch']:3d}  train loss {record['train_loss']:.4f}  eval loss "
              f"{record['eval_loss']:.4f}  lr {record['lr']:.2e}")
    print(f"{summary['n_lora_parameters']} LoRA weights on {summary['n_images']} images, {summary['seconds']} s; "
          f"{peak_memory_line()}")
    print(f"adapter {summary['adapter']}  (use: truthtrace diffuse --model {args.model} --adapter "
          f"{summary['adapter']} ...)")


def _add_diffuse(sub) -> None:
    p = sub.add_parser("diffuse", help="images from prompts + a trace store of each word's cross-attention",
                       description="Generate an image per prompt with a diffusers text-to-image pipeline and store "
                       "the UNet's cross-attention per (layer, step) as per-token heat maps (resumable).")
    p.add_argument("--model", required=True, help="pipeline directory (model_index.json) or hub id")
    p.add_argument("--prompts", required=True, help="prompt file: text (one a line) or JSONL {id, prompt}")
    p.add_argument("--out", required=True, help="output folder: images/, traces/, words.json")
    p.add_argument("--steps", type=int, default=30, help="denoising steps (default 30)")
    p.add_argument("--seed", type=int, default=0, help="prompt i is drawn with seed S + i (default 0)")
    p.add_argument("--scheduler", choices=list(SCHEDULERS), default="default", help="default: the model's own")
    p.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale (default 7.5)")
    p.add_argument("--height", type=int, default=None, help="pixels (default: the model's)")
    p.add_argument("--width", type=int, default=None, help="pixels (default: the model's)")
    p.add_argument("--resolution", type=int, default=16, help="side of the stored heat maps (default 16)")
    p.add_argument("--adapter", default=None, help="LoRA folder written by truthtrace diffuse-train")
    p.add_argument("--dtype", choices=list(MODEL_DTYPES), default="auto", help="auto: float16 on CUDA, else float32")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    p.add_argument("--storage-dtype", choices=list(STORAGE_DTYPES), default="float16", help="of the stored maps")
    m = p.add_argument_group("memory")
    m.add_argument("--attention-slicing", default=None, help="auto, max or a slice size")
    m.add_argument("--vae-slicing", action="store_true", help="decode the batch one image at a time")
    m.add_argument("--vae-tiling", action="store_true", help="encode/decode large images in tiles")
    m.add_argument("--xformers", action="store_true", help="xFormers attention where installed")
    m.add_argument("--offload", choices=list(OFFLOADS), default="none", help="CPU offload via accelerate")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store instead of resuming")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_diffuse)


def _add_train(sub) -> None:
    p = sub.add_parser("diffuse-train", help="LoRA fine-tuning of a diffusion UNet on image/caption pairs",
                       description="Fine-tune LoRA adapters on the UNet's attention projections from a folder of "
                       "NAME.png + NAME.txt pairs (or metadata.jsonl); checkpoints, EMA, TensorBoard; --resume.")
    p.add_argument("--model", required=True, help="pipeline directory or hub id")
    p.add_argument("--data", required=True, help="folder of image/caption pairs")
    p.add_argument("--out", required=True, help="output folder: adapter/, checkpoints/, logs/, train.json")
    p.add_argument("--rank", type=int, default=4, help="LoRA rank (default 4)")
    p.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    p.add_argument("--size", type=int, default=None, help="training image side in pixels (default: the model's)")
    p.add_argument("--epochs", type=int, default=10, help="epochs (default 10)")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default 1e-4)")
    p.add_argument("--batch-size", type=int, default=1, help="images per step (default 1)")
    p.add_argument("--warmup-frac", type=float, default=0.05, help="warmup share of the steps (default 0.05)")
    p.add_argument("--clip-norm", type=float, default=1.0, help="gradient norm limit (default 1.0)")
    p.add_argument("--ema-decay", type=float, default=None, help="EMA of the LoRA weights, e.g. 0.999")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--tracking", choices=list(TRACKERS), default="tensorboard", help="default: tensorboard")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_diffuse_train)


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    _add_diffuse(sub)
    _add_train(sub)
