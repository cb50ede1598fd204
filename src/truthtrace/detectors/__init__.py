"""Hallucination detectors: each module registers one or more detectors in :data:`DETECTORS`.

A detector consumes iterators of batches (see :class:`truthtrace.features.dataset.FeatureDataset`)
and never the LLM; ``truthtrace.detectors.train`` fits them on a feature store. The protocol,
registry and save/load helpers are in :mod:`truthtrace.detectors.base`.

    from truthtrace.detectors import get_detector, load_detector
"""

# Importing the modules registers their detectors.
from truthtrace.detectors import baselines, gnn, llm_check, lookback, lstm, mlp, probe, transformer  # noqa: F401
from truthtrace.detectors import eigenscore, sampled, sep  # noqa: F401  (need a samples store)
from truthtrace.detectors import length, stack  # noqa: F401  (the length control; stack: fitted by evaluate)
from truthtrace.detectors.base import (
                                       CONFIG_FILE,
                                       DETECTORS,
                                       WEIGHTS_FILE,
                                       Batch,
                                       Detector,
                                       check_shapes,
                                       concat_batches,
                                       detector_from_config,
                                       get_detector,
                                       load_arrays,
                                       load_detector,
                                       read_config,
                                       read_weights,
                                       register,
                                       save_arrays,
                                       write_config,
)

__all__ = ["CONFIG_FILE", "DETECTORS", "WEIGHTS_FILE", "Batch", "Detector", "check_shapes", "concat_batches",
           "detector_from_config", "get_detector", "load_arrays", "load_detector", "read_config", "read_weights",
           "register", "save_arrays", "write_config"]
