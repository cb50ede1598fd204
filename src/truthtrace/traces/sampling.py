"""Stage ``sample``: K sampled answers per question beside the greedy one, for the sampling baselines.

    summary = sample_questions(questions, "runs/a/samples", SampleConfig(samples=10))

For each question the model answers greedily once (or the answer is taken from a trace store, so the
judged answer is the labelled one) and samples K more answers at ``temperature``/``top_p``. One forward
pass over the K samples (:func:`truthtrace.traces.capture.forward_traces`, the extract stage's own; or the
generation steps with ``capture="generate"``) gives their answer-token log-probs and entropies and the
middle-layer hidden state of their last answer token (INSIDE's embedding); the samples are clustered by
meaning (:mod:`truthtrace.traces.clusters`) and the model is asked whether the greedy answer is true (P(True),
Kadavath et al., 2022). Only that is stored (:mod:`truthtrace.features.samples`), one record per question.

Sample ``k`` of question ``q`` (id ``<q>#s<k>``) is drawn with its own generator, seeded by a hash of
``(seed, q, k)`` (:mod:`truthtrace.traces.seeded`), so ``sample_batch`` questions share one ``generate`` call
and a sample still does not depend on its batch or on which questions ran before: a resumed run (the store is
resumable like any trace store, even after ``kill -9``) gives the same samples (up to float round-off between
batch shapes, which can only matter where two tokens tie).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from truthtrace import __version__
from truthtrace.dtypes import COMPUTE_DTYPES
from truthtrace.models import DEFAULT_MODEL, load_model
from truthtrace.models.fingerprint import model_fingerprint
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS, layer_key
from truthtrace.store import TraceStore, TraceWriter
from truthtrace.features import samples as fmt
from truthtrace.traces.capture import (
    CAPTURE_MODES,
    DEFAULT_TEMPLATE,
    CaptureOptions,
    build_prompt_ids,
    fitting_prompts,
    forward_traces,
    generate_answers,
    generate_with_traces,
)
from truthtrace.traces.clusters import NliJudge, offline_clusters
from truthtrace.traces.seeded import SeededSampling, sample_seed

P_TRUE_TEMPLATE = ("Question: {question}\nProposed answer: {answer}\n"
                   "Is the proposed answer true or false? Reply with one word: True or False.")
TRUE_WORDS, FALSE_WORDS = ("True", " True", "true", " true"), ("False", " False", "false", " false")
SHARED_OPTIONS = ("model", "model_dtype", "device", "threads", "prompt_template", "system_prompt",
                  "use_chat_template", "max_new_tokens", "max_prompt_tokens", "seed", "batch_size", "capture")


@dataclass
class SampleConfig:
    """Options of the sample stage; validated on construction (ValueError names the field).

    The model and prompt options mean what they mean for ``extract`` (:meth:`from_options` copies them from
    an extract config). ``samples`` answers are sampled per question at ``temperature``/``top_p``;
    ``embedding_layer`` is the hidden-state layer of the stored embeddings (None: ``(L + 1) // 2``, the middle
    one, as INSIDE's code takes it); ``nli_model`` a local NLI model folder for the semantic clusters (None:
    offline clusters); ``p_true`` asks the model whether its greedy answer is true; ``capture`` "forward" takes the
    samples' tensors from one exact pass after generating, "generate" from the generation steps (faster; equal
    within round-off, as for ``extract --capture generate``); ``sample_batch`` questions are sampled in one
    ``generate`` call (the samples do not depend on it, so it is not part of the store's schema).
    """

    model: str = DEFAULT_MODEL
    model_dtype: str = "float32"
    device: str = "auto"
    threads: int | None = None
    prompt_template: str = DEFAULT_TEMPLATE
    system_prompt: str | None = None
    use_chat_template: bool = True
    max_new_tokens: int = 24
    max_prompt_tokens: int | None = None
    samples: int = 10
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 16  # questions per greedy batch
    sample_batch: int = 4  # questions sampled in one generate call (K rows each)
    embedding_layer: int | None = None
    nli_model: str | None = None
    p_true: bool = True
    capture: str = "forward"
    shard_max_traces: int = 32  # a crash loses at most one unflushed shard
    overwrite: bool = False

    def __post_init__(self):
        if "{question}" not in self.prompt_template:
            raise ValueError("prompt_template must contain '{question}'")
        for name in ("max_new_tokens", "samples", "batch_size", "sample_batch", "shard_max_traces"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        if self.samples < 2:
            raise ValueError(f"samples must be >= 2 (the baselines compare answers), got {self.samples}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.model_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"model_dtype must be one of {COMPUTE_DTYPES}, got {self.model_dtype!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.max_prompt_tokens is not None and self.max_prompt_tokens < 1:
            raise ValueError(f"max_prompt_tokens must be >= 1 or None, got {self.max_prompt_tokens}")
        if self.capture not in CAPTURE_MODES:
            raise ValueError(f"capture must be one of {CAPTURE_MODES}, got {self.capture!r}")
        if self.embedding_layer is not None and self.embedding_layer < 0:
            raise ValueError(f"embedding_layer must be >= 0 or None, got {self.embedding_layer}")

    @classmethod
    def from_options(cls, options, **overrides) -> "SampleConfig":
        """A config with the model/prompt options (:data:`SHARED_OPTIONS`) of ``options`` (e.g. an
        ``ExtractConfig``), then ``overrides`` (e.g. ``samples=10, temperature=1.0``)."""
        shared = {k: getattr(options, k) for k in SHARED_OPTIONS if hasattr(options, k)}
        return cls(**{**shared, **overrides})

    def layer(self, n_layers: int) -> int:
        """The embedding's hidden-state layer on a model of ``n_layers`` blocks (0..L); ValueError if beyond."""
        layer = (n_layers + 1) // 2 if self.embedding_layer is None else self.embedding_layer
        if layer > n_layers:
            raise ValueError(f"embedding_layer {layer} is beyond the model's {n_layers} layers")
        return layer


def sample_schema(config: SampleConfig, model, model_id: str) -> dict:
    """The samples store's schema; a resumed run must match it (other weights or settings are refused)."""
    n_layers = model.config.num_hidden_layers
    return {"kind": fmt.SAMPLES_KIND, "model": model_id, "model_fingerprint": model_fingerprint(model),
            "model_source": getattr(model, "truthtrace_path", None) or model_id, "volatile": ["model_source"],
            "model_dtype": config.model_dtype, "n_layers": n_layers, "d_model": model.config.hidden_size,
            "embedding_layer": config.layer(n_layers), "n_samples": config.samples,
            "clustering": f"nli:{Path(config.nli_model).name}" if config.nli_model else "offline",
            "capture": config.capture,
            "p_true_template": P_TRUE_TEMPLATE if config.p_true else None,
            "generation": {k: getattr(config, k) for k in (
                "prompt_template", "system_prompt", "use_chat_template", "max_new_tokens", "temperature",
                "top_p", "seed")}}


def word_ids(tokenizer, words: Sequence[str]) -> set[int]:
    """The first token id of each of ``words`` (how the model would start saying it)."""
    return {ids[0] for ids in (tokenizer.encode(w, add_special_tokens=False) for w in words) if ids}


@torch.no_grad()
def p_true(model, tokenizer, question: str, answer: str, config: SampleConfig) -> float:
    """P("True") / (P("True") + P("False")) for the model's next token after the P(True) prompt.

    The prompt (:data:`P_TRUE_TEMPLATE`, in the chat template when the tokenizer has one) shows the question
    and the proposed ``answer``; "True"/"False" count every casing and leading-space variant's first token.
    """
    content = P_TRUE_TEMPLATE.format(question=question, answer=answer)
    ids = build_prompt_ids(tokenizer, content, "{question}", config.use_chat_template, config.system_prompt)
    logits = model(input_ids=torch.tensor([ids], device=model.device), logits_to_keep=1).logits[0, -1]
    probs = torch.softmax(logits.float(), dim=-1)  # (V,)
    yes, no = word_ids(tokenizer, TRUE_WORDS), word_ids(tokenizer, FALSE_WORDS)
    yes, no = yes - no, no - yes  # a token both words start with says nothing
    p_yes, p_no = float(probs[list(yes)].sum()) if yes else 0.0, float(probs[list(no)].sum()) if no else 0.0
    return p_yes / (p_yes + p_no) if p_yes + p_no > 0 else 0.5


def sample_answers(model, tokenizer, question_ids: list[str], prompts: list[list[int]], config: SampleConfig,
                   layer: int) -> list[tuple[list[list[int]], dict[str, torch.Tensor]]]:
    """K sampled answers for each of a few questions, from one ``generate`` call over their K rows each.

    Returns:
        per question ``(answers, tensors)``: its K answers' token ids, and ``logprobs``/``entropy`` ``(K, A)``,
        ``n_tokens`` ``(K,)``, ``embedding`` ``(K, d)`` (last answer token at hidden layer ``layer``).
    """
    k = config.samples
    rows = [p for p in prompts for _ in range(k)]
    seeds = [sample_seed(config.seed, q, j) for q in question_ids for j in range(k)]
    noise = [SeededSampling(seeds, config.temperature, config.top_p)]  # greedy over seeded noise = sampling
    opts = CaptureOptions(hidden_layers=(layer,), attentions=False, keep="last:1")
    if config.capture == "generate":
        answers, recs = generate_with_traces(model, tokenizer, rows, opts, config.max_new_tokens,
                                             logits_processor=noise)
    else:
        answers = generate_answers(model, tokenizer, rows, config.max_new_tokens, logits_processor=noise)
        recs = forward_traces(model, [p + a for p, a in zip(rows, answers)], [len(p) for p in rows], opts,
                              tokenizer.pad_token_id)
    out = []
    for i in range(0, len(rows), k):
        ans, rec = answers[i:i + k], recs[i:i + k]
        out.append((ans, {fmt.LOGPROBS: fmt.pad_rows([r[ANSWER_LOGPROBS] for r in rec]),
                          fmt.ENTROPY: fmt.pad_rows([r[ANSWER_ENTROPY] for r in rec]),
                          fmt.N_TOKENS: torch.tensor([len(a) for a in ans], dtype=torch.int32),
                          fmt.EMBEDDING: torch.stack([r[layer_key(layer, "hidden")][-1] for r in rec]).float()}))
    return out


def question_record(model, tokenizer, q, answers: list[list[int]], tensors: dict, greedy: str,
                    config: SampleConfig, judge: NliJudge | None) -> tuple[dict, dict]:
    """One question's samples-store record ``(tensors, meta)`` (:mod:`truthtrace.features.samples`) from its
    sampled ``answers`` and their ``tensors`` (:func:`sample_answers`): texts, clusters and P(True) added."""
    texts = [tokenizer.decode(a, skip_special_tokens=True).strip() for a in answers]
    clusters = judge.clusters(q.question, texts) if judge is not None else offline_clusters(texts, q.question)
    tensors[fmt.CLUSTER_IDS] = torch.tensor(clusters, dtype=torch.int32)
    value = p_true(model, tokenizer, q.question, greedy, config) if config.p_true else float("nan")
    tensors[fmt.P_TRUE] = torch.tensor([value], dtype=torch.float32)
    meta = {"question_id": q.id, "question": q.question, "greedy": greedy, "samples": texts,
            "sample_ids": [fmt.sample_id(q.id, k) for k in range(len(texts))],
            "sample_seeds": [sample_seed(config.seed, q.id, k) for k in range(len(texts))]}
    return tensors, meta


def greedy_from_traces(store_path: str | Path) -> dict[str, str]:
    """``{question_id: generation}`` of a trace store: the answers its labels judge."""
    return {str(meta["question_id"]): str(meta.get("generation", ""))
            for _, meta in TraceStore(store_path).metas()}


def greedy_texts(model, tokenizer, questions: Sequence, prompts: list[list[int]], config: SampleConfig,
                 given: dict[str, str]) -> list[str]:
    """The greedy answer of each question: ``given[q.id]`` when there, else generated (batched, greedy)."""
    todo = [i for i, q in enumerate(questions) if q.id not in given]
    made: dict[int, str] = {}
    for s in range(0, len(todo), config.batch_size):
        part = todo[s:s + config.batch_size]
        ids = generate_answers(model, tokenizer, [prompts[i] for i in part], config.max_new_tokens)
        made.update({i: tokenizer.decode(a, skip_special_tokens=True).strip() for i, a in zip(part, ids)})
    return [given[q.id] if q.id in given else made[i] for i, q in enumerate(questions)]


def sample_questions(questions: Sequence, out_dir: str | Path, config: SampleConfig | None = None, model=None,
                     tokenizer=None, greedy: dict[str, str] | None = None, progress: bool = True) -> dict:
    """Sample ``config.samples`` answers per question and store them under ``out_dir`` (resumable).

    Args:
        questions: :class:`truthtrace.data.Question` s with unique ids.
        out_dir: the samples store.
        config: :class:`SampleConfig`.
        model, tokenizer: a loaded model to reuse (else ``config.model`` is loaded, SDPA attention).
        greedy: ``{question_id: answer}`` to judge instead of generating one (e.g. :func:`greedy_from_traces`).
        progress: show a tqdm bar.

    Returns:
        summary: n_questions, n_new, n_skipped, n_refused, refused, n_samples, seconds, samples_per_s, store.

    Raises:
        ValueError: duplicate question ids, a bad NLI model. StoreError: the store cannot be resumed (other
            weights or settings).
    """
    config = config or SampleConfig()
    if len({q.id for q in questions}) != len(questions):
        raise ValueError("question ids must be unique within one sampling run")
    if config.threads:
        torch.set_num_threads(config.threads)
    if model is None:
        model, tokenizer = load_model(config.model, config.model_dtype, config.device, attn_implementation="sdpa")
    judge = NliJudge(config.nli_model) if config.nli_model else None
    schema = sample_schema(config, model, getattr(model, "truthtrace_id", config.model))
    start = time.perf_counter()
    with TraceWriter(out_dir, schema, storage_dtype="float32", shard_max_traces=config.shard_max_traces,
                     resume=True, overwrite=config.overwrite) as writer:
        todo = [q for q in questions if not writer.has(q.id)]
        kept, prompts, refused = fitting_prompts(todo, tokenizer, config, model.config)
        n_new = _write(writer, model, tokenizer, kept, prompts, config, judge, greedy or {}, progress)
    seconds = time.perf_counter() - start
    n_samples = n_new * config.samples
    return {"store": str(out_dir), "n_questions": len(questions), "n_new": n_new,
            "n_skipped": len(questions) - len(todo), "n_refused": len(refused), "refused": refused,
            "n_samples": n_samples, "seconds": round(seconds, 2),
            "samples_per_s": round(n_samples / seconds, 3) if n_new else None,
            "truthtrace_version": __version__, "config": asdict(config)}


def _write(writer, model, tokenizer, questions, prompts, config: SampleConfig, judge, given: dict,
           progress: bool) -> int:
    """Sample ``questions`` batch by batch (greedy answers batched) into ``writer``; returns how many were added."""
    layer, start, n_new = config.layer(model.config.num_hidden_layers), time.perf_counter(), 0
    bar = tqdm(total=len(questions), desc="sample", unit="q", disable=not progress)
    for i in range(0, len(questions), config.batch_size):
        batch, batch_prompts = questions[i:i + config.batch_size], prompts[i:i + config.batch_size]
        greedy = greedy_texts(model, tokenizer, batch, batch_prompts, config, given)
        for j in range(0, len(batch), config.sample_batch):
            group = slice(j, j + config.sample_batch)
            sampled = sample_answers(model, tokenizer, [q.id for q in batch[group]], batch_prompts[group], config,
                                     layer)
            for q, g, (answers, tensors) in zip(batch[group], greedy[group], sampled):
                writer.add(q.id, *question_record(model, tokenizer, q, answers, tensors, g, config, judge))
                n_new += 1
                bar.update(1)
            bar.set_postfix(samples_per_s=f"{n_new * config.samples / (time.perf_counter() - start):.1f}")
    bar.close()
    return n_new
