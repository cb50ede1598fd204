"""Live detection: an engine that answers and scores in one pass (:mod:`.engine`), and its result cache (:mod:`.cache`).
"""
