"""Stream one answer token by token, each with its log-prob, entropy and the detectors' running risk.

``stream(engine, question)`` runs the engine's usual batch of one in a worker thread with a forward hook
on the model. Every generation step hands the hook the token it was fed, that token's hidden states and
the distribution of the next token. Answer token ``j`` is sampled from step ``j``'s distribution and fed
at step ``j + 1``: its event goes out then, with the risk of the answer so far (the prefix features of
:func:`truthtrace.inference.live.prefix_features`, the same as the final result's ``running``).
The last event is the engine's own result for the request, exactly what ``engine.answer`` returns::

    {"type": "token", "index": j, "id", "text", "logprob", "entropy", "risk": {detector: p}}
    {"type": "result", "result": {...}}    or    {"type": "error", "result": {...}}
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import torch

from truthtrace.inference.live import MemoryTrace, as_stored, detector_batch, prefix_features, runs_live
from truthtrace.inference.results import detector_scores, error_result
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS, layer_key
from truthtrace.traces.capture import kept_start
from truthtrace.traces.exact_span import span_meta


class StepTap:
    """Forward hook (``with_kwargs=True``) queueing ``(fed ids, hidden per layer (t, d), next-token logits (V,))``."""

    def __init__(self, layers: tuple[int, ...], events: queue.Queue):
        self.layers, self.events = layers, events

    def __call__(self, module, args, kwargs, output) -> None:
        ids = kwargs.get("input_ids")
        hidden = [output.hidden_states[i][0].float().cpu() for i in self.layers]
        fed = ids[0].tolist() if ids is not None else []
        self.events.put(("step", fed, hidden, output.logits[0, -1].float().cpu()))


class PrefixState:
    """The answer so far: prompt hidden states, each fed answer token's hidden states, log-probs and entropies."""

    def __init__(self, engine, prompt: list[int], question: str = ""):
        self.engine, self.prompt, self.question = engine, prompt, question
        self.layers = tuple(engine.feature_schema["hidden_layers"])
        self.hidden: list[list[torch.Tensor]] | None = None
        self.pending: torch.Tensor | None = None  # log-softmax of the distribution the next token comes from
        self.logprobs, self.entropies, self.ids = [], [], []

    def step(self, fed: list[int], hidden: list[torch.Tensor], logits: torch.Tensor) -> dict | None:
        """Take one generation step; the event of the answer token it fed, or None (the prompt, or past the end)."""
        event = None
        if self.hidden is None:
            self.hidden = [[h] for h in hidden]
        elif self.pending is not None and fed and len(self.ids) < self.engine.generation["max_new_tokens"]:
            tok = fed[-1]
            self.ids.append(tok)
            self.logprobs.append(float(self.pending[tok]))
            self.entropies.append(float(-(self.pending.exp() * self.pending).sum()))
            for rows, h in zip(self.hidden, hidden):
                rows.append(h[-1:])
            event = self.event()
        self.pending = torch.log_softmax(logits, -1)
        return event

    def trace(self) -> MemoryTrace:
        """The answer so far as a trace, kept rows as the capture's ``keep`` rule keeps them."""
        p, a = len(self.prompt), len(self.ids)
        k0 = kept_start(self.engine.opts.keep, p + a, p)
        tensors = {layer_key(i, "hidden"): torch.cat(rows)[k0:] for i, rows in zip(self.layers, self.hidden)}
        tensors[ANSWER_LOGPROBS] = torch.tensor(self.logprobs)
        tensors[ANSWER_ENTROPY] = torch.tensor(self.entropies)
        storage = self.engine.detectors.trace_schema.get("storage_dtype", "float16")
        return MemoryTrace("stream", as_stored(tensors, storage), {
            "n_prompt_tokens": p, "n_answer_tokens": a, "kept_start": k0,
            "exact_span": span_meta(self.engine.tokenizer, self.ids, self.question)})  # the prefix's own span

    def event(self) -> dict:
        """The token event of the newest answer token, with every live detector's risk after it."""
        engine, j = self.engine, len(self.ids) - 1
        risk = {}
        live = [d for d in engine.detectors.detectors if runs_live(d.detector.inputs)]
        if live:
            trace = self.trace()
            [record] = prefix_features(trace, engine.feature_schema, first=len(self.ids))
            for d in live:
                raw = d.detector.score(iter([detector_batch([("stream", "stream", record)], tuple(d.detector.inputs),
                                                            engine.feature_schema)]))
                entry = detector_scores(d, float(raw[0]), [None, float(raw[0])], engine.config.calibration)
                risk[d.name] = entry["running"][0]
        return {"type": "token", "index": j, "id": self.ids[-1], "text": engine.tokenizer.decode([self.ids[-1]]),
                "logprob": self.logprobs[-1], "entropy": self.entropies[-1], "risk": risk}


def replay(result: dict) -> Iterator[dict]:
    """The events of a finished result (a cache hit): its tokens, then the result."""
    for j, tok in enumerate(result["tokens"]):
        yield {"type": "token", "index": j, **tok}
    yield {"type": "result", "result": result}


def stream(engine, question, qid=None) -> Iterator[dict]:
    """Answer ``question`` with ``engine``, yielding token events as they are generated, then the result."""
    req = engine.request(0, question, qid)
    if isinstance(req, dict):
        yield {"type": "error", "result": req}
        return
    hit = engine.cached(req)
    if hit is not None:
        yield from replay(engine.guard(hit))
        return
    events: queue.Queue = queue.Queue()
    state = PrefixState(engine, req.prompt, req.question)
    thread = threading.Thread(target=_generate, args=(engine, req, events, state.layers), daemon=True)
    thread.start()
    while True:
        kind, *payload = events.get()
        if kind == "step":
            event = state.step(*payload)
            if event is not None:
                yield event
            continue
        result = engine.guard(payload[0])
        yield {"type": "error" if result.get("error") else "result", "result": result}
        return


def _generate(engine, req, events: queue.Queue, layers: tuple[int, ...]) -> None:
    """Worker thread: the engine's batch of one under the step hook; queues ``("done", result)`` at the end."""
    try:
        with engine.lock:
            handle = engine.model.register_forward_hook(StepTap(layers, events), with_kwargs=True)
            try:
                result = engine.run([req])[req.index]
            finally:
                handle.remove()
    except BaseException as err:  # never leave the reader waiting
        result = error_result(req, f"could not answer: {type(err).__name__}: {err}")
    events.put(("done", result))
