"""Membership's rules. No I/O."""

from __future__ import annotations

from typing import Any, Literal, get_args

from prodigy_users.contracts.membership import Role

ROLES: tuple[str, ...] = get_args(Role)
MANAGING_ROLES = frozenset({"admin"})

OperationKind = Literal["add_member", "create_department"]
OperationStatus = Literal["pending", "succeeded", "failed"]


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively (identity applies the same rule)."""
    return email.strip().lower()


def can_manage_members(role: str | None) -> bool:
    """Only department admins add, change or remove people."""
    return role in MANAGING_ROLES


def account_exists_problem() -> dict[str, Any]:
    """The problem a request gets when the email already has an account somewhere."""
    return {
        "type": "https://prodigy-users.dev/problems/account-exists",
        "title": "Account already exists",
        "status": 409,
        "detail": (
            "An account with this email already exists; invite them instead, and they "
            "join by signing in."
        ),
    }
