"""``truthtrace ask``, ``truthtrace score`` and ``truthtrace cache``: live detection from the command line."""

from __future__ import annotations


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
