"""Where a number comes from: the machine (CPU model, cores, bf16 units, CUDA) and library versions.

Every report truthtrace writes (``report.json``, ``compare.json``, ``compression.json``) records both,
so a figure can be traced to the hardware and the versions that produced it.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import torch

try:
    import resource  # POSIX only
except ImportError:  # pragma: no cover - Windows
    resource = None

BF16_UNITS = frozenset({"avx512_bf16", "amx_bf16"})  # cpuinfo flags of CPUs with bf16 matrix units
DISTRIBUTIONS = ("truthtrace", "torch", "transformers", "tokenizers", "safetensors", "numpy", "scikit-learn",
                 "torch_geometric", "zstandard")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else every CPU)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cpuinfo() -> str | None:
    """The text of /proc/cpuinfo, or None where there is none."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


def cpu_flags() -> tuple[str, set[str]]:
    """``(cpu model name, set of cpuinfo flags)``; the flags are empty where /proc/cpuinfo is missing."""
    name, flags, text = platform.processor() or "unknown", set(), _cpuinfo()
    if text is None:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and name in ("unknown", "", platform.machine()):
            name = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return name, flags


def machine_info() -> dict:
    """The machine the numbers come from: CPU model, cores, torch threads, bf16 support, CUDA."""
    name, flags = cpu_flags()
    return {"cpu": name, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "bf16_units": sorted(flags & BF16_UNITS), "bf16_supported": bool(flags & BF16_UNITS),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__, "python": platform.python_version()}


def cpu_has_bf16() -> bool | None:
    """True when the CPU has bf16 matrix units (avx512_bf16 or amx_bf16), None when it cannot tell."""
    text = _cpuinfo()
    return None if text is None else any(unit in text for unit in BF16_UNITS)


def versions(distributions: tuple[str, ...] = DISTRIBUTIONS) -> dict[str, str | None]:
    """Installed version of each distribution (None when it is not installed)."""
    out: dict[str, str | None] = {}
    for dist in distributions:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def peak_memory_mb() -> float:
    """Peak resident memory (RSS) of this process so far, in MB (0.0 where the OS cannot tell).

    ``getrusage``'s ``ru_maxrss`` (KB on Linux, bytes on macOS); without it (Windows) psutil's peak working
    set or current RSS when psutil is installed.
    """
    if resource is not None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
    try:
        import psutil
    except ImportError:
        return 0.0
    info = psutil.Process().memory_info()
    return getattr(info, "peak_wset", info.rss) / 2**20


def peak_memory() -> dict[str, float]:
    """``{"peak_memory_mb": RSS}``, plus ``"peak_cuda_memory_mb"`` (``torch.cuda.max_memory_allocated``) on a GPU."""
    out = {"peak_memory_mb": round(peak_memory_mb(), 1)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_cuda_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def peak_memory_line() -> str:
    """The end-of-run summary line: ``peak memory 812 MB`` (and the CUDA peak on a GPU)."""
    mem = peak_memory()
    cuda = f", CUDA {mem['peak_cuda_memory_mb']:.0f} MB allocated" if "peak_cuda_memory_mb" in mem else ""
    return f"peak memory {mem['peak_memory_mb']:.0f} MB RSS{cuda}"
