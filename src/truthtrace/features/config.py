"""PreprocessConfig and the names of the feature store's keys.

Layout: ``docs/FORMAT.md``; key names are built by ``truthtrace.naming``.

A feature store is an ordinary trace store whose schema has ``kind`` =
``truthtrace.features``; each record (one per trace of the source store) holds:

- ``seq.{position}`` ``(Lh, d)`` hidden state at one position per stored hidden layer;
- ``scalar.logprob_stats`` ``(8,)``, ``scalar.lookback`` ``(La, H)``,
  ``scalar.attn_logdet`` ``(La,)``, ``scalar.hidden_svd`` ``(Lh,)``;
- ``graph.{l}.x`` ``(n, node_dim)``, ``graph.{l}.edge_index`` ``(2, E)`` int64,
  ``graph.{l}.edge_attr`` ``(E, H)`` for each graph layer ``l``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from truthtrace.features.splits import check_fractions
from truthtrace.naming import (  # noqa: F401
    FEATURES_KIND,
    GRAPH_PARTS,
    POSITIONS,
    SCALARS,
    graph_key,
    scalar_key,
    seq_key,
)

FEATURES_VERSION = 2  # 2: seq.exact_first and seq.exact_last (schema "positions")
PCA_FILE = "pca.safetensors"

SEQ_KEYS = tuple(seq_key(p) for p in POSITIONS)
LOGPROB_STATS = ("mean_logprob", "min_logprob", "std_logprob", "last_logprob",
                 "mean_entropy", "max_entropy", "std_entropy", "n_answer_tokens")
SCALAR_KEYS = tuple(scalar_key(n) for n in SCALARS)
GRAPHS = "graphs"  # the dataset key that asks for every graph layer


@dataclass
class PreprocessConfig:
    """Options of the preprocess stage; validated on construction.

    Args:
        graphs: build the per-layer token graphs (``--no-graphs`` turns them off).
        graph_layers: attention layers to turn into graphs; None = every stored attention layer.
        max_nodes: a graph holds the last ``max_nodes`` tokens of the trace.
        top_k: keep the ``top_k`` strongest sources of each token (head-mean attention)...
        threshold: ...or, when set (then ``top_k`` must be None), every source above it.
        pca: project node features with a PCA fitted on the train split.
        node_dim: PCA components (clamped to ``d_model`` with a warning).
        pca_max_tokens: cap on the train tokens sampled per graph layer to fit the PCA.
        pca_from: reuse this ``pca.safetensors`` (or a feature store dir holding one) instead of
            fitting a PCA, so new traces land in the node-feature space a detector was trained on.
        split_seed, fractions: the train/val/test split by question id.
        overwrite: replace an existing feature store instead of resuming it.
        threads: torch CPU threads (None: torch's choice).
        shard_max_traces: records per feature-store shard.
    """

    graphs: bool = True
    graph_layers: list[int] | None = None
    max_nodes: int = 64
    top_k: int | None = 4
    threshold: float | None = None
    pca: bool = True
    node_dim: int = 64
    pca_max_tokens: int = 20_000
    pca_from: str | None = None
    split_seed: int = 0
    fractions: tuple[float, float, float] = field(default=(0.7, 0.15, 0.15))
    overwrite: bool = False
    threads: int | None = None
    shard_max_traces: int = 256

    def __post_init__(self) -> None:
        self.fractions = check_fractions(self.fractions, "fractions")
        for name in ("max_nodes", "node_dim", "pca_max_tokens", "shard_max_traces"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if (self.top_k is None) == (self.threshold is None):
            raise ValueError("exactly one of top_k and threshold must be set "
                             f"(got top_k={self.top_k!r}, threshold={self.threshold!r})")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ValueError(f"top_k must be a positive int, got {self.top_k!r}")
        if self.threshold is not None and not (math.isfinite(self.threshold) and 0 <= self.threshold < 1):
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold!r}")
        if self.graph_layers is not None:
            if not self.graph_layers or min(self.graph_layers) < 0:
                raise ValueError(f"graph_layers must be a non-empty list of layers >= 0, got {self.graph_layers!r}")
            self.graph_layers = sorted(set(int(i) for i in self.graph_layers))
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive int, got {self.threads!r}")
        if self.pca_from is not None and (not self.pca or not str(self.pca_from).strip()):
            raise ValueError(f"pca_from needs pca=True and a non-empty path, got pca={self.pca!r}, "
                             f"pca_from={self.pca_from!r}")
        if not isinstance(self.split_seed, int):
            raise ValueError(f"split_seed must be an int, got {self.split_seed!r}")
