"""What each rank runs in tests/unit/test_distributed.py (launched by torch.distributed.run, gloo, CPU).

    python -m torch.distributed.run --nproc-per-node 2 tests/unit/dist_worker.py ddp OUT.json
    python -m torch.distributed.run --nproc-per-node 2 tests/unit/dist_worker.py jobs JOBS.json

``jobs`` runs several jobs in one launch (every rank imports torch and transformers once, not once per job):
JOBS.json is a list of argument lists, each one of ``["ddp", OUT]``, ``["train", OUT, FEATS, LABELS, TRAIN_OUT]``
or ``["cli", *TRUTHTRACE_ARGS]`` (``truthtrace.cli.main``, as ``python -m truthtrace`` runs it); job i's stdout
goes to ``JOBS.json.i.rank<r>.out``. The jobs share one process group (their own ``init`` finds it up, their
``shutdown`` is skipped until the last job is done).
"""

from __future__ import annotations

import contextlib
import json
import sys

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from truthtrace import distributed, metrics
from truthtrace.training import LoopConfig, ddp, fit_module, predict


def synthetic(n: int, seed: int, batch: int = 16) -> list[dict]:
    """Batches of x (B, 8) with a linear signal plus noise; label = 1 when the signal wins (known AUROC < 1)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = ((x[:, 0] + 0.5 * x[:, 1] + 0.7 * torch.randn(n, generator=g)) > 0).long()
    return [{"x": x[i:i + batch], "label": y[i:i + batch]} for i in range(0, n, batch)]


def net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))


def forward(module, batch, device):
    return module(batch["x"].to(device)).squeeze(-1)


def fit_and_test(checkpoint_dir: str | None = None) -> dict:
    """Train on 480 samples (30 batches), early-stop on 160, score 320 held out: ``{"test_auroc", "params"}``."""
    train, val, test = synthetic(480, 1), synthetic(160, 2), synthetic(320, 3)
    model = net()
    config = LoopConfig(lr=1e-2, max_epochs=12, patience=12, tracking="none", quiet=True, seed=0,
                        checkpoint_dir=checkpoint_dir, resume=checkpoint_dir is not None)
    result = fit_module(model, forward, train, val, config)
    scores, y = predict(model, forward, test, "cpu")
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return {"test_auroc": float(metrics.auroc(scores, y)), "best_epoch": result.best_epoch,
            "param_sum": float(flat.sum()), "param_norm": float(flat.norm())}


def gradient_check() -> dict:
    """One DDP backward on a different batch per rank: every rank's gradient equals the mean of the ranks'."""
    rank, world = distributed.env_world()
    batches = synthetic(64, 5)
    model = net()
    wrapped = ddp.wrap(model)
    loss = nn.functional.binary_cross_entropy_with_logits(forward(wrapped, batches[rank], "cpu"),
                                                          batches[rank]["label"].float())
    loss.backward()
    grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])  # (P,)
    gathered = [torch.zeros_like(grad) for _ in range(world)]
    dist.all_gather(gathered, grad)
    expected = torch.zeros_like(grad)  # the mean of each rank's own gradient, computed here without DDP
    for r in range(world):
        single = net()
        nn.functional.binary_cross_entropy_with_logits(forward(single, batches[r], "cpu"),
                                                       batches[r]["label"].float()).backward()
        expected += torch.cat([p.grad.reshape(-1) for p in single.parameters()]) / world
    return {"ranks_equal": all(torch.equal(g, gathered[0]) for g in gathered),
            "max_diff_vs_mean": float((grad - expected).abs().max())}


def main(mode: str, out: str, *extra: str) -> None:
    """Run one job (see the module docstring); ``jobs`` runs the ones listed in the file ``out``."""
    if mode == "jobs":  # job i's stdout (a command's JSON summary) goes to OUT.i.rank<r>.out
        rank = distributed.env_world()[0]
        with open(out) as f:
            jobs = json.load(f)
        # one process group for all jobs: a group destroyed and made again in the same launch reuses its store
        # keys, and a rank that comes early reads the other's stale gloo address and waits forever
        distributed.init("gloo")
        leave, distributed.shutdown = distributed.shutdown, lambda: None
        for i, job in enumerate(jobs):
            np.random.seed(0)  # each job starts as a fresh process would
            with open(f"{out}.{i}.rank{rank}.out", "w") as f, contextlib.redirect_stdout(f):
                main(*job)
            distributed.barrier()
        leave()
        return
    if mode == "cli":
        from truthtrace.cli import main as truthtrace_main

        code = truthtrace_main([out, *extra])
        if code:
            raise SystemExit(code)  # a failing rank exits, so torchrun stops the others
        return
    rank, world = distributed.init("gloo") if mode != "train" else distributed.env_world()
    shares = distributed.slice_for_rank([f"q{i}" for i in range(11)], rank, world)
    doc = {"rank": rank, "world": world, "shares": shares}
    if mode == "ddp":
        doc.update(gradient_check())
        doc.update(fit_and_test(extra[0] if extra else None))
    if mode == "train":  # truthtrace train on every rank: DDP for the torch detectors, only rank 0 writes
        from truthtrace.detectors.train import TrainConfig, train

        feats, labels, train_out = extra[:3]
        config = TrainConfig(detectors=("probe", "mlp"), seeds=(0,), batch_size=16, num_workers=0)
        summary = distributed.on_ranks(lambda folder: train(feats, labels, folder, config, progress=False), train_out)
        doc["summary"] = summary
        out_file = f"{out}.rank{rank}"
        with open(out_file, "w") as f:
            json.dump(doc, f)
        return
    with open(f"{out}.rank{rank}", "w") as f:
        json.dump(doc, f)
    distributed.barrier()
    distributed.shutdown()


if __name__ == "__main__":
    np.random.seed(0)
    main(*sys.argv[1:])
