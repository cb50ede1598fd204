"""The demo's behaviour without its layout: a question in, a stream of display updates out.

:class:`DemoSession` wraps an :class:`truthtrace.inference.Engine`. :meth:`DemoSession.respond` checks the
question, streams the answer's tokens as the engine generates them (each with the primary detector's
running risk), then shows the result: the calibrated meter, every detector's score, the guard's
verdict, the attention graph and the cache statistics. Each update is a dict with some of the keys
:data:`OUTPUTS`; a key left out keeps what is shown. A failure is a visible message, never a traceback.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

from truthtrace.data import load_bundled
from truthtrace.demo.attention import attention_map, draw_attention
from truthtrace.demo.view import cache_summary, check_question, meter, score_rows, status_markdown, token_highlights

OUTPUTS = ("error", "answer", "meter", "scores", "status", "graph", "cache")
FIGURES_KEPT = 16  # attention figures on disk at once (names are reused)


def example_questions(n: int = 6, seed: int = 0) -> list[str]:
    """``n`` bundled questions, spread over the categories, for the demo's examples."""
    return [q.question for q in load_bundled(n=n, seed=seed)]


def cleared(error: str | None = None, status: str = "") -> dict:
    """An update that empties every output (and shows ``error``, if any)."""
    return {"error": error, "answer": [], "meter": (None, "P(made up)"), "scores": [], "status": status,
            "graph": None}


class DemoSession:
    """The demo's state: the engine and where attention figures are written (a fresh temporary folder)."""

    def __init__(self, engine, figure_dir: str | Path | None = None):
        self.engine = engine
        self.figure_dir = Path(figure_dir or tempfile.mkdtemp(prefix="truthtrace-demo-"))
        self.counter = itertools.count()

    def cache_stats(self) -> dict:
        """The engine's cache statistics (``{"cache": "off"}`` without a cache)."""
        return cache_summary(self.engine.cache.stats() if self.engine.cache is not None else None)

    def respond(self, question) -> Iterator[dict]:
        """Updates for one question: a cleared screen, one per streamed token, the result, the attention graph."""
        problem = check_question(question)
        if problem:
            yield cleared(problem)
            return
        yield cleared(status="generating…")
        primary, colour, tokens = self.engine.primary, self.engine.token_detector, []
        try:
            for event in self.engine.stream(question):
                if event["type"] == "token":
                    tokens.append(event)
                    running = (event.get("risk") or {}).get(primary)  # None: the primary scores whole answers only
                    yield {"answer": token_highlights(tokens, colour),
                           **({"meter": meter(running, primary, False)} if running is not None else {})}
                else:
                    yield from self.finish(event["result"])
        except Exception as err:  # the page shows what went wrong; the server log keeps the rest
            yield cleared(f"could not answer: {type(err).__name__}: {err}")

    def finish(self, result: dict) -> Iterator[dict]:
        """The updates of a finished result: the answer, meter, scores and status, then the attention graph."""
        if result.get("error"):
            yield {**cleared(result["error"]), "cache": self.cache_stats()}
            return
        answer = token_highlights(result["tokens"], result.get("token_risk_detector"))
        if result.get("abstained"):
            answer = [("(answer withheld)", None)]
        yield {"error": None, "answer": answer, "meter": meter(result.get("risk"), result.get("risk_detector"), True),
               "scores": score_rows(result["scores"], result.get("risk_detector")),
               "status": status_markdown(result), "cache": self.cache_stats()}
        graph, note = self.graph(result)
        if note:
            yield {"graph": None, "status": status_markdown(result) + f"  \n*{note}*"}
        else:
            yield {"graph": str(graph)}

    def graph(self, result: dict) -> tuple[Path | None, str | None]:
        """The attention graph's PNG, or None and why there is none."""
        try:
            att = attention_map(self.engine, result)
            if att is None:
                return None, "no attention graph: the answer has no tokens"
            stem = self.figure_dir / f"attention-{next(self.counter) % FIGURES_KEPT}"
            return draw_attention(att, self.engine.tokenizer, stem), None
        except Exception as err:  # a missing extra or a model without attention maps: say so, keep the answer
            return None, f"no attention graph: {type(err).__name__}: {err}"
