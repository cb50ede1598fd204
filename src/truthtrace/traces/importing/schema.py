"""The trace-store schema of an import: inferred from its first importable record, checked against the rest."""

from __future__ import annotations

import time

from truthtrace.naming import layer_key
from truthtrace.traces.importing.readers import ImportConfig


def infer_schema(tensors: dict, config: ImportConfig, sources: list[str]) -> dict:
    """Store schema inferred from the tensors of the first importable record (see :func:`record_tensors`).

    Args:
        tensors: the record's store tensors (``layers.{i}.hidden`` (T, d), ``layers.{i}.attn`` (H, T, T)).
        config: gives the model name and storage dtype.
        sources: the import's sources, recorded as ``imported_from``.

    Returns:
        the schema dict for :class:`~truthtrace.store.TraceWriter`.
    """
    hidden = sorted(int(k.split(".")[1]) for k in tensors if k.endswith(".hidden"))
    attn = sorted(int(k.split(".")[1]) for k in tensors if k.endswith(".attn"))
    schema = {"kind": "truthtrace.traces", "model": config.model,
              "n_layers": len(attn) if attn else max(len(hidden) - 1, 1),
              "d_model": int(tensors[layer_key(hidden[0], "hidden")].shape[1]),
              "hidden_layers": hidden, "attn_layers": attn, "storage_dtype": config.storage_dtype,
              "imported_from": sources, "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "volatile": ["imported_from", "imported_at"]}
    if attn:  # no heads to record for hidden-state-only traces
        schema["n_heads"] = int(tensors[layer_key(attn[0], "attn")].shape[0])
    return schema


def schema_mismatch(tensors: dict, schema: dict) -> str | None:
    """Why a record's store tensors do not fit the store's ``schema`` (other layers, width or heads), or None."""
    hidden = sorted(int(k.split(".")[1]) for k in tensors if k.endswith(".hidden"))
    attn = sorted(int(k.split(".")[1]) for k in tensors if k.endswith(".attn"))
    if hidden != schema.get("hidden_layers") or attn != schema.get("attn_layers"):
        return f"{len(hidden)} hidden / {len(attn)} attention layers, the store has " \
               f"{len(schema.get('hidden_layers', []))} / {len(schema.get('attn_layers', []))}"
    if int(tensors[layer_key(hidden[0], "hidden")].shape[1]) != schema.get("d_model"):
        return f"hidden size {tensors[layer_key(hidden[0], 'hidden')].shape[1]}, the store has {schema.get('d_model')}"
    if attn and int(tensors[layer_key(attn[0], "attn")].shape[0]) != schema.get("n_heads"):
        return f"{tensors[layer_key(attn[0], 'attn')].shape[0]} heads, the store has {schema.get('n_heads')}"
    return None
