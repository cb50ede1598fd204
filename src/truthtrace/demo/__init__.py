"""The web demo (``truthtrace demo``, extra ``ui``): live answers coloured by risk, scores, attention, cache.

    from truthtrace.demo import build_app, example_questions, launch
    launch(build_app(engine, example_questions()), port=7860)

:mod:`.app` lays out the Gradio page (gradio is imported only when a page is built), :mod:`.session` turns a
question into display updates, :mod:`.view` shapes the values, :mod:`.attention` draws the answer's attention.
"""

from truthtrace.demo.app import build_app, launch
from truthtrace.demo.session import DemoSession, example_questions

__all__ = ["DemoSession", "build_app", "example_questions", "launch"]
