"""Features: a trace store -> a streamable feature store (sequences, scalars, graphs), its split and its reader.

    from truthtrace.features import PreprocessConfig, preprocess
    summary = preprocess("runs/a/traces", "runs/a/feats", PreprocessConfig(node_dim=64), labels="runs/a/labels.csv")

Layout of the feature store: ``docs/FORMAT.md`` (constants in ``truthtrace.features.config``).
Read it with ``truthtrace.features.dataset.FeatureDataset``.
"""

from truthtrace.features.build import feature_schema, key_bytes, preprocess
from truthtrace.features.config import (
    FEATURES_KIND,
    FEATURES_VERSION,
    GRAPHS,
    LOGPROB_STATS,
    PCA_FILE,
    POSITIONS,
    SCALAR_KEYS,
    SEQ_KEYS,
    PreprocessConfig,
    graph_key,
)
from truthtrace.features.graphs import PcaMoments, apply_pca, build_edges, fit_pca, load_pca, save_pca
from truthtrace.features.record import trace_record
from truthtrace.features.scalars import attn_logdet, hidden_svd, logprob_stats, lookback_ratio
from truthtrace.features.sequences import TokenLayout, layout_of, sequence_features
from truthtrace.features.splits import SPLIT_FILE, make_split, read_split, split_by_question, write_split

__all__ = [
    "FEATURES_KIND",
    "FEATURES_VERSION",
    "GRAPHS",
    "LOGPROB_STATS",
    "PCA_FILE",
    "POSITIONS",
    "SCALAR_KEYS",
    "SEQ_KEYS",
    "SPLIT_FILE",
    "PcaMoments",
    "PreprocessConfig",
    "TokenLayout",
    "apply_pca",
    "attn_logdet",
    "build_edges",
    "make_split",
    "read_split",
    "split_by_question",
    "write_split",
    "feature_schema",
    "fit_pca",
    "graph_key",
    "hidden_svd",
    "key_bytes",
    "layout_of",
    "load_pca",
    "logprob_stats",
    "lookback_ratio",
    "preprocess",
    "save_pca",
    "sequence_features",
    "trace_record",
]
