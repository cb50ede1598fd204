"""``truthtrace validate``: check every shard, trace and tensor of a store without modifying it.

:mod:`.stage` walks the store, :mod:`.checks` checks one record or tensor, :mod:`.labels` the labels CSV,
:mod:`.report` holds the findings (``from truthtrace.traces.validate.stage import validate_store``).
Checks: ``docs/VALIDATE.md``.
"""
