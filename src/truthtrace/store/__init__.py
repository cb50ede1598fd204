"""The on-disk trace store: compact, safe (no pickle), streamable, resumable.

    with TraceWriter(path, schema) as w:          # shards cut at a size limit, index written last
        if not w.has(trace_id):
            w.add(trace_id, {"layers.3.attn": attn, ...}, meta)
    store = TraceStore(path)
    store.read(trace_id, "layers.3.attn")         # one seek, one decompress: (H, T, T)

Layout and guarantees: ``docs/FORMAT.md``.
"""

from truthtrace.dtypes import STORAGE_DTYPES
from truthtrace.store.codec import CHUNK_CODEC, CHUNK_CODECS, CODEC
from truthtrace.store.index import FORMAT_VERSION, StoreError
from truthtrace.store.reader import Trace, TraceStore
from truthtrace.store.writer import TraceWriter

__all__ = ["CHUNK_CODEC", "CHUNK_CODECS", "CODEC", "FORMAT_VERSION", "STORAGE_DTYPES", "StoreError", "Trace",
           "TraceStore", "TraceWriter"]
