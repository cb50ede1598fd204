"""One static HTML page gathering a run's figures (relative links, so the folder can be moved)."""

from __future__ import annotations

import html
import os
from pathlib import Path

from truthtrace.fileio import write_text_atomic

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table.meta{border-collapse:collapse}table.meta td{padding:.2em .8em .2em 0;vertical-align:top}
table.meta td:first-child{color:#555;white-space:nowrap}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}code,pre{background:#f5f5f5;padding:.1em .3em;border-radius:3px}
pre{padding:.6em;white-space:pre-wrap;word-break:break-all}
.hallucinated{color:#D55E00;font-weight:bold}.correct{color:#0072B2;font-weight:bold}
"""

FIGURE_TITLES = {"attention_graph": "Attention graph", "attention_heads": "Attention heads",
                 "attention_layers": "Attention across layers", "layer_profile": "Layer profile",
                 "roc": "Detector ROC curves"}
FIGURE_CAPTIONS = {
    "attention_graph": "Tokens in reading order; each arc joins a token (right end) to an earlier token it attends to.",
    "attention_heads": "Every head of the layer; rows are queries, columns keys; square-root colour scale.",
    "attention_layers": "Head-mean attention at several layers on one colour scale.",
    "layer_profile": "Per layer: mean L2 norm of the hidden state over tokens, and mean attention-row entropy; "
                     "bands are mean ± sd of sampled correct and hallucinated traces.",
    "roc": "Test-split ROC curve of each detector; legend gives AUROC with its 95% bootstrap interval.",
}


def page_info(trace_id: str, meta: dict, label: str, model: str, store: Path, labels: Path | None) -> dict[str, str]:
    """The header rows of a trace's page from its meta (question, answer, aliases, counts)."""
    return {"trace": trace_id, "question": str(meta.get("question", "")), "answer": str(meta.get("generation", "")),
            "accepted answers": "; ".join(map(str, meta.get("answers", []))), "label": label,
            "category": str(meta.get("category", "")), "model": model, "store": str(store),
            "labels": str(labels) if labels else "none found",
            "tokens": f"{meta.get('n_prompt_tokens', '?')} prompt + {meta.get('n_answer_tokens', '?')} answer"}


def _rel(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` with forward slashes, for an ``href``."""
    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def _meta_table(info: dict[str, str]) -> str:
    rows = []
    for key, value in info.items():
        cls = f' class="{value}"' if value in ("hallucinated", "correct") else ""
        rows.append(f"<tr><td>{html.escape(key)}</td><td{cls}>{html.escape(str(value))}</td></tr>")
    return '<table class="meta">' + "".join(rows) + "</table>"


def _figure(title: str, caption: str, paths: list[Path], base: Path) -> str:
    png = next((p for p in paths if p.suffix == ".png"), paths[0])
    links = " · ".join(f'<a href="{html.escape(_rel(p, base))}">{p.suffix[1:].upper()}</a>' for p in paths)
    return (f"<h2>{html.escape(title)}</h2><figure><a href=\"{html.escape(_rel(png, base))}\">"
            f"<img src=\"{html.escape(_rel(png, base))}\" alt=\"{html.escape(title)}\"></a>"
            f"<figcaption>{html.escape(caption)} ({links})</figcaption></figure>")


def write_page(out_dir: str | Path, title: str, info: dict[str, str],
               figures: list[tuple[str, str, list[Path]]], command: str | None = None,
               notes: list[str] | None = None) -> Path:
    """Write ``out_dir/index.html`` showing ``figures`` with their titles and captions.

    Args:
        out_dir: the page's folder; figure links are made relative to it.
        title: page heading.
        info: rows of the header table (question, answer, label, store, ...).
        figures: ``(title, caption, [png, svg, ...])`` in display order.
        command: the command line that produced the page, shown verbatim.
        notes: extra lines (warnings, skipped figures) listed under the header.

    Returns:
        the path of ``index.html``.
    """
    out_dir = Path(out_dir)
    parts = ["<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<meta name=\"viewport\" content=\"width=device-width\"><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>", _meta_table(info)]
    if command:
        parts.append(f"<p>Made with:</p><pre>{html.escape(command)}</pre>")
    if notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.extend(_figure(t, c, paths, out_dir) for t, c, paths in figures)
    parts.append("</body></html>\n")
    path = out_dir / "index.html"
    write_text_atomic(path, "\n".join(parts))
    return path
