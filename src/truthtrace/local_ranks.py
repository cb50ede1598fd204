"""A stage on several processes of this machine, without a launcher: ``N`` workers
(``python -m truthtrace <argv>``) are ranks ``0..N-1`` of one gloo group, and this process waits for them.

``truthtrace run`` uses it for the extract stage (``--procs``): a model as small as the embedded one
keeps about one core busy in one process, however many threads it has (measured: 2 ranks of one
thread extract 1.35x (AMD EPYC) to 2.0x (Intel Xeon) faster than one process of two threads,
``docs/SCALE.md``). The workers find each
other through the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``),
so the sharded stages (:mod:`truthtrace.features.sharded`) run unchanged, and this process's own
environment and torch state are never touched. Rank 0 writes to this process's terminal (its progress
bar); the others to log files. When a worker fails, the others are stopped and the error names the rank,
its exit code and the end of its output.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

import torch

from truthtrace.machine import usable_cpus


def threads_per_proc(procs: int) -> int:
    """Torch threads for each of ``procs`` processes sharing this machine's usable CPUs (at least 1)."""
    return max(1, usable_cpus() // procs)


def auto_procs(device: str = "auto") -> int:
    """``--procs auto``: 2 processes on a CPU-only machine with 2 or more usable CPUs, else 1 (one GPU is one
    process: several would share it)."""
    if device not in ("auto", "cpu") or (device == "auto" and torch.cuda.is_available()):
        return 1
    return 2 if usable_cpus() >= 2 else 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for the group's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: str, n: int = 3000) -> str:
    """The last ``n`` bytes of a worker's log, as text."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - n))
        return f.read().decode("utf-8", "replace")


def run_local_ranks(procs: int, worker_argv: list[str], threads: int | None = None, poll_s: float = 0.2) -> None:
    """Run ``python -m truthtrace *worker_argv`` as ranks ``0..procs-1`` of one group on this machine; return when
    all succeeded.

    Args:
        procs: processes (>= 2).
        worker_argv: the workers' truthtrace command line; each joins the group from its environment.
        threads: torch threads of every rank (default: usable CPUs // procs, at least 1).
    Raises:
        ValueError: for ``procs < 2``. RuntimeError: naming the first rank that failed, its exit code and the
            end of its output (the other ranks are killed first).
    """
    if procs < 2:
        raise ValueError(f"run_local_ranks needs procs >= 2, got {procs}")
    threads = threads or threads_per_proc(procs)
    group = {"WORLD_SIZE": str(procs), "LOCAL_WORLD_SIZE": str(procs), "MASTER_ADDR": "127.0.0.1",
             "MASTER_PORT": str(free_port()), "OMP_NUM_THREADS": str(threads)}
    workers, logs = [], {}
    try:
        for rank in range(procs):
            out = None
            if rank:
                handle = tempfile.NamedTemporaryFile("wb", prefix=f"truthtrace-rank{rank}-", suffix=".log",
                                                     delete=False)
                logs[rank], out = handle.name, handle
            env = {**os.environ, **group, "RANK": str(rank), "LOCAL_RANK": str(rank)}
            workers.append(subprocess.Popen([sys.executable, "-m", "truthtrace", *worker_argv], env=env, stdout=out,
                                            stderr=subprocess.STDOUT if out else None))
            if out is not None:
                out.close()
        _wait(workers, logs, poll_s)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs.values():
            os.unlink(log)


def _wait(workers: list, logs: dict, poll_s: float) -> None:
    """Until every worker ended; RuntimeError as soon as one failed."""
    while True:
        codes = [proc.poll() for proc in workers]
        failed = [(rank, code) for rank, code in enumerate(codes) if code]
        if failed:
            rank, code = failed[0]
            tail = f"; its output ends:\n{_tail(logs[rank])}" if rank in logs else " (its output is above)"
            raise RuntimeError(f"rank {rank} of {len(workers)} failed (exit code {code}){tail}")
        if all(code == 0 for code in codes):
            return
        time.sleep(poll_s)
