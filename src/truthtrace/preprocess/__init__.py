"""The preprocess stage: a trace store -> a streamable feature store (sequences, scalars, graphs).

    from truthtrace.preprocess import PreprocessConfig, preprocess
    summary = preprocess("runs/a/traces", "runs/a/feats", PreprocessConfig(node_dim=64), labels="runs/a/labels.csv")

Layout of the feature store: ``truthtrace.preprocess.config`` and the issue-4 contract.
Read it with ``truthtrace.dataset.FeatureDataset``.
"""

from .build import compute_split, feature_schema, key_bytes, preprocess, trace_record
from .config import (FEATURES_KIND, FEATURES_VERSION, GRAPHS, LOGPROB_STATS, PCA_FILE, POSITIONS, SCALAR_KEYS,
                     SEQ_KEYS, SPLIT_FILE, PreprocessConfig, graph_key)
from .graphs import PcaMoments, apply_pca, build_edges, fit_pca, load_pca, save_pca
from .scalars import attn_logdet, hidden_svd, logprob_stats, lookback_ratio
from .sequences import TokenLayout, layout_of, sequence_features

__all__ = ["FEATURES_KIND", "FEATURES_VERSION", "GRAPHS", "LOGPROB_STATS", "PCA_FILE", "POSITIONS", "SCALAR_KEYS",
           "SEQ_KEYS", "SPLIT_FILE", "PcaMoments", "PreprocessConfig", "TokenLayout", "apply_pca", "attn_logdet",
           "build_edges", "compute_split", "feature_schema", "fit_pca", "graph_key", "hidden_svd", "key_bytes",
           "layout_of", "load_pca", "logprob_stats", "lookback_ratio", "preprocess", "save_pca",
           "sequence_features", "trace_record"]
