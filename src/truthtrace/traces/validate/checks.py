"""Checks of one trace of a store: keys, entries, token counts and decoded values.

Used by :func:`truthtrace.traces.validate.stage.validate_store`, which walks the shards and hands every
trace record here. Each check adds :class:`~truthtrace.traces.validate.stage.Problem` entries to the report
instead of raising, so one run lists everything that is wrong. The value checks
(:func:`any_nonfinite`, :func:`finite_problems`, :func:`range_problems`,
:func:`attention_problems`) work on one decoded tensor and return ``(check, severity, message)``.
"""

from __future__ import annotations

import numpy as np
import torch

from truthtrace.dtypes import TENSOR_DTYPES
from truthtrace.naming import FEATURES_KIND, GRAPH_PARTS, parse_key
from truthtrace.store.codec import decode
from truthtrace.traces.validate.report import Context


def preview_ids(ids: list, n: int = 5) -> str:
    """The first ``n`` of ``ids`` as reprs, then "and K more" (for problem messages)."""
    shown = ", ".join(repr(i) for i in ids[:n])
    return shown + (f" and {len(ids) - n} more" if len(ids) > n else "")


def layer_list(value) -> list[int] | None:
    """``value`` if it is a list of layer numbers (ints >= 0), else None."""
    return value if isinstance(value, list) and all(type(i) is int and i >= 0 for i in value) else None


def check_record(record: dict, buf: bytes | None, shard: str, ctx: Context,
                 base: dict | None = None) -> dict[str, torch.Tensor]:
    """Keys, entries, token counts and (when ``buf`` is given) decoded values of one trace.

    Args:
        record: the trace's entry of the shard document (``id``, ``tensors``, ``meta``).
        buf: the whole shard ``.bin`` (chunks are decoded from it), or None to skip values.
        shard: the shard's ``.bin`` name, for problem locations.
        ctx: the validate run's context; problems go to ``ctx.report``, which also counts tensors.
        base: ``key -> packed body`` of the shard's first trace (what this function returned for it), for
            chunks with ``shared_rows``; None for the first trace itself, which must share none.
    Returns ``key -> decoded tensor`` (triangles packed) of the chunks that decoded.
    """
    tid = str(record["id"])
    entries = record["tensors"]
    add = lambda check, sev, msg, key=None: ctx.report.add(check, sev, msg, shard, tid, key)  # noqa: E731
    for kind, missing in missing_keys(entries, ctx.schema):
        add("keys", "error", f"missing {kind} {missing} that the schema lists")
    _check_tokens(entries, record.get("meta") or {}, ctx, add)
    past_end, decoded = [], {}  # past_end: chunks cut off by a truncated file, one problem per trace
    for key, entry in entries.items():
        ctx.report.counts["tensors"] += 1
        if not _entry_ok(key, entry, ctx, add) or buf is None:
            continue
        t = _decode_entry(key, entry, buf, add, past_end, base)
        if t is not None:
            decoded[key] = t
            _check_values(key, entry, t, ctx, add)
    if past_end:
        add("decode", "error", f"{len(past_end)} chunks ({preview_ids(past_end, 3)}) lie past the end of the "
            f"{len(buf)}-byte shard file (truncated)", past_end[0] if len(past_end) == 1 else None)
    return decoded


def missing_keys(entries: dict, schema: dict) -> list[tuple[str, list[int]]]:
    """``(what, layers)`` the schema lists that the record lacks: hidden and attention layers of a trace store, graph
    layers (all of their parts) of a feature store (``kind`` ``truthtrace.features``, whose ``hidden_layers`` name
    the source's layers, not keys of its records)."""
    if schema.get("kind") == FEATURES_KIND:
        graph = schema.get("graph") if isinstance(schema.get("graph"), dict) else {}
        wanted = layer_list(graph.get("layers")) or []
        missing = [i for i in wanted if any(f"graph.{i}.{part}" not in entries for part in GRAPH_PARTS)]
        return [("graph layers", missing)] if missing else []
    out = []
    for kind in ("hidden", "attn"):
        wanted = layer_list(schema.get(f"{kind}_layers")) or []  # a malformed list is a schema problem
        missing = [i for i in wanted if f"layers.{i}.{kind}" not in entries]
        if missing:
            out.append((f"{kind} layers", missing))
    return out


def _entry_ok(key: str, entry: dict, ctx: Context, add) -> bool:
    """Entry fields sane and dtype policy respected; False when the chunk cannot be decoded."""
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        add("shape", "error", f"entry shape {shape!r} is not a list of sizes", key)
        return False
    if entry.get("dtype") not in TENSOR_DTYPES:
        add("dtype", "error", f"entry dtype {entry.get('dtype')!r} is not a supported dtype", key)
        return False
    parsed, storage = parse_key(key), ctx.storage.get("dtype")
    floating = TENSOR_DTYPES[entry["dtype"]].is_floating_point
    if parsed and floating and entry["dtype"] != storage and "fallback" not in entry:
        add("dtype", "error", f"stored as {entry['dtype']} but the store's storage dtype is {storage} "
            "and no overflow fallback is recorded", key)
    if parsed and parsed[1] == "hidden" and len(shape) != 2:
        add("shape", "error", f"hidden state has shape {shape}, expected (T, d)", key)
    elif parsed and parsed[1] == "hidden" and ctx.schema.get("d_model") not in (None, shape[1]):
        add("shape", "error", f"hidden size {shape[1]} differs from the schema's d_model {ctx.schema['d_model']}", key)
    if parsed and parsed[1] == "attn" and len(shape) != 3:
        add("shape", "error", f"attention map has shape {shape}, expected (H, T, T)", key)
    elif parsed and parsed[1] == "attn" and ctx.schema.get("n_heads") not in (None, shape[0]):
        add("shape", "error", f"{shape[0]} heads, the schema says n_heads {ctx.schema['n_heads']}", key)
    planes = entry.get("planes")
    if entry.get("layout") not in ("dense", "tril"):
        add("shape", "error", f"entry layout {repr(entry.get('layout'))[:40]} is not 'dense' or 'tril'", key)
    elif not (isinstance(planes, list) and all(type(n) is int and n >= 0 for n in planes)):
        add("shape", "error", f"entry planes {repr(planes)[:40]} is not a list of byte counts", key)
    else:
        return True
    return False


def _decode_entry(key: str, entry: dict, buf: bytes, add, past_end: list,
                  base: dict | None) -> torch.Tensor | None:
    """Decode one chunk from the shard buffer (tril maps stay packed); None after reporting why not
    (keys of chunks beyond the end of a truncated buffer are appended to ``past_end`` instead)."""
    offset, nbytes = entry.get("offset", -1), entry.get("nbytes", -1)
    if not (isinstance(offset, int) and isinstance(nbytes, int) and offset >= 0 and nbytes >= 0):
        add("shape", "error", f"entry has bad offset/nbytes {offset!r}/{nbytes!r}", key)
        return None
    if offset + nbytes > len(buf):
        past_end.append(key)
        return None
    shared = entry.get("shared_rows", 0)
    if shared and (base is None or key not in base):
        why = "it is the shard's first trace" if base is None else "the first trace's chunk did not decode"
        add("shape", "error", f"entry shares {shared!r} rows with the shard's first trace, but {why}", key)
        return None
    try:
        return decode(memoryview(buf)[offset:offset + nbytes], entry, unpack=False,
                      base=base[key] if shared else None)
    except ValueError as err:
        add("shape", "error", f"chunk does not match its entry (shape {entry['shape']}, dtype "
            f"{entry['dtype']}): {err}", key)
    except Exception as err:  # zstd checksum or frame errors: the bytes are damaged
        add("decode", "error", f"corrupt chunk ({type(err).__name__}: {err})", key)
    return None


def _check_values(key: str, entry: dict, t: torch.Tensor, ctx: Context, add) -> None:
    """NaN/inf, fp16 range and attention checks on one decoded tensor (tril maps packed)."""
    if not t.is_floating_point():
        return
    if any_nonfinite(t):
        for check, sev, msg in finite_problems(t.float(), entry):
            add(check, sev, msg, key)
        return  # row sums of a map holding NaN say nothing more
    parsed = parse_key(key)
    if parsed is None:
        return
    if t.dtype != torch.float16:  # a float16 tensor cannot exceed its own range
        for check, sev, msg in range_problems(t.float(), entry, parsed[0]):
            add(check, sev, msg, key)
    if parsed[1] == "attn":
        tol = ctx.config.attn_tolerance or _auto_tolerance(entry["dtype"], ctx.schema.get("model_dtype"))
        for check, sev, msg in attention_problems(t.float(), entry, tol, ctx.config.causal):
            add(check, sev, msg, key)


def _auto_tolerance(stored: str, model_dtype) -> float:
    """4 epsilons of the coarser dtype: rounding each of a row's entries moves its sum by at most eps/2."""
    floats = [TENSOR_DTYPES[d] for d in (stored, model_dtype) if d in TENSOR_DTYPES]
    eps = [torch.finfo(t).eps for t in floats if t.is_floating_point]
    return 4 * max(eps)


def _check_tokens(entries: dict, meta: dict, ctx: Context, add) -> None:
    """token_ids length T, hidden rows K, attention (H, K, T) and the meta's counts agree."""
    shapes = {k: e.get("shape") for k, e in entries.items() if isinstance(e.get("shape"), list)}
    T = shapes["token_ids"][0] if len(shapes.get("token_ids") or []) == 1 else None
    rows = {s[0] for k, s in shapes.items() if k.endswith(".hidden") and len(s) == 2}
    rows |= {s[1] for k, s in shapes.items() if k.endswith(".attn") and len(s) == 3}
    cols = {s[2] for k, s in shapes.items() if k.endswith(".attn") and len(s) == 3}
    if len(rows) > 1:
        add("tokens", "error", f"hidden states and attention maps disagree on the number of tokens: {sorted(rows)}")
    if T is not None and (cols - {T}):
        add("tokens", "error", f"attention maps span {sorted(cols)} tokens but token_ids holds {T}")
    n_p, n_a, k0 = meta.get("n_prompt_tokens"), meta.get("n_answer_tokens"), meta.get("kept_start", 0)
    for name in ("n_prompt_tokens", "n_answer_tokens", "kept_start"):
        if name in meta and (type(meta[name]) is not int or meta[name] < 0):
            add("tokens", "error", f"meta field {name!r} is {repr(meta[name])[:40]}, expected an int >= 0")
    if not all(type(v) is int and v >= 0 for v in (n_p, n_a, k0)):
        return
    if T is not None and n_p + n_a != T:
        add("tokens", "error", f"token_ids holds {T} tokens, meta says {n_p} prompt + {n_a} answer = {n_p + n_a}")
    if len(rows) == 1 and rows != {n_p + n_a - k0}:
        add("tokens", "error", f"{rows.pop()} token positions stored, meta says {n_p} + {n_a} - kept_start {k0} "
            f"= {n_p + n_a - k0}")
    for key in ("answer_logprobs", "answer_entropy"):
        if key in shapes and shapes[key] != [n_a]:
            add("tokens", "error", f"{key} has shape {shapes[key]}, meta says {n_a} answer tokens", key)


# ---------------------------------------------------------------- value checks on one decoded tensor
# Each returns a list of (check, severity, message); ``x`` is the tensor in float32, with
# ``tril`` attention maps still packed as (H, T*(T+1)/2).


def _position(flat: int, entry: dict) -> str:
    """Human coordinates of element ``flat`` of a (possibly tril-packed) tensor."""
    shape = entry["shape"]
    if entry["layout"] == "tril":
        per_head = shape[-1] * (shape[-1] + 1) // 2
        head, p = divmod(flat, per_head)
        row = int((np.sqrt(8 * p + 1) - 1) // 2)
        return f"head {head}, row {row}, col {p - row * (row + 1) // 2}"
    idx = np.unravel_index(flat, shape)
    if len(shape) == 2:
        return f"token {idx[0]}, channel {idx[1]}"
    if len(shape) == 3:
        return f"head {idx[0]}, row {idx[1]}, col {idx[2]}"
    return f"index {list(map(int, idx))}"


# exponent bits all ones means inf or NaN; testing bits is ~10x faster than torch.isfinite
_EXPONENT = {torch.float16: (np.int16, 0x7C00), torch.bfloat16: (np.int16, 0x7F80),
             torch.float32: (np.int32, 0x7F800000), torch.float64: (np.int64, 0x7FF0000000000000)}


def any_nonfinite(t: torch.Tensor) -> bool:
    """True if floating tensor ``t`` (any shape) holds a NaN or an inf."""
    bits, exp = _EXPONENT[t.dtype]
    view = t.contiguous().reshape(-1).view({np.int16: torch.int16, np.int32: torch.int32,
                                            np.int64: torch.int64}[bits]).numpy()
    return bool(np.any((view & bits(exp)) == exp))


def finite_problems(x: torch.Tensor, entry: dict) -> list[tuple[str, str, str]]:
    """An error when ``x`` holds NaN or inf, with counts and the first position."""
    bad = ~torch.isfinite(x)
    n_bad = int(bad.sum())
    if not n_bad:
        return []
    n_nan = int(torch.isnan(x).sum())
    first = int(bad.reshape(-1).nonzero()[0])
    return [("finite", "error", f"{n_nan} NaN and {n_bad - n_nan} inf values (first at {_position(first, entry)})")]


def range_problems(x: torch.Tensor, entry: dict, layer: int) -> list[tuple[str, str, str]]:
    """A warning naming the layer and channels (heads for attention) of values beyond float16's range."""
    limit = torch.finfo(torch.float16).max
    if float(x.abs().max()) <= limit:  # called on finite tensors only
        return []
    big = x.abs() > limit
    where = big.reshape(-1).nonzero().squeeze(1).numpy()
    shape, packed = entry["shape"], entry["layout"] == "tril"
    if len(shape) == 2 and not packed:
        channels = sorted({int(i) % shape[1] for i in where})
        unit = "channel"
    else:
        channels = sorted({int(i) // (x.numel() // shape[0]) for i in where})
        unit = "head"
    why = " (overflow fallback)" if "fallback" in entry else ""
    return [("fp16_range", "warning", f"layer {layer}: {len(where)} values beyond the float16 range "
             f"(max |x| = {float(x.abs().max()):.6g}) in {unit}(s) {channels[:10]}"
             f"{' ...' if len(channels) > 10 else ''}; stored as {entry['dtype']}{why}")]


def attention_problems(x: torch.Tensor, entry: dict, tol: float, causal: bool) -> list[tuple[str, str, str]]:
    """Rows of an ``(H, K, T)`` map must sum to 1 within ``tol``; with ``causal`` nothing above the diagonal.

    Row ``r`` of a map holding the last K of T positions is position ``T - K + r``.
    """
    n_heads, k, t = entry["shape"]
    if k == 0 or t == 0:
        return []
    out = []
    if entry["layout"] == "tril":  # packed lower triangle: row r is r+1 consecutive values
        starts = np.arange(t) * (np.arange(t) + 1) // 2
        sums = torch.from_numpy(np.add.reduceat(x.numpy(), starts, axis=-1, dtype=np.float64))  # (H, T)
    else:
        sums = x.double().sum(-1)  # (H, K)
        upper = torch.ones(k, t, dtype=torch.bool).triu(t - k + 1)  # (K, T): columns after the row's position
        hits = (x != 0) & upper if causal else None  # (H, K, T); -0.0 counts as zero
        if hits is not None and hits.any():
            first = int(hits.reshape(-1).nonzero()[0])
            out.append(("attn_causal", "error", f"{int(hits.sum())} nonzero values above the diagonal of a "
                        f"causal map (first at {_position(first, entry)})"))
    dev = (sums - 1).abs()
    if float(dev.max()) > tol:
        head, row = divmod(int(dev.reshape(-1).argmax()), dev.shape[1])
        out.append(("attn_rows", "error", f"{int((dev > tol).sum())} of {dev.numel()} rows do not sum to 1 "
                    f"within {tol:.3g} (worst: head {head}, row {row}, sum {float(sums[head, row]):.6g})"))
    return out
