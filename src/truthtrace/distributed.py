"""Several processes on one job: rank and world size, deterministic id slices, barriers, DDP helpers.

truthtrace runs under ``torchrun`` (``torch.distributed``; gloo on CPU, NCCL on GPU) — no scheduler
of its own. torchrun sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``;
:func:`init` joins the process group from them. ``accelerate launch --multi_gpu`` runs torchrun's
launcher, so it sets the same variables (also on a CPU-only machine); accelerate's MPI route
(``--mpirun_hostfile``) leaves ``PMI_RANK``/``OMPI_COMM_WORLD_RANK`` instead, read as accelerate reads
them. ``accelerate launch --cpu --num_processes N`` without mpirun starts ONE process (a warning says so).
accelerate's ``PartialState()`` is not used: on a CPU-only machine it reports one process under
torchrun (unless ``cpu=True``), so every rank would do all the work.

    torchrun --nproc-per-node 4 -m truthtrace extract --out runs/x ...   # rank k: runs/x/rank-k/, merged
    torchrun --nproc-per-node 2 -m truthtrace train ...                  # DDP over the torch detectors
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")
RANK_DIR = "rank-{rank}"
TIMEOUT = timedelta(hours=12)  # a barrier waits for the slowest rank's whole extraction


# torchrun's names first, then MPI's (accelerate's --mpirun_hostfile route), in accelerate's own order
RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
WORLD_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
LOCAL_RANK_VARS = ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK")


def _env_int(names: Sequence[str], default: int) -> tuple[str | None, int]:
    """The first of ``names`` set in the environment and its integer value (``(None, default)`` if none is set)."""
    for name in names:
        if os.environ.get(name, "").strip():
            try:
                return name, int(os.environ[name])
            except ValueError:
                raise ValueError(f"{name}={os.environ[name]!r} is not an integer; launch with torchrun") from None
    return None, default


def env_world() -> tuple[int, int]:
    """``(rank, world_size)`` from the process group when it is up, else from the launcher's environment (0, 1).

    Reads torchrun's ``RANK``/``WORLD_SIZE`` (also set by ``accelerate launch --multi_gpu``), else MPI's
    (:data:`RANK_VARS`, :data:`WORLD_VARS`).

    Raises:
        ValueError: a variable that is not an integer, or a rank outside ``[0, world)``.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    (rank_var, rank), (world_var, world) = _env_int(RANK_VARS, 0), _env_int(WORLD_VARS, 1)
    if not 0 <= rank < world:
        raise ValueError(f"{rank_var}={rank} is not in [0, {world_var or 'WORLD_SIZE'}={world})")
    if world == 1 and rank_var is None and _accelerate_cpu_without_ranks():
        warnings.warn("accelerate launch --cpu started ONE process: without mpirun (--mpirun_hostfile) accelerate "
                      "does not start several CPU processes. For N processes on one machine use accelerate launch "
                      "--multi_gpu --num_processes N (it runs torchrun's launcher, also without a GPU) or torchrun "
                      "--nproc-per-node N", stacklevel=2)
    return rank, world


def _accelerate_cpu_without_ranks() -> bool:
    """True under ``accelerate launch --cpu --num_processes N>1`` (one process: accelerate sets ``MASTER_ADDR`` for N>1
    but starts a single process unless mpirun does)."""
    return os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("true", "1") and bool(os.environ.get("MASTER_ADDR"))


def launched() -> bool:
    """True when this process is one of several (``WORLD_SIZE`` > 1)."""
    return env_world()[1] > 1


def init(backend: str | None = None) -> tuple[int, int]:
    """Join the launcher's process group (once); ``backend`` None: NCCL with CUDA, else gloo.

    Returns:
        ``(rank, world_size)``; ``(0, 1)`` without torchrun (nothing is initialised).
    """
    rank, world = env_world()
    if world > 1 and not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(_env_int(LOCAL_RANK_VARS, 0)[1])
        # rank and world passed explicitly: under mpirun the env:// rendezvous finds no RANK/WORLD_SIZE
        dist.init_process_group(backend, timeout=TIMEOUT, rank=rank, world_size=world)
    return rank, world


def active() -> bool:
    """True when a process group of more than one rank is up (collectives will be used)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main() -> bool:
    """True on rank 0 (or in a single process): the rank that writes shared outputs."""
    return env_world()[0] == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if active():
        dist.barrier()


def shutdown() -> None:
    """Leave the process group, if one is up.

    Once per launch: a group destroyed and made again in the same process reuses its rendezvous keys, and a
    rank that arrives early reads the other's stale gloo address and waits forever (seen under torchrun).
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def slice_for_rank(items: Sequence[T], rank: int, world: int) -> list[T]:
    """Rank ``rank``'s deterministic, disjoint share of ``items``: every ``world``-th one from ``rank``.

    Round-robin keeps the shares within one item of each other and spreads categories (which
    question files list together) evenly over the ranks. Together the shares are ``items``.

    Raises:
        ValueError: ``rank`` outside ``[0, world)``.
    """
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in [0, world={world}), got {rank}")
    return list(items)[rank::world]


def rank_dir(out: str | Path, rank: int) -> Path:
    """``out/rank-<rank>``: the store one rank writes."""
    return Path(out) / RANK_DIR.format(rank=rank)


def all_equal(text: str) -> bool:
    """True when every rank passes the same ``text`` (its sha256 compared through an all-gather; no pickling)."""
    if not active():
        return True
    digest = torch.tensor(list(hashlib.sha256(text.encode()).digest()[:8]), dtype=torch.int64)  # (8,)
    gathered = [torch.zeros_like(digest) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, digest)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def all_sum(values: Sequence[float]) -> list[float]:
    """Element-wise sum of ``values`` over the ranks (``values`` itself in a single process)."""
    if not active():
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


@contextmanager
def rank_scratch(out: str | Path) -> Iterator[Path]:
    """Work in ``out``'s parent folder (rank 0) or in a private copy of it (other ranks); yields ``out``'s name.

    Ranks > 0 start from a copy of ``out`` (deleted afterwards) and write only into it: only rank 0
    writes ``out``. Every rank sees the same relative path, so paths recorded from it (a detector's
    log and checkpoint folders) compare equal and resuming decides the same on every rank.
    The working directory is changed inside the block: pass other paths absolute.
    """
    rank, _ = env_world()
    out = Path(out).resolve()
    here = Path.cwd()
    parent = out.parent if rank == 0 else out.parent / f".{out.name}.rank-{rank}.scratch"
    if rank == 0:
        barrier()  # the others have copied ``out`` before rank 0 changes it
    else:
        shutil.rmtree(parent, ignore_errors=True)
        parent.mkdir(parents=True)
        if out.is_dir():
            shutil.copytree(out, parent / out.name)
        barrier()
    os.chdir(parent)
    try:
        yield Path(out.name)
    finally:
        os.chdir(here)
        if rank != 0:
            shutil.rmtree(parent, ignore_errors=True)


def on_ranks(fn: Callable[[Path], T], out: str | Path) -> T | None:
    """Run ``fn(folder)`` on every rank of a torchrun job: rank 0 on ``out``, the others on a private copy.

    Used by ``torchrun ... truthtrace train``: every rank makes the same fits (and resume decisions) and takes
    part in DDP's collectives, but only rank 0 writes ``out``. ``folder`` is relative (see :func:`rank_scratch`).

    Returns:
        ``fn``'s result on rank 0, None on the others.
    """
    init()
    try:
        with rank_scratch(out) as folder:
            result = fn(folder)
        barrier()
    finally:
        shutdown()
    return result if is_main() else None
