"""Questions from a Hugging Face dataset: ``--questions hf:DATASET[:CONFIG][:SPLIT]`` (extra ``hf``).

``DATASET`` is a Hub id (``mandarjoshi/trivia_qa``), a local folder written by
``Dataset.save_to_disk``, or a local folder or file of parquet/JSON/CSV data; all but the
``save_to_disk`` folder go through :func:`datasets.load_dataset`. The column layouts of
TriviaQA (``question``, ``question_id``, ``answer.value``/``answer.aliases``), NQ-open
(``question``, an ``answer`` list), SQuAD (``id``, ``question``, ``context``,
``answers.text``; unanswerable v2 rows skipped) and TruthfulQA generation (``question``,
``best_answer``, ``correct_answers``, ``category``) are recognised from the first row, as the
file loaders recognise them; anything else is read with the generic column defaults.
``streaming=True`` reads rows lazily (stops after ``limit``), for datasets larger than memory.

>>> qs = load_hub_questions("hf:nq_open:validation", limit=100)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from truthtrace.data.fields import answer_list, get_field, require_text, text_field
from truthtrace.data.formats import Raw, nq_open_records, triviaqa_records
from truthtrace.data.loaders import build_questions, generic_records
from truthtrace.data.questions import Question

PREFIX = "hf:"
HUB_FORMATS = ("auto", "triviaqa", "nq_open", "squad", "truthfulqa", "generic")
_SPLIT_NAMES = {"train", "validation", "valid", "dev", "test"}
_FILE_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}
_GENERIC = {"question": None, "answers": None, "id": None, "category": None, "context": None}


@dataclass(frozen=True)
class HubSpec:
    """A parsed ``hf:DATASET[:CONFIG][:SPLIT]``: ``split`` None = the dataset's only split."""

    dataset: str
    config: str | None = None
    split: str | None = None

    @classmethod
    def parse(cls, text: str) -> "HubSpec":
        """Parse ``hf:DATASET[:CONFIG][:SPLIT]``; one part after DATASET is a split when it is
        train/validation/dev/test or a slice (``train[:100]``), else a config.

        Raises:
            ValueError: no ``hf:`` prefix, an empty part, or more than three parts.
        """
        if not text.startswith(PREFIX):
            raise ValueError(f"--questions {text!r}: a Hub dataset is written hf:DATASET[:CONFIG][:SPLIT]")
        parts = re.split(r":(?![^\[]*\])", text[len(PREFIX):])  # not the colon of a slice like train[:10]
        if len(parts) > 3 or not all(p.strip() for p in parts):
            raise ValueError(f"--questions {text!r}: expected hf:DATASET[:CONFIG][:SPLIT] with no empty part")
        if len(parts) == 2:
            is_split = parts[1].split("[")[0] in _SPLIT_NAMES or "[" in parts[1]
            return cls(parts[0], None if is_split else parts[1], parts[1] if is_split else None)
        return cls(parts[0], *(parts[1:] + [None] * (3 - len(parts))))


def is_hub_spec(text: str | None) -> bool:
    """True when ``text`` names a Hub dataset (starts with ``hf:``)."""
    return bool(text) and str(text).startswith(PREFIX)


def _datasets():
    """The ``datasets`` module, or an ImportError naming the extra."""
    try:
        import datasets
    except ImportError as e:
        raise ImportError("--questions hf:... needs the datasets package: pip install 'truthtrace[hf]'") from e
    return datasets


def _pick_split(data: Any, spec: HubSpec, text: str) -> Any:
    """One split of a (Iterable)DatasetDict: the named one, or the only one."""
    if not hasattr(data, "keys"):  # already a single split
        return data
    names = list(data.keys())
    if spec.split is not None:
        if spec.split not in names:
            raise ValueError(f"{text}: no split {spec.split!r}; the dataset has {names}")
        return data[spec.split]
    if len(names) != 1:
        raise ValueError(f"{text}: the dataset has splits {names}; name one: hf:{spec.dataset}"
                         f"{':' + spec.config if spec.config else ''}:{names[0]}")
    return data[names[0]]


def open_rows(text: str, streaming: bool = False, cache_dir: str | None = None) -> Iterable[dict]:
    """The rows (dicts) of the split ``text`` names, lazily when ``streaming``.

    Raises:
        ImportError: naming the ``hf`` extra when datasets is missing.
        ValueError: a malformed spec or an unknown or ambiguous split.
    """
    datasets = _datasets()
    spec = HubSpec.parse(text)
    local = Path(spec.dataset).expanduser()
    if local.is_dir() and ((local / "state.json").is_file() or (local / "dataset_dict.json").is_file()):
        data = _pick_split(datasets.load_from_disk(str(local)), spec, text)  # a save_to_disk folder
        return data.to_iterable_dataset() if streaming else data
    if streaming and spec.split and "[" in spec.split:
        raise ValueError(f"{text}: a split slice ({spec.split}) cannot be streamed; pass --n instead")
    if local.is_file() and local.suffix.lower() not in _FILE_BUILDERS:
        raise ValueError(f"{text}: a local file must be one of {sorted(_FILE_BUILDERS)}; for a question file "
                         f"drop the hf: prefix")
    path, config, files = str(local) if local.exists() else spec.dataset, spec.config, None
    if local.is_file():  # one data file: datasets' builder for its type, the file as the data
        path, files = _FILE_BUILDERS[local.suffix.lower()], str(local)
    try:
        data = datasets.load_dataset(path, config, data_files=files, split=spec.split, streaming=streaming,
                                     cache_dir=cache_dir)
    except ValueError as e:  # e.g. "Bad split: test. Available splits: [...]", which names no dataset
        raise ValueError(f"{text}: {e}") from None
    return _pick_split(data, spec, text)


def hub_format(first: dict) -> str:
    """The layout of a dataset from its first row: one of :data:`HUB_FORMATS` but "auto"."""
    answer, answers = get_field(first, "answer"), get_field(first, "answers")
    if isinstance(answer, dict) and "value" in answer:
        return "triviaqa"
    if isinstance(answers, dict) and "text" in answers:
        return "squad"
    if get_field(first, "best_answer") is not None and get_field(first, "correct_answers") is not None:
        return "truthfulqa"
    if isinstance(answer, list) and answers is None:
        return "nq_open"
    return "generic"


def squad_rows(records: Iterator[tuple[str, dict]]) -> Iterator[Raw]:
    """Hub SQuAD rows: ``answers`` is ``{"text": [...], "answer_start": [...]}``; no answer = unanswerable."""
    for where, rec in records:
        texts = (get_field(rec, "answers") or {}).get("text") or []
        if not texts:
            continue
        question = require_text(get_field(rec, "question"), where, "question")
        answers = answer_list(list(texts), where, "answers.text")
        context = text_field(get_field(rec, "context"), where, "context")
        yield where, text_field(get_field(rec, "id"), where, "id"), question, answers, "squad", context


def truthfulqa_rows(records: Iterator[tuple[str, dict]]) -> Iterator[Raw]:
    """Hub TruthfulQA (generation) rows: the best answer plus the ``correct_answers`` list."""
    for where, rec in records:
        question = require_text(get_field(rec, "question"), where, "question")
        best = require_text(get_field(rec, "best_answer"), where, "best_answer")
        correct = get_field(rec, "correct_answers") or []
        answers = answer_list([best] + list(correct), where, "correct_answers")
        category = text_field(get_field(rec, "category"), where, "category") or "truthfulqa"
        yield where, None, question, answers, category.strip(), None


_READERS = {"triviaqa": triviaqa_records, "nq_open": nq_open_records, "squad": squad_rows,
            "truthfulqa": truthfulqa_rows}


def load_hub_questions(text: str, fmt: str = "auto", limit: int | None = None, streaming: bool = False,
                       duplicates: str = "error", require_answers: bool = True,
                       cache_dir: str | None = None) -> list[Question]:
    """Load questions from ``hf:DATASET[:CONFIG][:SPLIT]``.

    Args:
        text: the spec (see :class:`HubSpec`).
        fmt: "auto" (from the first row) or one of :data:`HUB_FORMATS`; a file format name
            (jsonl/csv/json) means "generic".
        limit: stop after this many questions (with ``streaming``, no further row is read).
        streaming: read rows lazily instead of loading the split.
        duplicates, require_answers: as in :func:`truthtrace.data.load_questions`.
        cache_dir: the datasets cache (None = its default).

    Raises:
        ValueError: naming ``text``, the row and the field for a malformed row; an unknown format.
    """
    fmt = "generic" if fmt in ("jsonl", "csv", "json") else fmt
    if fmt not in HUB_FORMATS:
        raise ValueError(f"--format for a Hub dataset must be one of {HUB_FORMATS}, got {fmt!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    rows = iter(open_rows(text, streaming=streaming, cache_dir=cache_dir))
    first = next(rows, None)
    if first is None:
        raise ValueError(f"{text}: the split has no rows")
    fmt = hub_format(first) if fmt == "auto" else fmt

    def records() -> Iterator[tuple[str, dict]]:
        yield f"{text}: row 1", dict(first)
        for n, row in enumerate(rows, 2):
            yield f"{text}: row {n}", dict(row)

    reader = _READERS.get(fmt)
    raw = reader(records()) if reader else generic_records(records(), _GENERIC, False, require_answers)
    return build_questions(raw, fmt, text, limit, duplicates)
