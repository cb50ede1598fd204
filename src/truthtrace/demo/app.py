"""The web demo's page (Gradio 6): ask a question, watch the answer stream in coloured by risk, see every score.

    from truthtrace.demo import build_app, launch
    app = build_app(engine, example_questions())
    launch(app, host="127.0.0.1", port=7860)

The page works offline: analytics are off, fonts are the system's, no share link, no server-side
rendering, and ``no_proxy`` lets the server reach itself on localhost through any configured proxy.
Its API (``gradio_client``): ``/answer`` (question -> the outputs of :data:`truthtrace.demo.session.OUTPUTS`)
and ``/cache_stats``.
"""

from __future__ import annotations

import os

from truthtrace.demo.session import OUTPUTS, DemoSession
from truthtrace.demo.view import MAX_QUESTION_CHARS, SCORE_HEADERS, error_html

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "sans-serif")
MONO_FONTS = ("ui-monospace", "Consolas", "monospace")
CSS = """
.tt-error { background: #fde8e4; border: 1px solid #D55E00; color: #7a2400; padding: 0.6em 0.9em; border-radius: 6px; }
"""


def local_no_proxy(host: str | None = None) -> None:
    """Add localhost (and ``host``) to ``no_proxy``/``NO_PROXY``: the server checks it is up through httpx."""
    for var in ("no_proxy", "NO_PROXY"):
        have = [h.strip() for h in os.environ.get(var, "").split(",") if h.strip()]
        os.environ[var] = ",".join(have + [h for h in (*LOCAL_HOSTS, host) if h and h not in have])


def gradio():
    """The gradio module, imported with analytics off and localhost exempt from proxies.

    Raises:
        ImportError: gradio is missing; names the ``ui`` extra.
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    local_no_proxy()
    try:
        import gradio as gr
    except ImportError as exc:
        raise ImportError("the demo needs gradio: pip install 'truthtrace[ui]'") from exc
    return gr


def to_outputs(gr, update: dict, plain: bool = False) -> tuple:
    """One :class:`DemoSession` update as the values of the page's outputs (``gr.skip()`` keeps one as shown).

    ``plain`` gives bare values, without the error box's visibility and the meter's label (set by earlier updates).
    """
    out = []
    for key in OUTPUTS:
        if key not in update:
            out.append(gr.skip())
        elif key == "error":
            html = error_html(update[key])
            out.append(html if plain else gr.update(value=html, visible=bool(update[key])))
        elif key == "meter":
            value, label = update[key]
            out.append(value if plain else gr.update(value=value, label=label))
        elif key == "scores":
            out.append({"headers": SCORE_HEADERS, "data": update[key]})
        else:
            out.append(update[key])
    return tuple(out)


def header_markdown(engine) -> str:
    """The page's heading: what runs, and the link to the cache statistics."""
    info = engine.describe()
    names = ", ".join(d["name"] for d in info["detectors"])
    return (f"# truthtrace live\nAsk a question: **{info['model']}** answers ({info['dtype']}, {info['device']}) and "
            f"the detectors ({names}) estimate the chance that the answer is made up. The meter follows "
            f"**{info['primary'] or 'no calibrated detector'}**; the answer's tokens are coloured by "
            f"**{info['token_detector'] or 'no detector'}**'s running risk. [Cache statistics](#cache-stats)")


def build_app(engine, examples: list[str] = ()):
    """The demo page over ``engine`` with ``examples`` (e.g. :func:`truthtrace.demo.session.example_questions`)."""
    gr = gradio()
    session = DemoSession(engine)

    def respond(question):
        shown = {}
        for update in session.respond(question):
            shown.update(update)
            yield to_outputs(gr, update)
        yield to_outputs(gr, shown, plain=True)  # every output's value: what an API client receives

    with gr.Blocks(title="truthtrace live", analytics_enabled=False) as app:
        gr.Markdown(header_markdown(engine))
        question = gr.Textbox(label="Question", elem_id="tt-question", lines=1, max_lines=4,
                              placeholder=f"Type a question (at most {MAX_QUESTION_CHARS} characters) and press Ask")
        ask = gr.Button("Ask", variant="primary", elem_id="tt-ask")
        if examples:
            gr.Examples([[q] for q in examples], inputs=[question], label="Examples from the bundled questions")
        outputs, refresh = page_outputs(gr)
        ask.click(respond, inputs=[question], outputs=outputs, api_name="answer", concurrency_limit=1,
                  show_progress="minimal")
        question.submit(respond, inputs=[question], outputs=outputs, api_visibility="private", concurrency_limit=1,
                        show_progress="minimal")
        refresh.click(session.cache_stats, outputs=[outputs[-1]], api_name="cache_stats")
        app.load(session.cache_stats, outputs=[outputs[-1]], api_visibility="private")
    return app


def page_outputs(gr) -> tuple[list, object]:
    """The output components (in the order of :data:`truthtrace.demo.session.OUTPUTS`) and the cache refresh button."""
    error = gr.HTML(visible=False, elem_id="tt-error")
    with gr.Row():
        with gr.Column(scale=3):
            answer = gr.HighlightedText(label="Answer — each token coloured by a detector's running risk (see below)",
                                        elem_id="tt-answer", show_legend=False, combine_adjacent=False)
            status = gr.Markdown(elem_id="tt-status")
        with gr.Column(scale=2):
            meter = gr.Label(label="P(made up)", elem_id="tt-meter", num_top_classes=2)
    scores = gr.Dataframe(headers=SCORE_HEADERS, label="Every loaded detector's score", elem_id="tt-scores",
                          interactive=False, wrap=True)
    graph = gr.Image(label="Attention graph of the answer", type="filepath", elem_id="tt-graph",
                     interactive=False)
    with gr.Accordion("Cache statistics", open=True, elem_id="cache-stats"):
        cache = gr.JSON(label="Result cache", elem_id="tt-cache")
        refresh = gr.Button("Refresh", size="sm")
    return [error, answer, meter, scores, status, graph, cache], refresh


def launch(app, host: str = "127.0.0.1", port: int | None = 7860, block: bool = True, quiet: bool = False):
    """Serve ``app`` on ``host:port`` (offline, no share link); ``block=False`` returns once it is up.

    Returns:
        ``(fastapi app, local url, share url)`` as ``gr.Blocks.launch`` does.
    """
    gr = gradio()
    local_no_proxy(host)
    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)
    return app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block, quiet=quiet,
                      theme=theme, css=CSS, ssr_mode=False, mcp_server=False, pwa=False, footer_links=["api"],
                      show_error=False)
