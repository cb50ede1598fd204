"""Figures of traces and detectors (the ``viz`` extra: matplotlib, networkx).

:mod:`.figure` holds the one style, palette and save path; :mod:`.attention`, :mod:`.layers` and
:mod:`.roc` draw; :mod:`.page` gathers them in an ``index.html``; :mod:`.stage` is the
``truthtrace visualize`` stage (``from truthtrace.viz.stage import visualize``).
"""
