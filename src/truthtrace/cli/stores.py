"""CLI subcommands: merge-stores (one store from several, e.g. the rank stores of a torchrun extraction)."""

from __future__ import annotations

import json

from truthtrace.store.merge import merge_stores


def cmd_merge_stores(args) -> None:
    """``truthtrace merge-stores OUT IN...``: check the inputs, link their shards into OUT, write one index."""
    summary = merge_stores(args.out, args.inputs, verify=not args.no_verify)
    print(json.dumps(summary, indent=2))


def register(sub) -> None:
    """Add this module's subcommands to ``sub`` (the ``add_subparsers`` object of the main parser)."""
    p = sub.add_parser("merge-stores", help="merge trace stores with equal settings and disjoint ids into one")
    p.add_argument("out", metavar="OUT", help="the merged store (a new or empty folder)")
    p.add_argument("inputs", nargs="+", metavar="IN", help="stores to merge, in this order")
    p.add_argument("--no-verify", action="store_true", help="check shard sizes only, not their sha256")
    p.set_defaults(func=cmd_merge_stores)
