"""Live detection: an engine that answers and scores in one pass, and its result cache.

    from truthtrace.inference import Engine, EngineConfig
    engine = Engine(EngineConfig(detectors=["runs/default/detectors"]))
    result = engine.answer(["Who wrote Hamlet?"])[0]

:mod:`.engine` batches and runs requests, :mod:`.live` computes an answer's features as ``preprocess``
would, :mod:`.detectors` finds what the detectors need, :mod:`.results` shapes a result, :mod:`.cache`
is the SQLite result cache, :mod:`.config` holds :class:`EngineConfig`.
"""

from truthtrace.inference.config import EngineConfig
from truthtrace.inference.engine import Engine

__all__ = ["Engine", "EngineConfig"]
