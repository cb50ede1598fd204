"""The ``validate`` stage: check every shard, trace and tensor of a store, and optionally its labels.

Nothing is written and the writer lock is never taken: files are opened read-only, each
shard's ``.bin`` is read once into memory, its sha256 is checked against ``index.json``
and every chunk is then decoded from that same buffer. A damaged shard or tensor becomes
a :class:`Problem` naming the shard, trace and key, and the checks go on, so one run lists
everything that is wrong, and so does a field of the wrong type in ``index.json`` or a shard document.
The per-trace and per-tensor checks live in :mod:`truthtrace.traces.validate.checks`, the labels check in
:mod:`truthtrace.traces.validate.labels`.
Check names, severities and exit codes: ``docs/VALIDATE.md``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from truthtrace.dtypes import STORAGE_DTYPES
from truthtrace.features.build import FEATURE_FILES
from truthtrace.naming import FEATURES_KIND, TRACES_KIND
from truthtrace.store.codec import CODEC
from truthtrace.store.index import (
    INDEX_NAME,
    LOCK_NAME,
    SHARD_FORMAT,
    SHARD_RE,
    TMP_RE,
    StoreError,
    check_version,
    index_problems,
    load_index,
    parse_json,
    record_problems,
    shard_file_status,
    shard_problems,
    type_problem,
)
from truthtrace.traces.validate.checks import (
    any_nonfinite,
    attention_problems,
    check_record,
    finite_problems,
    layer_list,
    preview_ids,
    range_problems,
)
from truthtrace.traces.validate.labels import check_labels
from truthtrace.traces.validate.report import CHECKS, SEVERITIES, Context, Problem, ValidateConfig, ValidationReport

# the value checks live in checks.py; they are re-exported here for callers of the stage module
__all__ = ["CHECKS", "SEVERITIES", "Problem", "ValidateConfig", "ValidationReport", "any_nonfinite",
           "attention_problems", "check_labels", "finite_problems", "range_problems", "validate_store"]

def validate_store(path, labels=None, config: ValidateConfig | None = None) -> ValidationReport:
    """Check a trace store or a feature store (and a labels CSV) without modifying anything.

    Args:
        path: store directory.
        labels: optional ``labels.csv`` path; it must hold every trace id exactly once.
        config: :class:`ValidateConfig` (defaults if None).

    Returns:
        a :class:`ValidationReport`; ``report.ok`` is False when any error was found.
        Problems never raise: a missing or unreadable ``index.json`` is itself reported, and so is
        every field of the wrong type; the shards whose entries are sound are still checked.
    """
    config = config or ValidateConfig()
    root, start = Path(path), time.perf_counter()
    report = ValidationReport(str(root))
    try:
        index = load_index(root, strict=False)
    except StoreError as err:
        report.add("index", "error", str(err))
        report.seconds = time.perf_counter() - start
        return report
    shards = _usable_shards(index, report)
    storage = index["storage"] if isinstance(index["storage"], dict) else {}
    ctx = Context(report, index["schema"] if isinstance(index["schema"], dict) else {}, storage, config)
    for step in (lambda: _check_index(index, ctx), lambda: _check_files(root, index, shards, report)):
        try:
            step()
        except Exception as err:  # a malformed index must not stop the shard checks
            report.add("internal", "error", f"index checks stopped: {type(err).__name__}: {err}")
    for shard in _progress(shards, config.progress):
        try:
            _check_shard(root, shard, ctx)
        except Exception as err:  # a bug or a bizarre file must not hide the other shards' results
            report.add("internal", "error", f"checking stopped for this shard: {type(err).__name__}: {err}",
                       shard=str(shard.get("bin")))
    if labels is not None:
        check_labels(labels, [i for s in index["shards"] for i in _ids(s)], report)
    report.seconds = time.perf_counter() - start
    return report


def _ids(shard) -> list[str]:
    """The trace ids an index entry lists ([] unless they are a list of strings)."""
    ids = shard.get("ids") if isinstance(shard, dict) else None
    return ids if isinstance(ids, list) and all(isinstance(i, str) for i in ids) else []


def _usable_shards(index: dict, report: ValidationReport) -> list[dict]:
    """The shard entries of ``index`` that can be checked; each field of the wrong type is an ``index`` error.

    A usable entry has every field of the right type and file names of the form ``shard.NNNNN.*``,
    so no name can lead outside the store directory.
    """
    for problem in index_problems(index):
        report.add("index", "error", f"{INDEX_NAME}: {problem}")
    usable = []
    for i, shard in enumerate(index["shards"]):
        problems = shard_problems(shard, i)
        name = shard.get("bin") if isinstance(shard, dict) and isinstance(shard.get("bin"), str) else None
        for problem in problems:
            report.add("index", "error", f"{INDEX_NAME}: {problem}; this shard is not checked", shard=name)
        if not problems:
            usable.append(shard)
    return usable


def _progress(shards: list, enabled: bool):
    """Yield ``shards`` under a byte-scaled tqdm bar (the bins dominate the reading time)."""
    from tqdm.auto import tqdm

    with tqdm(total=sum(int(s.get("bin_bytes", 0)) for s in shards), unit="B", unit_scale=True,
              desc="validate", disable=not enabled) as bar:
        for shard in shards:
            yield shard
            bar.update(int(shard.get("bin_bytes", 0)))


def _check_index(index: dict, ctx: Context) -> None:
    """Schema and storage settings known; trace ids unique; ``n_traces`` consistent."""
    add, schema, storage = ctx.report.add, ctx.schema, ctx.storage
    if schema.get("kind") not in (TRACES_KIND, FEATURES_KIND):
        add("schema", "warning", f"schema kind is {schema.get('kind')!r}, expected {TRACES_KIND!r} or "
            f"{FEATURES_KIND!r}")
    if storage.get("codec") != CODEC:
        add("schema", "error", f"storage codec {storage.get('codec')!r} is unknown (this truthtrace reads {CODEC!r})")
    if storage.get("dtype") not in STORAGE_DTYPES:
        add("schema", "error", f"storage dtype {storage.get('dtype')!r} is not one of {STORAGE_DTYPES}")
    for name in ("n_layers", "n_heads", "d_model"):
        if schema.get(name) is not None and not (isinstance(schema[name], int) and schema[name] > 0):
            add("schema", "error", f"schema field {name!r} must be a positive int, got {schema[name]!r}")
    for name in ("hidden_layers", "attn_layers"):
        if schema.get(name) is not None and layer_list(schema[name]) is None:
            add("schema", "error", f"schema field {name!r} must be a list of layer numbers, got "
                f"{repr(schema[name])[:40]}")
    seen: dict[str, str] = {}
    for shard in index["shards"]:
        for trace_id in _ids(shard):
            if trace_id in seen:
                add("index", "error", f"trace id {trace_id!r} is listed in {seen[trace_id]} and again here",
                    shard=str(shard["bin"]), trace_id=trace_id)
            seen[trace_id] = str(shard["bin"])
    listed = sum(len(_ids(s)) for s in index["shards"])
    if type_problem(index["n_traces"], int, "n_traces") is None and index["n_traces"] != listed:
        add("index", "error", f"n_traces is {index['n_traces']} but the shards list {listed} ids")


def _check_files(root: Path, index: dict, shards: list[dict], report: ValidationReport) -> None:
    """Usable ``shards``' files present with the right size; report files no entry of the index names (a feature
    store's ``split.json`` and ``pca.safetensors`` aside)."""
    schema = index["schema"] if isinstance(index["schema"], dict) else {}
    feature_store = schema.get("kind") == FEATURES_KIND
    listed = {s[kind] for s in index["shards"] if isinstance(s, dict) for kind in ("bin", "json")
              if isinstance(s.get(kind), str)}
    for shard in shards:
        for kind in ("bin", "json"):
            name = shard[kind]
            path, status = root / name, shard_file_status(root, shard, kind, checksum=False)
            if status == "missing":
                ids = shard["ids"]
                report.add("files", "error", f"{name} is missing: {len(ids)} traces cannot be read "
                           f"({preview_ids(ids)})", shard=shard["bin"])
            elif status == "size":
                report.add("files", "error", f"{name} is {path.stat().st_size} bytes, index.json says "
                           f"{shard[f'{kind}_bytes']} (truncated or overwritten)", shard=shard["bin"])
    for name in sorted(os.listdir(root)):
        if name in listed or name in (INDEX_NAME, LOCK_NAME):
            continue
        if TMP_RE.match(name):
            report.add("files", "warning", f"stray temp file {name}: a writer is running or was interrupted "
                       "(readers ignore it, a resuming writer deletes it)")
        elif SHARD_RE.match(name):
            report.add("files", "error", f"stray shard file {name} is not listed in index.json: its traces "
                       "are not part of the store (an interrupted writer left it; a resuming writer deletes it)")
        elif not (feature_store and name in FEATURE_FILES):  # a feature store's split and PCA sit beside its shards
            report.add("files", "warning", f"unexpected file {name} in the store directory")


def _read(path: Path) -> bytes | None:
    """The whole file (opened read-only), or None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _shard_doc(root: Path, shard: dict, ctx: Context) -> dict | None:
    """Parse the shard document, reporting checksum, version and id problems; None if unusable."""
    name, add = shard["bin"], ctx.report.add
    data = _read(root / shard["json"])
    if data is None:
        return None  # already reported as missing by _check_files
    if shard_file_status(root, shard, "json", data) == "sha256":
        add("checksum", "error", f"{shard['json']}: sha256 differs from index.json (the shard document is "
            "corrupt or was edited); checking what can still be parsed", shard=name)
    try:
        doc = parse_json(data, root / shard["json"])
        check_version(doc, SHARD_FORMAT, root / shard["json"])
        if not isinstance(doc.get("traces"), list):
            raise StoreError(type_problem(doc.get("traces"), list, "traces"))
        ids = [r.get("id") if isinstance(r, dict) else None for r in doc["traces"]]
    except StoreError as err:
        add("shard_doc", "error", f"{shard['json']} is unusable ({err}); traces {preview_ids(shard['ids'])} "
            "cannot be checked", shard=name)
        return None
    if ids != shard["ids"]:
        add("shard_doc", "error", f"{shard['json']} lists traces {preview_ids(ids)}, index.json lists "
            f"{preview_ids(shard['ids'])}", shard=name)
    return doc


def _check_shard(root: Path, shard: dict, ctx: Context) -> None:
    """All checks of one shard; the ``.bin`` is read once and every chunk decoded from memory."""
    report = ctx.report
    report.counts["shards"] += 1  # its file names were checked by _usable_shards: none leaves the store directory
    doc = _shard_doc(root, shard, ctx)
    buf = _read(root / shard["bin"])
    if buf is not None:
        report.counts["bytes_read"] += len(buf)
        if shard_file_status(root, shard, "bin", buf) == "sha256":
            report.add("checksum", "error", f"{shard['bin']}: sha256 differs from index.json (the shard is "
                       "corrupt); the traces whose chunks are damaged are listed below", shard=shard["bin"])
    if doc is not None:
        _check_records(doc["traces"], buf, shard, ctx)


def _check_records(records: list, buf: bytes | None, shard: dict, ctx: Context) -> None:
    """Every trace record of one shard document; a record of the wrong layout is reported and skipped.
    The first record's decoded tensors are the base later records' ``shared_rows`` are checked against."""
    base: dict = {}
    for i, record in enumerate(records):
        ctx.report.counts["traces"] += 1
        problems = record_problems(record)
        tid = record.get("id") if isinstance(record, dict) and isinstance(record.get("id"), str) else None
        for problem in problems:
            ctx.report.add("shard_doc", "error", f"{shard['json']}: traces[{i}]: {problem}; this trace is not "
                           "checked", shard=shard["bin"], trace_id=tid)
        if problems:
            continue
        try:
            decoded = check_record(record, buf if ctx.config.check_values else None, shard["bin"], ctx,
                                   base if i else None)
            base = decoded if i == 0 else base
        except Exception as err:  # one strange record must not stop the rest of the shard
            ctx.report.add("internal", "error", f"checking stopped for this trace: {type(err).__name__}: {err}",
                           shard=shard["bin"], trace_id=tid)
