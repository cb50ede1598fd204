"""``truthtrace profile``: a stage run under ``torch.profiler`` (top ops, peak memory, a Chrome trace)."""

from __future__ import annotations


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
