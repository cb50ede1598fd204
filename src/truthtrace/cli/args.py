"""Argument helpers shared by the subcommands: number lists, the model/capture options, question sources."""

from __future__ import annotations

import argparse
import json

from truthtrace.data import load_bundled, load_questions
from truthtrace.data.hub import is_hub_spec, load_hub_questions
from truthtrace.dtypes import COMPUTE_DTYPES, STORAGE_DTYPES
from truthtrace.features.config import PreprocessConfig
from truthtrace.models import DEFAULT_MODEL
from truthtrace.models.adapters import with_adapter
from truthtrace.models.attention import ATTN_BACKENDS
from truthtrace.models.placement import DEVICE_MAPS, LOAD_IN, Placement, parse_max_memory
from truthtrace.traces.capture import CAPTURE_MODES, DEFAULT_TEMPLATE
from truthtrace.traces.extract import ExtractConfig
from truthtrace.training.compile import COMPILE_MODES


def int_list(text: str | None) -> list[int] | None:
    """Parse ``"0,4,8"`` or ``"0-30"`` into a list of ints."""
    if text is None:
        return None
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return out


def add_placement_args(g) -> None:
    """``--adapter``, ``--device-map``, ``--max-memory``, ``--offload-folder``, ``--load-in`` on group ``g``."""
    g.add_argument("--adapter", default=None, metavar="DIR",
                   help="apply this peft (LoRA) adapter folder to --model (same as --model MODEL+DIR; extra peft)")
    g.add_argument("--device-map", default=None, choices=DEVICE_MAPS,
                   help="accelerate big-model placement over GPUs, CPU RAM and --offload-folder on disk")
    g.add_argument("--max-memory", default=None, help="per-device limits for --device-map, e.g. 0=20GiB,cpu=64GiB")
    g.add_argument("--offload-folder", default=None, help="where --device-map offloads layers that fit nowhere")
    g.add_argument("--load-in", default=None, choices=LOAD_IN, help="bitsandbytes quantization on load (CUDA only)")


def placement_from(args) -> Placement | None:
    """The :class:`Placement` of ``--device-map``/``--load-in``/``--max-memory``/``--offload-folder``; None if unset."""
    if args.device_map is None and args.load_in is None:
        if args.max_memory or args.offload_folder:
            raise ValueError("--max-memory/--offload-folder apply with --device-map")
        return None
    return Placement(device_map=args.device_map, load_in=args.load_in, max_memory=parse_max_memory(args.max_memory),
                     offload_folder=args.offload_folder)


def model_spec(args) -> str | None:
    """``--model`` with ``--adapter`` applied (``MODEL+DIR``)."""
    if args.adapter is not None and not args.model:
        raise ValueError("--adapter needs --model (the base model the adapter was trained on)")
    return with_adapter(args.model, args.adapter) if args.model else args.model


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The model, generation, capture and storage options of ``extract`` and ``run``."""
    g = p.add_argument_group("model and generation")
    g.add_argument("--model", default=DEFAULT_MODEL, help="embedded name, HF directory, .gguf file or hub id "
                                                          "(MODEL+ADAPTER_DIR applies a peft adapter)")
    add_placement_args(g)
    g.add_argument("--model-dtype", default="float32", choices=COMPUTE_DTYPES,
                   help="compute dtype (bfloat16 is ~2.5x faster on CPUs with bf16 units)")
    g.add_argument("--device", default="auto")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--max-new-tokens", type=int, default=24)
    g.add_argument("--max-prompt-tokens", type=int, default=None,
                   help="skip questions whose prompt is longer (always: longer than the model's context "
                        "minus --max-new-tokens); skipped ids are listed in the summary")
    g.add_argument("--template", default=None, help="prompt template containing {question}")
    g.add_argument("--system-prompt", default=None)
    g.add_argument("--no-chat-template", action="store_true")
    g.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=0)
    s = p.add_argument_group("what to capture and how to store it")
    s.add_argument("--layers", default=None, help="hidden-state layers to keep, e.g. '0-30' or '8,16,24'")
    s.add_argument("--attn-layers", default=None, help="attention layers to keep")
    s.add_argument("--no-attentions", action="store_true")
    s.add_argument("--attn-backend", default="auto", choices=ATTN_BACKENDS,
                   help="attention kernels: eager (every layer returns maps), sdpa (none; needs --no-attentions), "
                        "hybrid (eager for --attn-layers, SDPA for the rest); auto: hybrid when maps are kept for "
                        "some layers, eager for all, sdpa for none. Recorded in the store; a resume must match")
    s.add_argument("--keep", default="all", help="token positions to keep: all, answer, last:K")
    s.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES,
                   help="torch.compile the model's forward (default, reduce-overhead, max-autotune; eager with a "
                        "warning where it fails; see BENCHMARKS.md for when it pays); write --compile=MODE")
    s.add_argument("--capture", default="forward", choices=CAPTURE_MODES,
                   help="forward: generate, then one exact forward pass; generate: from the generation steps (faster)")
    s.add_argument("--storage-dtype", default="float16", choices=STORAGE_DTYPES)
    s.add_argument("--overwrite", action="store_true", help="delete an existing store instead of resuming")


def extract_config(args):
    """The :class:`ExtractConfig` of parsed ``args`` (options from :func:`add_model_args`)."""
    return ExtractConfig(
        model=model_spec(args), model_dtype=args.model_dtype, device=args.device, threads=args.threads,
        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, max_prompt_tokens=args.max_prompt_tokens,
        prompt_template=args.template or DEFAULT_TEMPLATE,
        system_prompt=args.system_prompt, use_chat_template=not args.no_chat_template, do_sample=args.sample,
        temperature=args.temperature, top_p=args.top_p, seed=args.seed, hidden_layers=int_list(args.layers),
        attn_layers=int_list(args.attn_layers), attentions=not args.no_attentions, keep=args.keep,
        capture=args.capture, attn_backend=args.attn_backend, compile=getattr(args, "compile", None),
        storage_dtype=args.storage_dtype, overwrite=args.overwrite)


def add_feature_args(p: argparse.ArgumentParser) -> None:
    """The graph, PCA and split options of ``preprocess`` and ``extract --features``."""
    g = p.add_argument_group("graphs")
    g.add_argument("--no-graphs", action="store_true", help="skip the per-layer token graphs")
    g.add_argument("--graph-layers", default=None, help="attention layers, e.g. '0-29' or '8,16' (default: all)")
    g.add_argument("--max-nodes", type=int, default=64, help="graph nodes: the last N tokens")
    g.add_argument("--top-k", type=int, default=4, help="edges: each token's k strongest sources")
    g.add_argument("--threshold", type=float, default=None, help="edges: every source above this head-mean weight")
    g.add_argument("--node-dim", type=int, default=64, help="PCA components of the node features")
    g.add_argument("--no-pca", action="store_true", help="keep the full hidden states as node features")
    g.add_argument("--pca-from", default=None, metavar="PCA",
                   help="reuse the PCA of another feature store (its dir or its pca.safetensors) instead of fitting "
                        "one: for testing a detector on new traces (cross-dataset evaluation)")
    s = p.add_argument_group("split")
    s.add_argument("--split-seed", type=int, default=0)
    s.add_argument("--fractions", default="0.7,0.15,0.15", help="train,val,test shares of question ids")


def fractions_arg(text: str) -> tuple[float, ...]:
    """Parse ``"0.7,0.15,0.15"``."""
    try:
        return tuple(float(f) for f in text.split(","))
    except ValueError:
        raise ValueError(f"--fractions must be three comma-separated numbers, got {text!r}") from None


def feature_config(args) -> PreprocessConfig:
    """The :class:`PreprocessConfig` of parsed ``args`` (options from :func:`add_feature_args`, ``--overwrite``,
    ``--threads``)."""
    return PreprocessConfig(
        graphs=not args.no_graphs, graph_layers=int_list(args.graph_layers), max_nodes=args.max_nodes,
        top_k=None if args.threshold is not None else args.top_k, threshold=args.threshold, pca=not args.no_pca,
        node_dim=args.node_dim, split_seed=args.split_seed, fractions=fractions_arg(args.fractions),
        overwrite=args.overwrite, threads=args.threads, pca_from=args.pca_from)


def add_question_args(p: argparse.ArgumentParser) -> None:
    """``--questions``, ``--format``, ``--n``: where questions come from."""
    p.add_argument("--questions", default=None,
                   help="'bundled' (default), a JSONL/CSV/JSON/TriviaQA/NQ/SQuAD/TruthfulQA file, or "
                        "hf:DATASET[:CONFIG][:SPLIT] (a Hub id or a local dataset folder; extra hf)")
    p.add_argument("--format", default="auto", help="file layout (auto-detected by default)")
    p.add_argument("--streaming", action="store_true", help="hf: datasets: read rows lazily (stops after --n)")
    p.add_argument("--n", "--num-questions", dest="n", type=int, default=None,
                   help="number of questions (stratified by category); under torchrun write --num-questions "
                        "(torchrun's own parser takes --n for an abbreviation of its options)")


def questions_from(args, require_answers: bool = True):
    """The questions ``--questions``/``--format``/``--n`` name: the bundled set or a user file
    (``require_answers=False``: records without gold answers are accepted)."""
    if args.questions in (None, "bundled"):
        return load_bundled(n=args.n, seed=args.seed)
    if is_hub_spec(args.questions):
        return load_hub_questions(args.questions, fmt=args.format, limit=args.n,
                                  streaming=getattr(args, "streaming", False), require_answers=require_answers)
    return load_questions(args.questions, fmt=args.format, limit=args.n, require_answers=require_answers)


def detector_args(text: str | None) -> dict:
    """Parse ``--detector-args '{"probe": {"C": 0.1}}'`` (JSON)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--detector-args must be JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("--detector-args must be a JSON object of {detector: {arg: value}}")
    return value


def add_sample_args(p: argparse.ArgumentParser) -> None:
    """``--samples K``, ``--sample-temperature``, ``--sample-top-p`` of ``run`` and ``extract``."""
    g = p.add_argument_group("sampled answers (semantic_entropy, eigenscore, selfcheck_ngram, p_true, sep)")
    g.add_argument("--samples", type=int, default=0, metavar="K",
                   help="also sample K answers per question for the sampling baselines (0: none; 10 as in the "
                        "papers; about K times the generation cost)")
    g.add_argument("--sample-temperature", type=float, default=1.0)
    g.add_argument("--sample-top-p", type=float, default=1.0)
