"""A live result in the terminal (rich): the answer coloured by risk, the detectors' scores, risk and timing.

Each answer token is coloured by the primary detector's running probability after it, from green (0)
through yellow (0.5) to red (1); a token without a running risk (no calibrated detector that runs
live) is shown plainly.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

MISSING = "-"
ANSWER_WIDTH = 48  # characters of an answer shown in the table of many results


def risk_color(p: float) -> str:
    """The rich colour of probability ``p``: green at 0, yellow at 0.5, red at 1 (clipped to [0, 1])."""
    p = min(max(float(p), 0.0), 1.0)
    return f"rgb({round(255 * min(1.0, 2 * p))},{round(200 * min(1.0, 2 * (1 - p)))},0)"


def number(x, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals, or ``-`` for None."""
    return MISSING if x is None else f"{x:.{digits}f}"


def answer_text(result: dict) -> Text:
    """The answer, each token coloured by the primary detector's running risk; the error or a withheld note."""
    if result.get("error"):
        return Text(f"error: {result['error']}", style="bold red")
    if result.get("abstained"):
        return Text("(answer withheld by the guard)", style="bold red")
    primary = result.get("token_risk_detector", result.get("risk_detector"))
    tokens, answer = result.get("tokens") or [], result.get("answer") or ""
    risks = [(t.get("risk") or {}).get(primary) if primary else None for t in tokens]
    if "".join(t["text"] for t in tokens).strip() != answer:  # e.g. a character split over tokens
        return Text(answer, style=f"bold {risk_color(risks[-1])}" if risks and risks[-1] is not None else "")
    text = Text()
    for i, (token, risk) in enumerate(zip(tokens, risks)):
        text.append(token["text"].lstrip() if i == 0 else token["text"],
                    style="" if risk is None else f"bold {risk_color(risk)}")
    return text


def scores_table(result: dict) -> Table:
    """Every detector's family, raw score, calibrated probability and pre-answer score (primary marked ``*``)."""
    table = Table(title="detectors", title_justify="left")
    for column in ("detector", "family", "score", "probability", "pre-answer"):
        table.add_column(column, justify="left" if column in ("detector", "family") else "right")
    for name, entry in (result.get("scores") or {}).items():
        prob = entry.get("probability")
        table.add_row(name + (" *" if name == result.get("risk_detector") else ""), str(entry.get("family")),
                      number(entry.get("score")), Text(number(prob), style=risk_color(prob) if prob is not None
                                                       else ""), number(entry.get("pre_answer")))
    return table


def verdict_text(result: dict) -> Text:
    """The overall risk and its detector, then flagged/abstained with the reason."""
    risk = result.get("risk")
    text = Text("risk ")
    text.append(number(risk), style=f"bold {risk_color(risk)}" if risk is not None else "")
    text.append(f" ({result.get('risk_detector') or 'no calibrated detector'})")
    if result.get("abstained"):
        text.append(f"  abstained: {result.get('reason')}", style="bold red")
    elif result.get("flagged"):
        text.append(f"  flagged: {result.get('reason')}", style="bold yellow")
    return text


def timing_text(result: dict) -> Text:
    """Prefill, decode and detector time, tokens/s and whether the result came from the cache."""
    t = result.get("timing") or {}
    parts = [f"prefill {number(t.get('prefill_s'))} s", f"decode {number(t.get('decode_s'))} s",
             f"detectors {number(t.get('detectors_s'))} s", f"{number(t.get('tokens_per_s'), 1)} tokens/s",
             f"cached {'yes' if result.get('cached') else 'no'}"]
    return Text(" | ".join(parts), style="dim")


def print_details(console: Console, result: dict) -> None:
    """Print what follows the answer: the scores table, the verdict and the timing."""
    console.print()
    console.print(scores_table(result))
    console.print(verdict_text(result), soft_wrap=True)
    console.print(timing_text(result), soft_wrap=True)


def print_result(console: Console, result: dict) -> None:
    """Print one result: the coloured answer, then :func:`print_details`.

    Lines of text are not wrapped by rich (the terminal wraps them), so a copied answer stays whole.
    """
    console.print(answer_text(result), soft_wrap=True)
    if not result.get("error"):
        print_details(console, result)


class TokenPrinter:
    """Prints streamed answer tokens as they come, each coloured by the primary detector's risk after it.

    The text is decoded from all the ids so far (``decode(ids) -> str``) and only what is new is printed,
    so a character split over several tokens appears whole once its last token arrives.
    """

    def __init__(self, console: Console, decode, primary: str | None):
        self.console, self.decode, self.primary = console, decode, primary
        self.ids: list[int] = []
        self.shown = ""

    def token(self, event: dict) -> None:
        """Print the new text of one token event (``{"id", "risk": {detector: p}, ...}``)."""
        self.ids.append(int(event["id"]))
        text = self.decode(self.ids).lstrip()
        if text.endswith("\ufffd"):  # the rest of a character is still to come
            return
        new = text[len(self.shown):] if text.startswith(self.shown) else text
        self.shown = text
        risk = (event.get("risk") or {}).get(self.primary) if self.primary else None
        self.console.print(Text(new, style="" if risk is None else f"bold {risk_color(risk)}"), end="",
                           soft_wrap=True)


def _short(text: str | None, width: int = ANSWER_WIDTH) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def results_table(results: list[dict]) -> Table:
    """Many results, one row each: id, answer, risk, each detector's probability (raw score if uncalibrated)."""
    names = list(dict.fromkeys(n for r in results for n in (r.get("scores") or {})))
    table = Table()
    for column in ("id", "answer", "risk", *names):
        table.add_column(column, justify="left" if column in ("id", "answer") else "right")
    for r in results:
        if r.get("error"):
            table.add_row(r.get("id"), Text(_short("error: " + r["error"]), style="red"), *[""] * (1 + len(names)))
            continue
        scores = r.get("scores") or {}
        cells = [number(s.get("probability") if s.get("calibrated") else s.get("score"))
                 for s in (scores.get(n, {}) for n in names)]
        risk = r.get("risk")
        table.add_row(r.get("id"), _short(r.get("answer") or "(withheld)"),
                      Text(number(risk), style=risk_color(risk) if risk is not None else ""), *cells)
    return table
