"""Group rules. No I/O."""

from __future__ import annotations


def group_key(name: str) -> str:
    """What makes two group names the same group: spaces collapsed, case folded."""
    return " ".join(name.split()).casefold()
