"""Where a ``gnn`` fit spends its time: reading the kept graph layers, preparing them, training epochs, validation.

    .venv/bin/python bench/bench_gnn.py --features runs/default/features --labels runs/default/labels.csv \
        [--epochs 2] [--threads 1] [--out bench_gnn.json]

Runs the phases of ``GNNDetector.fit`` one by one on the train and val splits of the store (batch 64, the
detector's defaults: gatv2, 8 graph layers, hidden 64) and prints seconds per phase and per epoch (validation
included) and the peak memory. The store is opened fresh (its shard documents are parsed inside "read").
"""

from __future__ import annotations

import argparse
import time

import torch

from truthtrace.detectors import gnn
from truthtrace.detectors.graph_batches import PreparedBatches, graph_stats, prepare_layers
from truthtrace.detectors.train import loaders
from truthtrace.features.open_stores import forget_stores
from truthtrace.fileio import write_json_atomic
from truthtrace.machine import machine_info, peak_memory
from truthtrace.training import LoopConfig, fit_module


def phases(features: str, labels: str, epochs: int) -> dict:
    """Seconds of each phase of one gnn fit (``epochs`` epochs, no early stop) and each epoch's val AUROC."""
    import torch_geometric  # noqa: F401  (imported before the clock starts)

    forget_stores()
    out, t = {}, time.perf_counter()
    train, val = loaders(features, labels, ("graphs",), 0, 64, 0)
    det = gnn.GNNDetector(max_epochs=epochs, patience=epochs, quiet=True, tracking="none")
    positions = det.positions(gnn.n_graph_layers(val))
    tr, y_tr = gnn.read_kept(train, positions)
    va, y_va = gnn.read_kept(val, positions)
    out["read_s"], t = time.perf_counter() - t, time.perf_counter()
    mean, std = graph_stats(tr)  # (G, node_dim) each
    tr, va = prepare_layers(tr, mean, std, True), prepare_layers(va, mean, std, True)
    out["prepare_s"] = time.perf_counter() - t
    out["train_traces"], out["val_traces"], out["steps_per_epoch"] = len(tr), len(va), -(-len(tr) // 64)
    det.dims = {"positions": positions, "node_dim": int(mean.shape[1]), "n_heads": int(tr[0][0].loop_attr.shape[1])}
    torch.manual_seed(0)
    module = det.build()
    module.mean.copy_(mean)
    module.std.copy_(std)
    out["epochs"], clock = [], [time.perf_counter()]

    def on_epoch(epoch: int, record: dict) -> None:
        clock.append(time.perf_counter())
        out["epochs"].append({"seconds": clock[-1] - clock[-2], "val_auroc": record["val_auroc"]})

    config = LoopConfig(**{**det.loop.to_dict(), "resume": False})
    fit_module(module, gnn.forward_prepared, PreparedBatches(tr, y_tr, 64, shuffle=True),
               PreparedBatches(va, y_va, 256), config, callback=on_epoch, desc="gnn")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = phases(args.features, args.labels, args.epochs)
    print(f"{result['train_traces']} train + {result['val_traces']} val traces: read {result['read_s']:.1f} s, "
          f"prepare {result['prepare_s']:.1f} s")
    for i, e in enumerate(result["epochs"]):
        print(f"epoch {i + 1}: {e['seconds']:.1f} s ({result['steps_per_epoch']} steps + validation), "
              f"val AUROC {e['val_auroc']:.4f}")
    result.update(peak_memory(), machine=machine_info())
    print(f"peak memory {result['peak_memory_mb']:.0f} MB")
    if args.out:
        write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
