"""Plain helpers of the groups pages (no I/O)."""

from __future__ import annotations

import uuid
from typing import Any

MEMBERS_PAGE = 50


def find_group(groups: list[dict[str, Any]], group: uuid.UUID) -> dict[str, Any] | None:
    """The group with this id among the department's, or None."""
    return next((g for g in groups if str(g.get("group_id")) == str(group)), None)


def members_query(group: uuid.UUID, cursor: str | None) -> list[tuple[str, str]]:
    """Reporting's users-table query for one page of the group's members, by name."""
    params = [("group", str(group)), ("sort", "name"), ("limit", str(MEMBERS_PAGE))]
    if cursor:
        params.append(("cursor", cursor))
    return params
