"""A trained tiny run for the tests of live detection, the demo and profiling: extract -> labels -> preprocess ->
train on a tiny random model, written under one folder (``traces``, ``labels.csv``, ``feats``, ``det``)."""

import csv

from truthtrace.detectors.train import TrainConfig, train
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.traces.extract import ExtractConfig, extract


def write_alternating_labels(path, questions) -> None:
    """labels.csv marking every second question hallucinated (a random model's answers are all wrong)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trace_id", "hallucinated"])
        w.writerows([q.id, i % 2] for i, q in enumerate(questions))


def tiny_trained_run(root, model, tokenizer, questions, detectors, batch_size=4, max_new_tokens=5,
                     features=None, detector_args=None):
    """extract (generate capture) -> labels -> preprocess (``features``; default: small graphs) -> train.

    Returns ``root``."""
    cfg = ExtractConfig(model="tiny", batch_size=batch_size, max_new_tokens=max_new_tokens, capture="generate")
    extract(questions, root / "traces", cfg, model, tokenizer, progress=False)
    write_alternating_labels(root / "labels.csv", questions)
    preprocess(root / "traces", root / "feats", features or PreprocessConfig(node_dim=8, max_nodes=16),
               labels=root / "labels.csv", progress=False)
    train(root / "feats", root / "labels.csv", root / "det",
          TrainConfig(detectors=tuple(detectors), seeds=(0,), detector_args=detector_args or {}), progress=False)
    return root
