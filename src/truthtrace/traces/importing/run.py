"""The ``import`` stage: turn ad-hoc research trace files into a truthtrace trace store.

:mod:`truthtrace.traces.importing.readers` reads the files (``*.pkl``, ``*.pkl.gz``, ``*.pt``) and maps each
record to store tensors and meta; this module runs the import: it opens the store lazily with
the schema of the first importable record, writes every record that fits it, and merges the
records' labels into a ``labels.csv``. A record that cannot be imported is skipped with a
reason; the import never stops for one bad record or file. Already-stored ids are skipped,
so an import can be re-run to resume.
"""

from __future__ import annotations

import time
from pathlib import Path

from truthtrace.fileio import check_output_apart
from truthtrace.labels.io import default_labels_path, read_labels, write_labels
from truthtrace.labels.score import answer_span, score_answer
from truthtrace.store import TraceStore, TraceWriter
from truthtrace.traces.importing.readers import (
    SUFFIXES,
    ImportConfig,
    find_sources,
    load_records,
    record_id,
    record_meta,
    record_tensors,
)
from truthtrace.traces.importing.schema import infer_schema, schema_mismatch


def import_traces(sources, out, config: ImportConfig | None = None) -> dict:
    """Import ad-hoc trace files into the trace store at ``out`` (resumable).

    Args:
        sources: files and/or folders (searched recursively for ``*.pkl``, ``*.pkl.gz``, ``*.pt``).
        out: trace store directory (created, or continued when it exists).
        config: :class:`ImportConfig`.

    Returns:
        summary dict: store, files, files_read, records, imported, already_stored,
        skipped (``[{file, index, id, reason}]``), failed_files (``[{file, reason}]``),
        skipped_by_reason counts, seconds, and labels / n_labels when labels were written.

    Raises:
        FileNotFoundError: a source does not exist. ValueError: no input file, or the
            store holds another model. StoreError: the store cannot be continued.
    """
    from tqdm.auto import tqdm

    config = config or ImportConfig()
    out, start = Path(out), time.perf_counter()
    check_output_apart(out, {f"source {i + 1}": s for i, s in enumerate(sources)})
    files = find_sources(sources)
    if not files:
        raise ValueError(f"no {'/'.join(SUFFIXES)} files found in {list(map(str, sources))}")
    run = _Importer(out, config, [str(s) for s in sources])
    run.summary["files"] = len(files)
    try:
        for path in tqdm(files, desc="import", unit="file", disable=not config.progress):
            try:
                records = load_records(path, config.trust_pickle)
            except Exception as err:  # unreadable, refused or odd file: report it and go on
                run.summary["failed_files"].append({"file": str(path), "reason": f"{type(err).__name__}: {err}"})
                continue
            run.summary["files_read"] += 1
            for index, rec in enumerate(records):
                run.add(path, index, rec)
    finally:
        if run.writer is not None:
            run.writer.close()
    labels_csv = Path(config.labels_csv) if config.labels_csv else default_labels_path(out)
    _write_labels(labels_csv, run.labels, run.summary)
    reasons: dict[str, int] = {}
    for s in run.summary["skipped"]:
        reasons[s["reason"].split(":")[0]] = reasons.get(s["reason"].split(":")[0], 0) + 1
    return {**run.summary, "skipped_by_reason": reasons, "seconds": round(time.perf_counter() - start, 2)}


def _label_row(trace_id: str, meta: dict) -> dict:
    """One ``labels.csv`` row in :mod:`truthtrace.labels.score`' columns; scores computed when answers are known."""
    scores = {"exact_match": 0, "contains": 0, "f1": 0.0, "rougeL": 0.0}
    if meta["answers"]:
        scores = score_answer(answer_span(meta["generation"]), meta["answers"])
    return {"trace_id": trace_id, "question_id": meta["question_id"], "category": meta["category"], **scores,
            "correct": 1 - meta["label"], "hallucinated": meta["label"], "generation": meta["generation"],
            "answers": "|".join(meta["answers"])}


def _write_labels(path: Path, rows: dict[str, dict], summary: dict) -> None:
    """Merge ``rows`` into the labels CSV at ``path`` (rows of earlier imports are kept)."""
    if not rows:
        return
    try:
        merged = read_labels(path) if path.exists() else {}
    except ValueError as err:
        summary["labels_error"] = f"{path} exists but cannot be read ({err}); labels not written"
        return
    merged.update(rows)
    write_labels(merged.values(), path)
    summary["labels"], summary["n_labels"] = str(path), len(merged)



class _Importer:
    """State of one import run: the lazily opened writer, the schema, seen ids, labels and the summary."""

    def __init__(self, out: Path, config: ImportConfig, sources: list[str]):
        self.out, self.config, self.sources = out, config, sources
        self.schema = TraceStore(out).schema if (out / "index.json").is_file() else None
        if self.schema is not None and self.schema.get("model") != config.model != "unknown":
            raise ValueError(f"{out} holds traces of model {self.schema.get('model')!r}, not {config.model!r}")
        self.writer, self.seen, self.labels = None, set(), {}
        self.summary = {"store": str(out), "files": 0, "files_read": 0, "records": 0, "imported": 0,
                        "already_stored": 0, "skipped": [], "failed_files": []}

    def skip(self, path: Path, index: int, trace_id, reason: str) -> None:
        self.summary["skipped"].append({"file": str(path), "index": index, "id": trace_id, "reason": reason})

    def add(self, path: Path, index: int, rec: dict) -> None:
        """Import one record, or record why it was skipped."""
        self.summary["records"] += 1
        try:
            tid = record_id(rec, path, index)
        except ValueError as err:
            return self.skip(path, index, None, str(err))
        if tid in self.seen:
            return self.skip(path, index, tid, "duplicate id (an earlier record of this import has it)")
        self.seen.add(tid)
        try:
            tensors = record_tensors(rec)
            meta = record_meta(rec, tid, tensors)
        except (ValueError, TypeError, RuntimeError, KeyError, IndexError) as err:
            return self.skip(path, index, tid, str(err))
        if self.schema is None:
            self.schema = infer_schema(tensors, self.config, self.sources)
        elif (why := schema_mismatch(tensors, self.schema)) is not None:
            return self.skip(path, index, tid, f"inconsistent shapes: {why}")
        return self._write(path, index, tid, tensors, meta)

    def _write(self, path: Path, index: int, tid: str, tensors: dict, meta: dict) -> None:
        """Store a record that fits the schema (opening the writer on first use) and keep its label row."""
        if self.writer is None:
            self.writer = TraceWriter(self.out, self.schema, storage_dtype=self.config.storage_dtype,
                                      shard_max_traces=self.config.shard_max_traces)
        if "label" in meta:
            self.labels[tid] = _label_row(tid, meta)
        if self.writer.has(tid):
            self.summary["already_stored"] += 1
            return None
        try:
            self.writer.add(tid, tensors, meta)
        except ValueError as err:
            self.labels.pop(tid, None)
            return self.skip(path, index, tid, str(err))
        self.summary["imported"] += 1
        return None
