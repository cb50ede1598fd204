"""Traces: run the model and capture its insides (:mod:`.capture`, :mod:`.extract`), bring traces
from other tools (:mod:`.importing`), check a store (:mod:`.validate`) and look into it (:mod:`.inspect`).

The store format itself is :mod:`truthtrace.store`. Import the stage you need, e.g.
``from truthtrace.traces.extract import ExtractConfig, extract``.
"""
