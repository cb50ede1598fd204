"""``truthtrace import``: traces saved by other tools (``.pkl``, ``.pkl.gz``, ``.pt``) into a trace store.

:mod:`.readers` turns one file into records, :mod:`.safe_pickle` is the restricted unpickler it uses
(run in a child process by :mod:`.isolated`),
:mod:`.schema` infers and checks the store schema,
:mod:`.run` is the resumable stage (``from truthtrace.traces.importing.run import import_traces``).
"""
