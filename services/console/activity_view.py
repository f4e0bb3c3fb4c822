"""Plain helpers of the activity page (no I/O): its filters as the console's URLs carry
them, the queries for reporting, and the words for an action and its details."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

ACTIONS: tuple[tuple[str, str], ...] = (
    ("joined", "Joined"),
    ("role_changed", "Role changed"),
    ("status_changed", "Status changed"),
    ("employee_id_set", "Employee ID set"),
    ("joined_group", "Put in a group"),
    ("left_group", "Taken out of a group"),
    ("removed", "Removed"),
    ("restored", "Back in the department"),
    ("merged", "Accounts merged"),
    ("renamed", "Name corrected"),
    ("invited", "Invited"),
    ("invitation_reminded", "Invitation sent again"),
    ("invitation_revoked", "Invitation withdrawn"),
    ("invitation_expired", "Invitation lapsed"),
)
ACTION_NAMES = dict(ACTIONS)
PAGE_SIZE = 50
VIA = {
    "admin_add": "added by an admin",
    "invitation": "accepted an invitation",
    "registration_link": "used the registration link",
    "import": "bulk upload",
    "operator": "added by an operator",
}


@dataclass(frozen=True)
class ActivityView:
    """One view of the log; empty strings mean "any"."""

    person: str = ""
    action: str = ""
    since: str = ""
    to: str = ""
    cursor: str = ""
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> ActivityView:
        """From the console's query string (reporting judges the values)."""
        cursor = (query.get("cursor") or "").strip()
        page = query.get("page") or ""
        number = int(page) if page.isdigit() and int(page) > 0 else 1
        return cls(
            person=(query.get("person") or "").strip(),
            action=(query.get("action") or "").strip(),
            since=(query.get("from") or "").strip(),
            to=(query.get("to") or "").strip(),
            cursor=cursor,
            page=number if cursor else 1,
        )

    def filters(self) -> list[tuple[str, str]]:
        """What defines the rows (not the page), as reporting names it."""
        pairs = [("person", self.person), ("action", self.action)]
        pairs += [("from", self.since), ("to", self.to)]
        return [(k, v) for k, v in pairs if v]

    @property
    def filtered(self) -> bool:
        """Whether any filter narrows the log."""
        return bool(self.filters())

    def report_params(self) -> list[tuple[str, str]]:
        """Query of reporting's activity log for this page."""
        params = [*self.filters(), ("limit", str(PAGE_SIZE))]
        return [*params, ("cursor", self.cursor)] if self.cursor else params

    def export_query(self) -> str:
        """Query of the download: every change of the view."""
        return urlencode(self.filters())

    def query(self, **changes: Any) -> str:
        """This console's query string for the view with ``changes`` applied."""
        view = replace(self, **changes)
        pairs = view.filters()
        if view.cursor:
            pairs += [("cursor", view.cursor), ("page", str(view.page))]
        return urlencode(pairs)

    def next_query(self, cursor: str) -> str:
        """The query of the page after this one."""
        return self.query(cursor=cursor, page=self.page + 1)

    def first_query(self) -> str:
        """The query of the first page."""
        return self.query(cursor="", page=1)

    def person_query(self, account_id: str) -> str:
        """The query of this person's changes (the other filters kept)."""
        return self.query(person=account_id, cursor="", page=1)


def action_name(action: str) -> str:
    """An action in words."""
    return ACTION_NAMES.get(action, action.replace("_", " ").capitalize())


def details_text(entry: Mapping[str, Any], groups: Mapping[str, str]) -> str:
    """What changed, in words (a group by its current name, "a deleted group" if gone)."""
    d: Mapping[str, Any] = entry.get("details") or {}
    action = entry.get("action")
    if action == "role_changed":
        return f"{d.get('previous_role', '?')} → {d.get('role', '?')}"
    if action == "status_changed":
        return str(d.get("status", ""))
    if action == "employee_id_set":
        return str(d.get("employee_id") or "cleared")
    if action in ("joined_group", "left_group"):
        return groups.get(str(d.get("group_id")), "a deleted group")
    if action in ("joined", "restored"):
        parts = [p for p in (d.get("role"), VIA.get(str(d.get("via")), "")) if p]
        return ", ".join(parts)
    if action == "merged":
        return "another account of the person was merged into this one"
    if action == "renamed":
        return f"{d.get('previous_name', '?')} → {d.get('name', '?')}"
    if action == "invited":
        return f"as {d.get('role', '?')}"
    return ""
