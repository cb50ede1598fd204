"""Reading ad-hoc research trace files for the ``import`` stage: records -> store tensors, meta, schema.

The stage itself (store writing, labels, summary) is :func:`truthtrace.traces.importing.run.import_traces`.
Accepted inputs (files, or folders searched recursively):

- ``*.pkl`` / ``*.pkl.gz``: a list of record dicts (or one dict, or ``{id: record}``), each
  with ``hidden_states`` (one array per layer, ``(T, d)`` or ``(1, T, d)``, or one stacked
  ``(L+1, T, d)`` array) and optionally ``attentions`` (``(H, T, T)`` or ``(1, H, T, T)``
  per layer), ``id``/``question_id``, ``question``, ``answers``, ``answer``/``generation``,
  ``label`` (1 = hallucinated), ``input_ids``/``token_ids``, ``logprobs``, ``entropy``.
  Loaded with :mod:`truthtrace.traces.importing.safe_pickle` in a child process
  (:mod:`truthtrace.traces.importing.isolated`) unless ``trust_pickle``.
- ``*.pt``: the same structures made of tensors, loaded with ``torch.load(weights_only=True)``.

Every function here raises ``ValueError`` (or the loader's error) for a bad file or record;
the import run turns that into a skip with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from truthtrace.dtypes import STORAGE_DTYPES
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS, TOKEN_IDS, layer_key
from truthtrace.traces.importing.isolated import load_isolated
from truthtrace.traces.importing.safe_pickle import load_pickle

SUFFIXES = (".pkl", ".pkl.gz", ".pt")
_ID_FIELDS = ("id", "trace_id", "question_id")
_GEN_FIELDS = ("generation", "answer", "output", "response")
_ANSWERS_FIELDS = ("answers", "gold_answers", "aliases", "correct_answers")
_TOKEN_FIELDS = ("token_ids", "input_ids")
_LABEL_FIELDS = ("label", "hallucinated", "is_hallucination")


@dataclass
class ImportConfig:
    """Options of the import stage (ValueError names the bad field).

    Attributes:
        model: model name recorded in the schema ("unknown" if not given).
        trust_pickle: load pickles with the plain unpickler (they may run code).
        storage_dtype: "float16", "bfloat16" or "float32" for layer tensors.
        labels_csv: where labels go when records carry them (None: ``labels.csv`` beside the store).
        shard_max_traces: traces per shard.
        progress: show a progress bar.
    """

    model: str = "unknown"
    trust_pickle: bool = False
    storage_dtype: str = "float16"
    labels_csv: str | Path | None = None
    shard_max_traces: int = 64
    progress: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a non-empty string, got {self.model!r}")
        if self.storage_dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage_dtype must be float16, bfloat16 or float32, got {self.storage_dtype!r}")
        if not isinstance(self.shard_max_traces, int) or self.shard_max_traces < 1:
            raise ValueError(f"shard_max_traces must be a positive int, got {self.shard_max_traces!r}")


def find_sources(sources) -> list[Path]:
    """Files to import: each source file as is, folders searched recursively for :data:`SUFFIXES`.

    Raises:
        FileNotFoundError: a source does not exist.
    """
    out: list[Path] = []
    for src in map(Path, sources):
        if src.is_dir():
            out += sorted(p for p in src.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
        elif src.is_file():
            out.append(src)
        else:
            raise FileNotFoundError(f"{src}: no such file or folder")
    return list(dict.fromkeys(out))


def file_stem(path: Path) -> str:
    """``batch_003.pkl.gz`` -> ``batch_003``."""
    name = path.name
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def load_records(path: Path, trust_pickle: bool = False) -> list[dict]:
    """The record dicts held by one file.

    Raises:
        ValueError: the file holds something other than records.
        safe_pickle.PickleRefused, isolated.PickleCrashed, pickle.UnpicklingError, OSError, RuntimeError:
            unreadable file (refused, crashed its reader process, or malformed).
    """
    if path.name.endswith(".pt"):
        obj = torch.load(path, weights_only=True, map_location="cpu")
    else:
        obj = load_pickle(path, trusted=True) if trust_pickle else load_isolated(path)
    if isinstance(obj, dict) and ("hidden_states" in obj or any(str(k).startswith("layers.") for k in obj)):
        return [obj]
    if isinstance(obj, dict) and obj and all(isinstance(v, dict) for v in obj.values()):
        return [{"id": str(k), **v} for k, v in obj.items()]
    if isinstance(obj, (list, tuple)) and all(isinstance(r, dict) for r in obj):
        return list(obj)
    raise ValueError(f"{path.name}: expected a list of record dicts, one record dict or {{id: record}}, "
                     f"got {type(obj).__name__}")


def _tensor(x) -> torch.Tensor:
    """Array-like -> CPU tensor (numpy float16 and friends kept as they are)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x)))


def _layers(value, rank: int, what: str) -> list[torch.Tensor]:
    """Per-layer tensors of rank ``rank`` from a list or a stacked array; a leading batch of 1 is dropped."""
    if isinstance(value, (list, tuple)):
        items = [_tensor(v) for v in value]
    else:
        stacked = _tensor(value)
        if stacked.dim() == rank + 2 and stacked.shape[1] == 1:
            stacked = stacked[:, 0]
        if stacked.dim() != rank + 1:
            raise ValueError(f"{what} is one array of shape {tuple(stacked.shape)}, expected (layers, ...) "
                             f"with {rank} dims per layer")
        items = list(stacked.unbind(0))
    out = []
    for i, t in enumerate(items):
        if t.dim() == rank + 1 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != rank or not t.is_floating_point():
            raise ValueError(f"{what}[{i}] has shape {tuple(t.shape)} dtype {t.dtype}, expected {rank} float dims")
        out.append(t.contiguous())
    return out


def record_tensors(rec: dict) -> dict[str, torch.Tensor]:
    """Store tensors of one record: ``layers.{i}.hidden`` (T, d), ``layers.{i}.attn`` (H, T, T'), ids, log-probs.

    Raises:
        ValueError: missing ``hidden_states`` or inconsistent shapes (message says which).
    """
    if any(str(k).startswith("layers.") for k in rec):  # already in our naming
        tensors = {str(k): _tensor(v) for k, v in rec.items() if isinstance(v, (torch.Tensor, np.ndarray))}
        if not any(k.endswith(".hidden") for k in tensors):
            raise ValueError("no hidden states (layers.N.hidden)")
        return tensors
    if rec.get("hidden_states") is None:
        raise ValueError("no hidden_states")
    hidden = _layers(rec["hidden_states"], 2, "hidden_states")
    if len({tuple(h.shape) for h in hidden}) != 1:
        raise ValueError(f"hidden_states layers differ in shape: {sorted({tuple(h.shape) for h in hidden})}")
    n_tok = hidden[0].shape[0]
    tensors = {layer_key(i, "hidden"): h for i, h in enumerate(hidden)}
    if rec.get("attentions") is not None:
        attn = _layers(rec["attentions"], 3, "attentions")
        shapes = {tuple(a.shape) for a in attn}
        if len(shapes) != 1 or next(iter(shapes))[1] != n_tok:
            raise ValueError(f"attention shapes {sorted(shapes)} do not match {n_tok} hidden-state tokens")
        tensors.update({layer_key(i, "attn"): a for i, a in enumerate(attn)})
    ids = next((rec[f] for f in _TOKEN_FIELDS if rec.get(f) is not None), None)
    if ids is not None:
        ids = _tensor(ids).reshape(-1).to(torch.int64)
        fits = ids.numel() == 0 or (int(ids.min()) >= -2**31 and int(ids.max()) < 2**31)
        tensors[TOKEN_IDS] = ids.to(torch.int32) if fits else ids  # int32 like extract writes
        if tensors[TOKEN_IDS].numel() < n_tok:
            raise ValueError(f"{tensors[TOKEN_IDS].numel()} token ids for {n_tok} hidden-state tokens")
    for key, fields in ((ANSWER_LOGPROBS, ("logprobs", "answer_logprobs")),
                        (ANSWER_ENTROPY, ("entropy", "entropies", "answer_entropy"))):
        value = next((rec[f] for f in fields if rec.get(f) is not None), None)
        if value is not None:
            tensors[key] = _tensor(value).reshape(-1).to(torch.float32)
    return tensors


def text_value(value, field: str) -> str:
    """A record's text field as ``str``: strings as they are, bytes as UTF-8, numbers in decimal.

    Raises:
        ValueError: a list, dict, array or other container, which would otherwise be stored as its Python repr.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (str, np.str_)):
        return str(value)
    if isinstance(value, (bytes, np.bytes_)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"field {field!r} holds bytes that are not UTF-8 text") from None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"field {field!r} is a {type(value).__name__} ({str(value)[:60]}), expected text; "
                     "join it into one string before importing")


def answers_value(value, field: str) -> list[str]:
    """A record's gold answers: one text or a flat list/array of texts (see :func:`text_value`).

    Raises:
        ValueError: nested lists, dicts or non-text items.
    """
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [text_value(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return [text_value(value, field)]


def _texts(rec: dict, trace_id: str) -> dict[str, str]:
    """question_id, question, category and generation of a record, each the first of its fields present."""
    out = {}
    for name, fields, default in (("question_id", ("question_id", "id"), trace_id), ("question", ("question",), ""),
                                  ("category", ("category",), "unknown"), ("generation", _GEN_FIELDS, "")):
        field = next((f for f in fields if rec.get(f) is not None), None)
        out[name] = text_value(rec[field], field) if field else default
    return out


def _first(rec: dict, fields: tuple, default=None):
    return next((rec[f] for f in fields if rec.get(f) is not None), default)


def record_id(rec: dict, path: Path, index: int) -> str:
    """Trace id of record ``index`` of ``path``: its ``id``/``trace_id``/``question_id``, else ``{stem}-{index}``.

    Raises:
        ValueError: the id is a list, dict or array (see :func:`text_value`).
    """
    field = next((f for f in _ID_FIELDS if rec.get(f) is not None), None)
    return text_value(rec[field], field) if field else f"{file_stem(path)}-{index}"


def record_meta(rec: dict, trace_id: str, tensors: dict) -> dict:
    """JSON meta of one record, with token counts derived from the tensors when not given."""
    field = next((f for f in _ANSWERS_FIELDS if rec.get(f) is not None), None)
    answers = answers_value(rec[field], field) if field else []
    hidden = tensors.get(layer_key(0, "hidden"))
    n_kept = int(hidden.shape[0]) if hidden is not None else 0
    n_tok = int(tensors[TOKEN_IDS].numel()) if TOKEN_IDS in tensors else n_kept
    n_answer = int(tensors[ANSWER_LOGPROBS].numel()) if ANSWER_LOGPROBS in tensors else 0
    meta = {**_texts(rec, trace_id), "answers": answers,
            "n_prompt_tokens": int(rec.get("n_prompt_tokens", n_tok - n_answer)),
            "n_answer_tokens": int(rec.get("n_answer_tokens", n_answer)), "kept_start": n_tok - n_kept}
    label = _label(rec)
    if label is not None:
        meta["label"] = label
    return meta


def _label(rec: dict) -> int | None:
    """1 = hallucinated (``label``, ``hallucinated``, ``is_hallucination``), or from ``correct``; None if absent."""
    value = _first(rec, _LABEL_FIELDS)
    if value is None and rec.get("correct") is not None:
        value = 1 - int(rec["correct"])
    if value is None:
        return None
    value = int(value.item() if hasattr(value, "item") else value)
    if value not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {value}")
    return value
