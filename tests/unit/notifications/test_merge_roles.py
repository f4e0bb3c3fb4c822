"""Notifications keeps who administers each department (they read its email log): a
merge of two accounts forgets the merged one and gives the kept one the role."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prodigy_users.contracts.membership import MemberMerged
from prodigy_users.notifications.service import role_changes

DEPT, KEEP, DROP = (uuid.UUID(int=i) for i in (1, 2, 3))
AT = datetime(2026, 6, 1, tzinfo=UTC)


def _merged(*, role: str, removed: bool = False) -> MemberMerged:
    return MemberMerged.model_validate(
        {
            "department_id": DEPT,
            "account_id": KEEP,
            "merged_account_id": DROP,
            "name": "Mara Keep",
            "email": "mara@example.org",
            "role": role,
            "status": "active",
            "joined_at": AT,
            "removed": removed,
            "merged_at": AT,
        }
    )


def test_the_merged_admin_is_forgotten_and_the_kept_account_takes_the_role() -> None:
    assert role_changes(_merged(role="admin")) == [((DEPT, DROP), None), ((DEPT, KEEP), "admin")]


def test_a_removed_merged_membership_administers_nothing() -> None:
    assert role_changes(_merged(role="admin", removed=True)) == [
        ((DEPT, DROP), None),
        ((DEPT, KEEP), None),
    ]
