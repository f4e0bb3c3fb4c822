"""Plain helpers of the email log page (no I/O): the filter, and the words for a
template and a status."""

from __future__ import annotations

from urllib.parse import urlencode

STATUSES: tuple[tuple[str, str], ...] = (
    ("pending", "Queued"),
    ("sending", "Sending"),
    ("retrying", "Retrying"),
    ("sent", "Sent"),
    ("failed", "Failed"),
)
STATUS_NAMES = dict(STATUSES)
KINDS: dict[str, str] = {
    "welcome": "Welcome (set your password)",
    "password_reset": "Password reset",
    "invitation": "Invitation",
    "invitation_reminder": "Invitation reminder",
    "welcome_joined": "Welcome (joined)",
    "confirm_email": "Confirm email address",
    "sign_in_to_join": "Sign in to join",
}
PAGE_SIZE = 50


def status_filter(value: str | None) -> str:
    """The status the log is filtered by ("" for all); anything unknown means all."""
    return value if value in STATUS_NAMES else ""


def kind_name(template: str) -> str:
    """An email's kind in words."""
    return KINDS.get(template, template.replace("_", " ").capitalize())


def log_params(status: str, cursor: str | None) -> list[tuple[str, str]]:
    """notifications' query for one page of the log."""
    params = [("limit", str(PAGE_SIZE))]
    if status:
        params.append(("status", status))
    if cursor:
        params.append(("cursor", cursor))
    return params


def page_query(status: str, cursor: str | None = None) -> str:
    """The console's query string for a page of the log ("" for the first, unfiltered)."""
    pairs = [(k, v) for k, v in (("status", status), ("cursor", cursor or "")) if v]
    return urlencode(pairs)
