"""The projection's fold of ``membership.member_merged``: the kept account's row as the
event says, the merged account's row gone, and this run's history of it moved."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prodigy_users.contracts.membership import MemberAdded, MemberMerged
from prodigy_users.reporting.activity.rules import actor_of
from prodigy_users.reporting.projection.rules import Event, Projection, member_keys, standing

DEPT = uuid.UUID(int=1)
KEEP, DROP, GROUP = (uuid.UUID(int=i) for i in (2, 3, 4))
AT = datetime(2026, 6, 1, tzinfo=UTC)


def _merged(**changes: object) -> MemberMerged:
    values: dict[str, object] = {
        "department_id": DEPT,
        "account_id": KEEP,
        "merged_account_id": DROP,
        "name": "Mara Keep",
        "email": "mara@example.org",
        "role": "officer",
        "status": "active",
        "employee_id": "E-1",
        "group_ids": [GROUP],
        "joined_at": AT - timedelta(days=30),
        "merged_at": AT,
    }
    values.update(changes)
    return MemberMerged(**values)


def _added(account: uuid.UUID, at: datetime) -> MemberAdded:
    return MemberAdded(
        department_id=DEPT,
        account_id=account,
        name="Mara Drop",
        email="drop@example.org",
        role="member",
        joined_at=at,
    )


def test_a_run_with_the_merged_accounts_join_and_the_merge_leaves_one_row() -> None:
    joined = Event(uuid.uuid4(), MemberAdded.TYPE, AT - timedelta(days=30), _added(DROP, AT))
    merge = Event(uuid.uuid4(), MemberMerged.TYPE, AT, _merged())
    assert member_keys([merge]) == {(DEPT, KEEP), (DEPT, DROP)}
    fold = Projection({(DEPT, KEEP): None, (DEPT, DROP): None})
    fold.apply(joined)
    fold.apply(merge)
    [row] = fold.changed_members()
    assert (row.account_id, row.role, row.groups, row.employee_id) == (
        KEEP,
        "officer",
        [GROUP],
        "E-1",
    )
    assert row.removed_at is None
    assert fold.deleted == {(DEPT, DROP)}
    assert standing(fold.members[(DEPT, DROP)]) is None
    # The merged account's join is in the kept account's history, then the merge.
    assert [(h.account_id, h.event) for h in fold.history] == [(KEEP, "joined"), (KEEP, "merged")]
    assert fold.merges == [(DEPT, DROP, KEEP)]


def test_a_removed_merge_keeps_the_row_removed() -> None:
    fold = Projection({(DEPT, KEEP): None, (DEPT, DROP): None})
    fold.apply(Event(uuid.uuid4(), MemberMerged.TYPE, AT, _merged(removed=True)))
    [row] = fold.changed_members()
    assert row.removed_at == AT and standing(row) is None


def test_the_merge_is_an_operators_doing() -> None:
    assert actor_of(_merged()).kind == "operator"
