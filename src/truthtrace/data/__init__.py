"""Question sets: the bundled factual questions and loaders for user files.

>>> from truthtrace.data import load_bundled
>>> qs = load_bundled(n=100, seed=0)  # category-stratified, deterministic
"""

from truthtrace.data.hub import load_hub_questions
from truthtrace.data.loaders import FORMATS, detect_format, load_questions
from truthtrace.data.questions import Question, bundled_categories, load_bundled, save_questions

__all__ = ["FORMATS", "Question", "bundled_categories", "detect_format", "load_bundled", "load_hub_questions",
           "load_questions", "save_questions"]
