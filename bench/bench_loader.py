"""Is the feature loader fast enough to keep a detector's training step busy?

    .venv/bin/python bench/bench_loader.py --features runs/full/feats [--labels runs/full/labels.csv]
        [--workers 0,1,2] [--batch-size 64] [--max-batches 20] [--out bench_loader.json]

Measures, over one pass of the train split of a feature store written by
``truthtrace preprocess`` (``FeatureDataset(shuffle=True)`` + ``make_loader``):

  (a) seq+scalars  keys ``seq.*`` and ``scalar.*``: samples/s for 0, 1, 2 workers;
  (b) graphs       ``graphs`` (every graph layer) + ``scalar.lookback``: samples/s likewise;

per epoch (the first parses the shard documents), time to the first batch, peak RSS of
the main process and of the workers (VmHWM), and
the training-step rate of (a) an LSTM over the layers of ``seq.last_answer`` and (b) a GNN
over every graph layer — ``truthtrace.detectors.lstm.LayerLSTM`` and
``truthtrace.detectors.gnn.GraphNet`` when present, else small stand-ins — on batches
held in memory (forward, BCE loss, backward, Adam step), so the two rates compare directly.
It also prints the load average, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn

from truthtrace.features import SCALAR_KEYS, SEQ_KEYS
from truthtrace.features.dataset import FeatureDataset, make_loader

KEYSETS = {"seq+scalars": SEQ_KEYS + SCALAR_KEYS, "graphs": ("graphs", "scalar.lookback")}


def vm_hwm_mb(pid: int | str = "self") -> float:
    """Peak resident memory of a process in MB (Linux /proc VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _epoch(loader, max_batches: int | None) -> tuple[float, float, int]:
    """(seconds to the first batch, seconds for the rest, samples after the first batch)."""
    t0 = time.perf_counter()
    first, t1, n, n_batches = None, t0, 0, 0
    for batch in loader:
        if first is None:
            first, t1 = time.perf_counter() - t0, time.perf_counter()
        else:
            n += len(batch["trace_id"])
        n_batches += 1
        if max_batches and n_batches >= max_batches:
            break
    return first or 0.0, time.perf_counter() - t1, n


def time_loader(root, labels, keys, workers: int, batch_size: int, max_batches: int | None,
                epochs: int) -> dict:
    """``epochs`` epochs (each cut at ``max_batches``): samples/s after each first batch, startup, memory."""
    ds = FeatureDataset(root, "train", labels=labels, keys=keys, shuffle=True, seed=0)
    loader = make_loader(ds, batch_size=batch_size, num_workers=workers)
    rates, firsts, n = [], [], 0
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        first, seconds, n = _epoch(loader, max_batches)
        rates.append(round(n / seconds, 1) if seconds > 0 else None)
        firsts.append(round(first, 2))
    it = loader._iterator  # persistent workers are still alive: read their peak memory
    worker_mb = [vm_hwm_mb(w.pid) for w in getattr(it, "_workers", [])]
    del it, loader
    return {"workers": workers, "samples_per_s_by_epoch": rates, "first_batch_s_by_epoch": firsts,
            "samples_per_epoch": n, "main_peak_rss_mb": round(vm_hwm_mb(), 1),
            "worker_peak_rss_mb": [round(m, 1) for m in worker_mb]}


def lstm_model(batch: dict) -> nn.Module:
    x = batch["seq.last_answer"]
    try:
        from truthtrace.detectors.lstm import LayerLSTM

        return LayerLSTM(x.shape[1], x.shape[2], proj=128, hidden=64, bidirectional=True, dropout=0.2)
    except ImportError:  # stand-in: an LSTM over the layers
        class Stand(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm, self.head = nn.LSTM(x.shape[2], 64, batch_first=True), nn.Linear(64, 1)

            def forward(self, x):
                return self.head(self.lstm(x)[0][:, -1]).squeeze(-1)
        return Stand()


def gnn_model(batch: dict, n_heads: int) -> nn.Module:
    graphs = batch["graphs"]
    from truthtrace.detectors.gnn import GraphNet

    net = GraphNet(len(graphs), graphs[0].x.shape[1], n_heads, hidden=32, conv="gatv2", shared=True, dropout=0.1)
    return RawGraphs(net)


class RawGraphs(nn.Module):
    """``GraphNet`` called on the loader's raw graph batches (its ``forward`` takes prepared layers)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, graphs: list) -> torch.Tensor:
        return self.net.forward_graphs(graphs)


def time_steps(model: nn.Module, batches: list[dict], inputs) -> dict:
    """Training steps on batches held in memory: forward, BCE loss, backward, Adam step."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    n, t0 = 0, None
    for i, batch in enumerate(batches):
        if i == 1:
            t0 = time.perf_counter()  # the first step warms up allocators
        y = (batch["label"] == 1).float()
        loss = loss_fn(model(inputs(batch)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += len(y) if i >= 1 else 0
    seconds = time.perf_counter() - t0
    return {"samples_per_s": round(n / seconds, 1), "steps": len(batches) - 1, "model": type(model).__name__}


def first_batches(root, labels, keys, batch_size: int, count: int) -> list[dict]:
    loader = make_loader(FeatureDataset(root, "train", labels=labels, keys=keys, shuffle=True), batch_size, 0)
    return [b for _, b in zip(range(count), loader)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", required=True)
    ap.add_argument("--labels", default=None)
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-batches", type=int, default=None, help="stop each loader run after N batches")
    ap.add_argument("--epochs", type=int, default=2, help="loader epochs per run (later ones reuse parsed shards)")
    ap.add_argument("--train-batches", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the training steps")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    schema = json.loads((Path(args.features) / "index.json").read_text())["schema"]
    report = {"machine": {"platform": platform.platform(), "cores": len(os.sched_getaffinity(0)),
                          "loadavg_start": os.getloadavg(), "torch": torch.__version__},
              "features": args.features, "batch_size": args.batch_size, "loader": {}, "train_step": {}}
    for name, keys in KEYSETS.items():
        if name == "graphs" and not schema.get("graph"):
            continue
        rows = []
        for w in (int(v) for v in args.workers.split(",")):
            rows.append(time_loader(args.features, args.labels, keys, w, args.batch_size, args.max_batches,
                                    args.epochs))
            print(name, rows[-1], flush=True)
        report["loader"][name] = rows
    batches = first_batches(args.features, args.labels, KEYSETS["seq+scalars"], args.batch_size, args.train_batches)
    report["train_step"]["lstm"] = time_steps(lstm_model(batches[0]), batches, lambda b: b["seq.last_answer"])
    print("lstm step", report["train_step"]["lstm"], flush=True)
    if schema.get("graph"):
        batches = first_batches(args.features, args.labels, KEYSETS["graphs"], args.batch_size, args.train_batches)
        report["train_step"]["gnn"] = time_steps(gnn_model(batches[0], schema["n_heads"]), batches,
                                                 lambda b: b["graphs"])
        print("gnn step", report["train_step"]["gnn"], flush=True)
    report["machine"]["loadavg_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
