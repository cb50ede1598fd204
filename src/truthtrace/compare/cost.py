"""What a model costs: bytes on disk, parameters and sparsity, peak memory, latency, and the machine.

Peak memory is measured in a fresh subprocess per model (``python -m truthtrace.compare.cost``):
the peak RSS (VmHWM) while loading and running the batch once, minus the RSS
right before loading (after a warm-up that imports the model's code). A process that has loaded
other models would reuse freed memory and under-count. Under ``--device-map`` the subprocess loads
with the same placement (its own offload folder), so the figure is this machine's RAM for the layers
placed on "cpu"; the bytes accelerate put on each device (GPUs, cpu, disk) are reported beside it
(:func:`truthtrace.models.placement.device_bytes`), with each GPU's peak allocation.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from truthtrace.models.load import auto_class, load_any, model_kind
from truthtrace.models.placement import Placement, device_bytes
from truthtrace.models.resolve import resolve_model

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".zst", ".npz")
MEMORY_METHOD = ("fresh subprocess per model: peak RSS (VmHWM, reset after warm-up) over load + one batch, minus "
                 "RSS before load (after importing the model's code and loading its tokenizer); under --device-map "
                 "loaded with the same placement (RAM of the cpu layers, plus the pages of disk-offloaded weights "
                 "read in the batch)")


def _compression_bytes(compression: dict | None) -> int | None:
    """The weights' bytes on disk recorded in ``compression.json`` (``bytes_on_disk.weights``), if any."""
    recorded = (compression or {}).get("bytes_on_disk")
    if isinstance(recorded, dict):
        recorded = recorded.get("weights")
    return int(recorded) if isinstance(recorded, (int, float)) and recorded > 0 else None


def disk_bytes(path: str | Path | None, compression: dict | None = None) -> tuple[int | None, str]:
    """Bytes on disk of a model's weights and where the figure comes from.

    Args:
        path: the model's HF directory (or a single weights file such as a .gguf).
        compression: the parsed ``compression.json``; its recorded figure wins when present.
    Returns:
        ``(bytes or None, source)``, source one of "compression.json", "weight files", "file", "unknown".
    """
    recorded = _compression_bytes(compression)
    if recorded is not None:
        return recorded, "compression.json"
    if path is None:
        return None, "unknown"
    p = Path(path)
    if p.is_file():
        return p.stat().st_size, "file"
    if not p.is_dir():
        return None, "unknown"
    files = [f for f in p.rglob("*") if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES)]
    return (sum(f.stat().st_size for f in files), "weight files") if files else (None, "unknown")


def _dense(weight) -> torch.Tensor | None:
    """A plain tensor view of a (possibly quantized) weight, or None when it cannot be read."""
    if getattr(weight, "is_meta", False):  # offloaded to disk by --device-map: no data in memory
        return None
    if type(weight) in (torch.Tensor, torch.nn.Parameter):
        return weight.detach()
    for name in ("dequantize", "dequantize_weight"):
        fn = getattr(weight, name, None)
        if callable(fn):
            try:
                return fn().detach()
            except Exception:  # noqa: BLE001 - a backend that cannot dequantize here: count it as unknown
                return None
    return None


def param_stats(model) -> dict:
    """Parameter count and the fraction of exact zeros in linear-layer weights (a head tied to the
    embedding table excluded).

    Returns:
        dict: parameters (all), linear_weights (elements counted for sparsity), sparsity
        (None when no linear weight could be read, e.g. an opaque quantized layout), linear_weights_offloaded
        (elements of linear weights offloaded to disk by ``--device-map``: not read, not in the sparsity).
    """
    params = sum(p.numel() for p in model.parameters())
    # an output head tied to the embedding table is the embedding, not a linear layer to prune
    tied = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    zeros = counted = offloaded = 0
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear) or id(module.weight) in tied:
            continue
        w = _dense(module.weight)
        if w is None:
            offloaded += module.weight.numel() if getattr(module.weight, "is_meta", False) else 0
            continue
        zeros += int((w == 0).sum())
        counted += w.numel()
    return {"parameters": int(params), "linear_weights": counted, "sparsity": zeros / counted if counted else None,
            "linear_weights_offloaded": offloaded}


def make_batch(tokenizer, text: str, batch_size: int, seq_len: int) -> dict[str, torch.Tensor]:
    """A fixed batch: ``input_ids`` and ``attention_mask`` ``(batch_size, seq_len)`` cut from ``text``.

    The token stream is repeated if the text is too short, so every model sees a full batch.
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError("the text sample tokenizes to nothing")
    need = batch_size * seq_len
    ids = (ids * (need // len(ids) + 1))[:need]
    input_ids = torch.tensor(ids).view(batch_size, seq_len)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def run_batch(model, batch: dict[str, torch.Tensor], causal: bool) -> None:
    """One forward pass of ``batch`` (no KV cache for causal LMs)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        kwargs = {k: v.to(device) for k, v in batch.items()}
        if causal:
            kwargs["use_cache"] = False
        model(**kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_round_robin(jobs: list, runs: int, warmup: int = 1, causal: bool = True) -> list[dict]:
    """Latency of each ``(model, batch)`` job, interleaved so machine load hits all equally.

    Args:
        jobs: ``(model, batch)`` pairs.
        runs: timed rounds; each round runs every job once, in order.
        warmup: untimed rounds first.
    Returns:
        per job: median_ms, iqr_ms (75th - 25th percentile), runs_ms.
    """
    for _ in range(warmup):
        for model, batch in jobs:
            run_batch(model, batch, causal)
    times: list[list[float]] = [[] for _ in jobs]
    for _ in tqdm(range(runs), desc="latency rounds", unit="round", leave=False):
        for i, (model, batch) in enumerate(jobs):
            t0 = time.perf_counter()
            run_batch(model, batch, causal)
            times[i].append((time.perf_counter() - t0) * 1000)
    out = []
    for ts in times:
        q = statistics.quantiles(ts, n=4, method="inclusive") if len(ts) > 1 else [ts[0]] * 3
        out.append({"median_ms": statistics.median(ts), "iqr_ms": q[2] - q[0], "runs_ms": [round(t, 3) for t in ts]})
    return out


def rss_bytes() -> int:
    """Current resident set size of this process (psutil if present, else /proc/self/statm)."""
    try:
        import psutil
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return psutil.Process().memory_info().rss


def peak_rss_bytes() -> int:
    """Peak RSS of this process image: VmHWM from /proc/self/status, else ``ru_maxrss``.

    ``ru_maxrss`` survives ``exec``, so a child spawned by a big parent reports the parent's size;
    VmHWM belongs to the current address space and does not.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); False where not supported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _warm_up(spec: str) -> None:
    """Import the model's code, load its tokenizer and run a tiny op, so the baseline RSS includes
    what any model of this architecture costs (~150 MB of code and buffers) and the growth measured
    after it is the model's own."""
    from transformers import AutoConfig, AutoTokenizer

    path = resolve_model(spec).path
    config = AutoConfig.from_pretrained(path)
    try:
        auto_class(model_kind(config)[1])._model_mapping[type(config)]  # imports the modeling module
    except (KeyError, AttributeError):
        pass  # an unmapped config: its import is counted with the model
    AutoTokenizer.from_pretrained(path)
    torch.softmax(torch.nn.functional.linear(torch.randn(4, 8), torch.randn(8, 8)), -1)


def _scratch_folder(placement: dict | None) -> Path:
    """A fresh folder for the child's offloaded layers: inside the parent's offload folder when one is given
    (same disk), never the folder itself (the parent may be reading from it)."""
    parent = (placement or {}).get("offload_folder")
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="truthtrace-offload-", dir=parent))


def _child_placement(placement: dict | None, scratch: Path) -> Placement | None:
    """The parent's placement, rebuilt in the child, offloading into ``scratch``."""
    if placement is None:
        return None
    max_memory = placement.get("max_memory")
    if max_memory is not None:  # JSON turned GPU indices into strings
        max_memory = {int(k) if k.isdigit() else k: v for k, v in max_memory.items()}
    return Placement(**{**placement, "max_memory": max_memory, "offload_folder": str(scratch)})


def _gpu_peaks() -> dict[str, int]:
    """Each visible GPU's peak allocated bytes since the last reset (``{}`` without CUDA)."""
    if not torch.cuda.is_available():
        return {}
    return {f"cuda:{i}": int(torch.cuda.max_memory_allocated(i)) for i in range(torch.cuda.device_count())}


def _peak_child(spec: str, dtype: str | None, device: str, text: str, batch_size: int, seq_len: int,
                threads: int, placement: dict | None = None) -> dict:
    """In the child: load ``spec`` (with ``placement``), run the batch once, report the RSS growth."""
    torch.set_num_threads(threads)
    start = rss_bytes()
    _warm_up(spec)
    scratch = _scratch_folder(placement)
    try:
        for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
            torch.cuda.reset_peak_memory_stats(i)
        reset_peak_rss()
        before = rss_bytes()
        loaded = load_any(spec, dtype=dtype, device=device, placement=_child_placement(placement, scratch))
        run_batch(loaded.model, make_batch(loaded.tokenizer, text, batch_size, seq_len), loaded.kind == "causal")
        peak = peak_rss_bytes()
        placed = device_bytes(loaded.model)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"peak_bytes": max(peak - before, 0), "warmup_bytes": before - start, "rss_before_load": before,
            "max_rss": peak, "device_bytes": placed or None, "gpu_peak_bytes": _gpu_peaks() or None}


def peak_memory(spec: str, dtype: str | None, device: str, text: str, batch_size: int, seq_len: int,
                threads: int, timeout: float = 900, placement: Placement | None = None) -> dict:
    """Peak memory of loading ``spec`` and running the batch, measured in a fresh subprocess.

    Args:
        placement: ``--device-map`` (and ``--max-memory``): the subprocess loads the model placed the same way,
            offloading into a folder of its own (inside ``placement.offload_folder`` when given), removed after.

    Returns:
        dict with peak_bytes (None on failure), method, device_bytes (what accelerate put on each device in the
        subprocess; None unplaced), gpu_peak_bytes (per GPU; None without CUDA), and error (the child's last
        stderr line) on failure.
    """
    args = {"spec": spec, "dtype": dtype, "device": device, "text": text, "batch_size": batch_size,
            "seq_len": seq_len, "threads": threads, "placement": None if placement is None else asdict(placement)}
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, "-m", "truthtrace.compare.cost"], input=json.dumps(args),
                          capture_output=True, text=True, timeout=timeout, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"peak_bytes": None, "method": MEMORY_METHOD, "error": err}
    return {**json.loads(lines[-1]), "method": MEMORY_METHOD}


if __name__ == "__main__":
    print(json.dumps(_peak_child(**json.loads(sys.stdin.read()))))
