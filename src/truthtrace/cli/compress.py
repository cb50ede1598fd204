"""CLI subcommands: compress."""

from __future__ import annotations

import json

from truthtrace.compress import CompressConfig, compress
from truthtrace.dtypes import CAST_DTYPES
from truthtrace.models import DEFAULT_MODEL


def _fmt_mb(n: int | None) -> str:
    return "?" if not n else f"{n / 1e6:.1f} MB"


def cmd_compress(args) -> None:
    """Run ``truthtrace.compress.compress`` from parsed arguments and print a short summary."""
    cfg = CompressConfig(model=args.model, out=args.out, dtype=args.dtype, prune=args.prune,
                         prune_scope=args.prune_scope, zero_below=args.zero_below, quant=args.quant,
                         quant_embeddings=args.quant_embeddings, backend=args.backend, bnb=args.bnb,
                         sparse_format=args.sparse_format, preset=args.preset, force=args.force,
                         verify_tol=args.verify_tol, device=args.device, merge_adapter=args.merge_adapter)
    s = compress(cfg)
    if args.json:
        print(json.dumps({k: v for k, v in s.items() if k != "storage"}, indent=2, default=str))
        return
    print(format_summary(s))


def _step_text(step: dict) -> str:
    arg = next((step[k] for k in ("quant", "dtype", "amount", "threshold") if step.get(k) is not None), None)
    return step["op"] if arg is None else f"{step['op']}({arg})"


def _sparsity_text(sp: dict) -> str:
    after = sp.get("after_reload")
    return (f"sparsity of linear weights: {sp['before_quantization']['global']:.1%} before quantization"
            + (f", {after['global']:.1%} after reload" if after else ""))


def format_summary(s: dict) -> str:
    """A few lines describing a ``compress`` summary: steps, bytes on disk, sparsity, reload check."""
    b, v = s["bytes_on_disk"], s["verification"]
    ratio = b["ratio_vs_source"]
    agree = v["vs_original"].get("top1_agreement")
    lines = [
        "steps: " + (", ".join(_step_text(st) for st in s["steps"]) or "none (re-save)"),
        f"weights: {_fmt_mb(b['weights'])} on disk ({s['storage']['container']}), "
        f"source {_fmt_mb(s['source']['bytes'])}" + (f", {ratio:.2f}x smaller" if ratio else ""),
        _sparsity_text(s["sparsity"]),
        f"reload check: passed (max |logit diff| {v['max_abs_diff']:.3g}, tolerance {v['tolerance']:g})"
        + (f"; top-1 agreement with the original on the check batch: {agree:.3f}" if agree is not None else ""),
        "from_pretrained: "
        + ("yes" if s["loadable_with_from_pretrained"] else "no (use truthtrace.compress.load_any)"),
        f"-> {s['out']} ({s['seconds']} s)",
    ]
    return "\n".join(lines)


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    p = sub.add_parser("compress", help="shrink a model (cast, prune, quantize), save, reload and verify it")
    p.add_argument("--model", default=DEFAULT_MODEL, help="embedded name, HF directory (causal LM or encoder), "
                   ".gguf file or hub id")
    p.add_argument("--out", required=True, help="output directory (refused if it exists, unless --force)")
    p.add_argument("--preset", choices=["small", "fast"], default=None,
                   help="small: int8 everywhere incl. embeddings (our format); fast: bf16 cast")
    p.add_argument("--dtype", choices=CAST_DTYPES, default=None, help="cast the weights")
    p.add_argument("--prune", type=float, default=0.0, help="L1 unstructured pruning amount of linear layers (0..0.9)")
    p.add_argument("--prune-scope", choices=["global", "layer"], default="global")
    p.add_argument("--zero-below", type=float, default=None, help="zero linear weights with |w| below this")
    p.add_argument("--quant", choices=["int8-weight", "int8-dynamic", "int4-weight"], default=None)
    p.add_argument("--quant-embeddings", action="store_true", help="also int8 the embedding table (our format)")
    p.add_argument("--backend", choices=["torchao", "quanto", "bnb", "truthtrace"], default=None,
                   help="quantization backend (default: torchao; truthtrace = our int8 safetensors)")
    p.add_argument("--bnb", choices=["8bit", "nf4"], default=None, help="bitsandbytes mode (CUDA only)")
    p.add_argument("--sparse-format", choices=["dense", "zstd"], default=None,
                   help="weights file format (default: zstd when pruning/zeroing)")
    p.add_argument("--verify-tol", type=float, default=None, help="reload tolerance (default: per method)")
    p.add_argument("--device", default="auto")
    p.add_argument("--merge-adapter", default=None, metavar="DIR",
                   help="fold this peft (LoRA) adapter folder into the weights first (extra peft)")
    p.add_argument("--force", action="store_true", help="replace an existing output directory that compress wrote "
                   "(refused, deleting nothing, if it holds other files)")
    p.add_argument("--json", action="store_true", help="print the full compression.json summary")
    p.set_defaults(func=cmd_compress)
