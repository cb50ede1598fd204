"""The live engine: answer questions and score each answer with trained detectors, in one pass.

    from truthtrace.inference import Engine, EngineConfig
    engine = Engine(EngineConfig(detectors=["runs/default/detectors"]))
    [result] = engine.answer(["Who wrote Hamlet?"])
    result["answer"], result["risk"], result["scores"]["probe"]["probability"]

Requests are queued and run in batches grouped by prompt length (left padded), up to ``max_batch``
requests and ``token_budget`` tokens. A request that cannot run (empty, not text, too long for the
context) gets its own error; a batch that fails is retried request by request, so one bad request
never costs the others. Hidden states and attention maps come from the generation steps themselves
(:func:`truthtrace.traces.capture.generate_with_traces`); the features are those ``preprocess`` would
store (:mod:`truthtrace.inference.live`). ``score`` scores answers that already exist with one
teacher-forced forward pass. Results are cached (:mod:`truthtrace.inference.cache`).
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass

import torch

from truthtrace import __version__
from truthtrace.inference.cache import ResultCache, cache_key
from truthtrace.inference.config import EngineConfig, auto_dtype
from truthtrace.inference.detectors import load_detector_set
from truthtrace.inference.live import (
    MemoryTrace,
    as_stored,
    detector_batch,
    live_features,
    prefix_features,
    running_scores,
)
from truthtrace.inference.results import (
    apply_guard,
    detector_scores,
    error_result,
    pick_primary,
    pick_token_detector,
    token_rows,
)
from truthtrace.inference.stream import stream as stream_answer
from truthtrace.inference.timing import StepTimer
from truthtrace.models.fingerprint import model_fingerprint
from truthtrace.models.load import load_model
from truthtrace.models.resolve import pick_device
from truthtrace.naming import SCALAR_ATTN_LOGDET, SCALAR_LOOKBACK
from truthtrace.traces.capture import (
    DEFAULT_TEMPLATE,
    CaptureOptions,
    build_prompt_ids,
    forward_traces,
    generate_with_traces,
    kept_start,
    prompt_limit,
)
from truthtrace.traces.exact_span import prefix_spans
from truthtrace.training.compile import compile_forward, restore_forward

ATTENTION_KEYS = frozenset({"graphs", SCALAR_LOOKBACK, SCALAR_ATTN_LOGDET})


@dataclass
class Request:
    """One queued request: its position, id, question, prompt ids and (``score``) the given answer's ids."""

    index: int
    id: str
    question: str
    prompt: list[int]
    answer: list[int] | None = None
    submitted: float = 0.0


class Engine:
    """Answers with the model the detectors were trained on and scores each answer (see the module docstring).

    Args:
        config: :class:`EngineConfig`.
        model, tokenizer: an already loaded model (tests pass a tiny one); else ``config.model`` or the
            detectors' own model is loaded.

    Raises:
        ValueError: bad detectors or config (naming the file or field).
    """

    def __init__(self, config: EngineConfig, model=None, tokenizer=None):
        self.config = config
        if config.threads:
            torch.set_num_threads(config.threads)
        self.detectors = load_detector_set(config.detectors)
        trace_schema = self.detectors.trace_schema
        self.generation = dict(trace_schema.get("generation") or {})
        if config.max_new_tokens:
            self.generation["max_new_tokens"] = config.max_new_tokens
        self.generation.setdefault("max_new_tokens", 24)
        attention = bool(ATTENTION_KEYS & set(self.detectors.keys))
        self.device = pick_device(config.device)
        self.dtype = auto_dtype(self.device) if config.dtype == "auto" else config.dtype
        if model is None:
            model, tokenizer = load_model(config.model or trace_schema["model"], self.dtype, str(self.device),
                                          attn_implementation="eager" if attention else "sdpa")
        else:  # a model given as is: record what it really runs in
            self.device, self.dtype = model.device, str(model.dtype).removeprefix("torch.")
        self.model, self.tokenizer = model, tokenizer
        self.model_id = getattr(model, "truthtrace_id", config.model or trace_schema.get("model"))
        self.fingerprint = model_fingerprint(model)
        compile_forward(model, config.compile, f"{self.model_id}.forward")  # undone by close()
        if trace_schema.get("model_fingerprint") not in (None, self.fingerprint):
            warnings.warn(f"{self.model_id}: other weights than the detectors' traces came from "
                          f"({trace_schema.get('model')}); their scores may not mean much", stacklevel=2)
        self.feature_schema = self._feature_schema(attention)
        self.opts = CaptureOptions(tuple(trace_schema["hidden_layers"]),
                                   tuple(trace_schema["attn_layers"]) if attention else (), attention,
                                   trace_schema.get("keep", "all"))
        self.limit, self.limit_reason = prompt_limit(model.config, self.generation["max_new_tokens"],
                                                     config.max_prompt_tokens)
        self.primary = pick_primary(self.detectors.detectors, config.primary)
        self.token_detector = pick_token_detector(self.detectors.detectors, self.primary)
        path = config.cache_path()
        self.cache = ResultCache(path) if path else None
        self.lock = threading.Lock()

    def _feature_schema(self, attention: bool) -> dict:
        """The feature schema, without attention features when no detector reads them (they are not captured)."""
        schema = dict(self.detectors.feature_schema)
        if not attention:
            schema.update(attn_layers=[], graph=None)
        return schema

    def describe(self) -> dict:
        """What the engine runs: model, dtype, device, detectors (name, seed, calibrated) and generation."""
        return {"model": self.model_id, "fingerprint": self.fingerprint, "dtype": self.dtype,
                "device": str(self.device), "primary": self.primary, "token_detector": self.token_detector,
                "generation": self.generation,
                "detectors": [{"name": d.name, "seed": d.seed, "path": str(d.path), "family": d.detector.family,
                               "calibrated": d.calibration is not None} for d in self.detectors.detectors]}

    # ---------------------------------------------------------------- requests

    def request(self, index: int, question, qid=None, answer=None) -> Request | dict:
        """A queued :class:`Request` for ``question`` (``answer``: score it instead), or the error result of one
        that cannot run (empty, not text, too long)."""
        rid = str(qid if qid is not None else index)
        req = Request(index, rid, question if isinstance(question, str) else repr(question)[:200], [],
                      submitted=time.perf_counter())
        if not isinstance(question, str) or not question.strip():
            return error_result(req, "the question is empty" if isinstance(question, str) else
                                f"the question must be text, got {type(question).__name__}")
        g = self.generation
        req.prompt = build_prompt_ids(self.tokenizer, question, g.get("prompt_template") or DEFAULT_TEMPLATE,
                                      g.get("use_chat_template", True), g.get("system_prompt"))
        if self.limit is not None and len(req.prompt) > self.limit:
            return error_result(req, f"the prompt has {len(req.prompt)} tokens, over the limit of {self.limit} "
                                     f"({self.limit_reason}); shorten the question")
        if answer is not None:
            if not isinstance(answer, str) or not answer.strip():
                return error_result(req, "the answer to score is empty or not text")
            req.answer = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
        return req

    def _key(self, req: Request) -> str | None:
        """The cache key of a request, or None when its result must not be cached (sampling, no cache)."""
        if self.cache is None or (self.generation.get("do_sample") and not self.config.cache_sampled):
            return None
        return cache_key({"truthtrace": __version__, "model": self.fingerprint, "dtype": self.dtype,
                          "tokenizer": [getattr(self.tokenizer, "name_or_path", ""), len(self.tokenizer),
                                        getattr(self.tokenizer, "chat_template", None)],
                          "prompt": req.prompt, "answer": req.answer, "generation": self.generation,
                          "detectors": [[d.name, d.seed, d.digest] for d in self.detectors.detectors],
                          "calibration": self.config.calibration})

    def answer(self, questions, ids=None) -> list[dict]:
        """Answer ``questions`` (list of text) and score every answer; one result per question, in order."""
        return self._serve([self.request(i, q, None if ids is None else ids[i]) for i, q in enumerate(questions)])

    def stream(self, question, qid=None):
        """Answer one question token by token: token events, then the result (see :mod:`.stream`)."""
        return stream_answer(self, question, qid)

    def score(self, pairs, ids=None) -> list[dict]:
        """Score existing answers: ``pairs`` of ``(question, answer)``, one teacher-forced pass per batch."""
        return self._serve([self.request(i, q, None if ids is None else ids[i], a)
                            for i, (q, a) in enumerate(pairs)])

    def _serve(self, items: list) -> list[dict]:
        results, todo = {}, []
        for n, item in enumerate(items):
            if isinstance(item, dict):
                results[n] = item
            elif (hit := self.cached(item)) is not None:
                results[n] = hit
            else:
                todo.append(item)
        with self.lock:  # one generation at a time: the stream's hooks see only their own steps
            for batch in self.buckets(todo):
                results.update(self.run(batch))
        return [self.guard(results[n]) for n in range(len(items))]

    def cached(self, req: Request) -> dict | None:
        """The cached result of ``req`` (marked ``cached``), or None."""
        key = self._key(req)
        found = self.cache.get(key) if key else None
        if found is None:
            return None
        t0 = time.perf_counter()
        return dict(found[0], id=req.id, cached=True, timing={"cache_s": time.perf_counter() - t0,
                                                              **found[0].get("timing", {})})

    def guard(self, result: dict) -> dict:
        """Apply the primary detector's risk and the guard of the config to one result."""
        if result.get("error"):
            return result
        result["token_risk_detector"] = self.token_detector
        return apply_guard(result, self.primary, self.config.guard, self.config.guard_action)

    def buckets(self, requests: list[Request]) -> list[list[Request]]:
        """Batches of requests of similar prompt length: at most ``max_batch`` and ``token_budget`` tokens each."""
        batches, current, tokens = [], [], 0
        for req in sorted(requests, key=lambda r: len(r.prompt) + len(r.answer or [])):
            need = len(req.prompt) + (len(req.answer) if req.answer is not None
                                      else self.generation["max_new_tokens"] + 1)
            if current and (len(current) >= self.config.max_batch or tokens + need > self.config.token_budget):
                batches.append(current)
                current, tokens = [], 0
            current.append(req)
            tokens += need
        return batches + ([current] if current else [])

    # ---------------------------------------------------------------- running a batch

    def run(self, batch: list[Request]) -> dict[int, dict]:
        """Results of one batch by request index; a failing batch is retried one request at a time."""
        try:
            return self._run_batch(batch)
        except Exception as err:  # one bad request must not cost the others
            if len(batch) == 1:
                return {batch[0].index: error_result(batch[0], f"could not answer: {type(err).__name__}: {err}")}
            out = {}
            for req in batch:
                out.update(self.run([req]))
            return out

    @torch.no_grad()
    def _run_batch(self, batch: list[Request]) -> dict[int, dict]:
        started = time.perf_counter()
        g, timer = self.generation, StepTimer(self.model)
        with timer:
            torch.manual_seed(int(g.get("seed", 0)))
            if batch[0].answer is None:
                answers, traces = generate_with_traces(
                    self.model, self.tokenizer, [r.prompt for r in batch], self.opts, g["max_new_tokens"],
                    g.get("do_sample", False), g.get("temperature", 1.0), g.get("top_p", 1.0))
            else:
                answers = [r.answer for r in batch]
                traces = forward_traces(self.model, [r.prompt + a for r, a in zip(batch, answers)],
                                        [len(r.prompt) for r in batch], self.opts, self.tokenizer.pad_token_id)
        t_det = time.perf_counter()
        results = self._score_batch(batch, answers, traces)
        detector_s = time.perf_counter() - t_det
        n_new = sum(len(a) for a in answers)
        for req in batch:
            res = results[req.index]
            res["timing"] = {"queue_s": started - req.submitted, "prefill_s": timer.prefill_s,
                             "decode_s": timer.decode_s, "detectors_s": detector_s, "batch_size": len(batch),
                             "tokens_per_s": n_new / max(timer.total_s, 1e-9)}
            key = self._key(req)
            if key:
                self.cache.put(key, res)
        return results

    def _score_batch(self, batch: list[Request], answers: list[list[int]], traces: list[dict]) -> dict[int, dict]:
        """Features of each answer, every detector's score on the batch, and the per-request results."""
        storage = self.detectors.trace_schema.get("storage_dtype", "float16")
        mems, prefixes = [], []
        for req, ans, tensors in zip(batch, answers, traces):
            n_tok = len(req.prompt) + len(ans)
            spans = prefix_spans(self.tokenizer, ans, req.question)  # the last one is the whole answer's
            meta = {"question_id": req.id, "n_prompt_tokens": len(req.prompt), "n_answer_tokens": len(ans),
                    "kept_start": kept_start(self.opts.keep, n_tok, len(req.prompt)), "exact_span": spans[-1]}
            mems.append(MemoryTrace(req.id, as_stored(tensors, storage), meta))
            prefixes.append(prefix_features(mems[-1], self.feature_schema, spans=spans))
        records = [(m.id, m.id, live_features(m, self.feature_schema, self.detectors.pca)) for m in mems]
        per_det = {}
        for d in self.detectors.detectors:
            raw = d.detector.score(iter([detector_batch(records, tuple(d.detector.inputs), self.feature_schema)]))
            per_det[d.name] = (d, raw)
        out = {}
        for i, (req, ans, mem) in enumerate(zip(batch, answers, mems)):
            scores = {name: detector_scores(d, float(raw[i]), running_scores(d.detector, prefixes[i], req.id,
                                                                              self.feature_schema),
                                            self.config.calibration) for name, (d, raw) in per_det.items()}
            out[req.index] = {
                "id": req.id, "question": req.question, "error": None, "cached": False,
                "answer": self.tokenizer.decode(ans, skip_special_tokens=True).strip(),
                "tokens": token_rows(self.tokenizer, ans, mem.tensors(), scores), "scores": scores,
                "model": self.model_id, "dtype": self.dtype, "device": str(self.device)}
        return out

    def close(self) -> None:
        """Close the cache file; give the model back its eager forward if ``compile`` replaced it."""
        restore_forward(self.model)
        if self.cache is not None:
            self.cache.close()
