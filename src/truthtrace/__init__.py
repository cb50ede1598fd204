"""truthtrace: tell when a language model is making things up by reading its insides.

Stages (each a CLI command and a Python function) talk only through files on disk:
questions -> traces -> labels -> features -> detectors -> reports.
"""

__version__ = "0.2.0"
