"""``truthtrace evaluate``: grade every trained detector and seed on the held-out split
(:mod:`.evaluate`) and write ``report.json`` / ``report.md`` (:mod:`.report`, the owner of ``report.json``).

    from truthtrace.evaluation import EvalConfig, evaluate
"""

from truthtrace.evaluation.evaluate import EvalConfig, evaluate

__all__ = ["EvalConfig", "evaluate"]
