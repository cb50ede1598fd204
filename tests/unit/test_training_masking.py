"""Unknown labels (-1) must not train the model: a test that fails when the loss mask is removed.

BCE on a -1 target is finite, so "the loss is finite" cannot tell a masked loss from an unmasked one. Here
the unknown traces look like hallucinations (dimension 0 shifted up) but carry label -1, and outnumber
the known ones 3 to 1: unmasked, their -1 targets push the weight of dimension 0 negative and the test
AUROC collapses; masked, they are ignored and the planted signal is found.
"""

import torch
from test_training import batches, cfg, forward, planted, tiny_net

from truthtrace import metrics
from truthtrace.detectors.torch_base import TensorBatches
from truthtrace.training import fit_module, predict


def test_unknown_labels_do_not_move_the_model():
    x_known, y_known = planted(96, 1)
    g = torch.Generator().manual_seed(7)
    x_unknown = torch.randn(288, 8, generator=g)
    x_unknown[:, 0] += 3.0  # shaped like the positives
    x = torch.cat([x_known, x_unknown])
    y = torch.cat([y_known, torch.full((288,), -1, dtype=torch.long)])
    perm = torch.randperm(len(y), generator=g)
    train = TensorBatches({"x": x[perm]}, y[perm], 16, shuffle=True, seed=0)
    net = tiny_net()
    result = fit_module(net, forward, train, batches(96, 2), cfg(max_epochs=15, patience=15))
    x_test, y_test = planted(400, 3)
    scores, labels = predict(net, forward, TensorBatches({"x": x_test}, y_test, 64), "cpu")
    assert result.best_auroc > 0.9 and metrics.auroc(scores, labels) > 0.9
