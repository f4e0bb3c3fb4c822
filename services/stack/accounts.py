"""``prodigy-users accounts``: operators' tools for accounts, one action each.

``duplicates`` reports accounts that may be one person's (``duplicates``);
``merge KEEP DROP`` merges two of them (``merge``).
"""

from __future__ import annotations

import argparse

from . import duplicates, merge


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``accounts duplicates [--json]`` and ``accounts merge KEEP DROP``."""
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    duplicates.add_parser(actions)
    merge.add_parser(actions)


def run(args: argparse.Namespace) -> int:
    """Run the chosen action."""
    if args.action == "merge":
        return merge.run(args)
    return duplicates.run(args)
