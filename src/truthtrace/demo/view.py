"""What the web demo shows, as plain values: checked questions, highlighted tokens, the meter, the scores table.

Nothing here imports gradio; :mod:`truthtrace.demo.app` puts these values into its components.
"""

from __future__ import annotations

import html
import unicodedata

MAX_QUESTION_CHARS = 2000
SCORE_HEADERS = ["detector", "family", "P(made up)", "raw score", "pre-answer", "calibrated", "drives the meter"]
MADE_UP, SUPPORTED = "made up", "not made up"


def check_question(question) -> str | None:
    """Why ``question`` cannot be asked (empty, too long, not text), or None when it can."""
    if not isinstance(question, str):
        return f"the question must be text, got {type(question).__name__}"
    if not question.strip():
        return "the question is empty: type a question or pick an example"
    if len(question) > MAX_QUESTION_CHARS:
        return f"the question has {len(question)} characters, over the limit of {MAX_QUESTION_CHARS}: shorten it"
    if any(unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") and c not in "\n\t\r" for c in question):
        return "the question must be plain text: it holds control or unassigned characters"
    return None


def error_html(message: str | None) -> str:
    """The visible error box of ``message`` ("" for none)."""
    if not message:
        return ""
    return f'<div class="tt-error" role="alert"><strong>Error:</strong> {html.escape(message)}</div>'


def fmt(x, digits: int = 3) -> str:
    """A number for the table, "—" for None."""
    return "—" if x is None else f"{x:.{digits}f}"


def token_highlights(tokens: list[dict], primary: str | None) -> list[tuple[str, float | None]]:
    """``(text, risk)`` per token for ``gr.HighlightedText``: the primary detector's running probability."""
    return [(t["text"], (t.get("risk") or {}).get(primary) if primary else None) for t in tokens]


def meter(risk: float | None, detector: str | None, final: bool) -> tuple[dict | str, str]:
    """The meter's value (``gr.Label``) and its label: the probability that the answer is made up."""
    if risk is None:
        return "no calibrated detector", "P(made up)"
    label = f"P(made up), calibrated — {detector}" + ("" if final else " (answer so far)")
    return {MADE_UP: float(risk), SUPPORTED: 1.0 - float(risk)}, label


def score_rows(scores: dict, primary: str | None) -> list[list[str]]:
    """One table row per loaded detector (see :data:`SCORE_HEADERS`)."""
    return [[name, s.get("family") or "", fmt(s.get("probability")), fmt(s.get("score"), 4),
              fmt(s.get("pre_answer")), "yes" if s.get("calibrated") else "no", "yes" if name == primary else ""]
            for name, s in scores.items()]


def status_markdown(result: dict) -> str:
    """One line under the answer: guard verdict, model, dtype, device, speed, cache hit."""
    parts = []
    if result.get("abstained"):
        parts.append(f"**Withheld:** {result.get('reason')}")
    elif result.get("flagged"):
        parts.append(f"**Flagged:** {result.get('reason')}")
    t = result.get("timing") or {}
    speed = f"{t['tokens_per_s']:.1f} tokens/s" if t.get("tokens_per_s") else None
    ms = ", ".join(f"{k} {t[k + '_s'] * 1000:.0f} ms" for k in ("prefill", "decode", "detectors") if t.get(k + "_s"))
    facts = [result.get("model"), result.get("dtype"), result.get("device"), f"{len(result.get('tokens', []))} tokens",
             speed, ms or None, "from the cache" if result.get("cached") else None]
    parts.append(" · ".join(str(f) for f in facts if f))
    return "  \n".join(parts)


def cache_summary(stats: dict | None) -> dict:
    """The cache statistics shown in the demo (``{"cache": "off"}`` without a cache).

    The cache's ``path`` is shown as ``file``: a JSON value with a ``path`` key reads as a file to gradio_client.
    """
    if stats is None:
        return {"cache": "off"}
    stats = dict(stats)
    looked_up = stats.get("hits", 0) + stats.get("misses", 0)
    return {"file": stats.pop("path", None), **stats,
            "hit_rate": round(stats.get("hits", 0) / looked_up, 3) if looked_up else None}
