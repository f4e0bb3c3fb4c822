"""Which membership survives an operator's merge of two accounts, and what it holds
(``members.merge_rules``); and identity's refusals of a merge (``domain.merge_step``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prodigy_users.identity.domain import merge_step
from prodigy_users.membership.members.merge_rules import Side, merged_membership

EARLY = datetime(2025, 1, 1, tzinfo=UTC)
LATE = datetime(2026, 1, 1, tzinfo=UTC)
G1, G2, G3 = (uuid.UUID(int=i) for i in (1, 2, 3))


def _side(**changes: object) -> Side:
    values: dict[str, object] = {
        "role": "member",
        "status": "active",
        "employee_id": None,
        "joined_at": LATE,
        "removed_at": None,
        "group_ids": (),
    }
    values.update(changes)
    return Side(**values)  # type: ignore[arg-type]


def test_only_the_merged_account_was_a_member_its_membership_moves_whole() -> None:
    merged = _side(role="officer", status="inactive", employee_id="E-7", group_ids=(G1,))
    assert merged_membership(None, merged) == merged


def test_a_removed_membership_of_the_merged_account_moves_as_removed() -> None:
    merged = _side(removed_at=LATE)
    assert not merged_membership(None, merged).current


def test_both_current_the_kept_one_stays_and_the_groups_fold_in() -> None:
    kept = _side(role="admin", joined_at=LATE, group_ids=(G1, G2))
    merged = _side(role="member", status="inactive", joined_at=EARLY, group_ids=(G2, G3))
    result = merged_membership(kept, merged)
    assert (result.role, result.status) == ("admin", "active")
    assert result.group_ids == (G1, G2, G3)
    assert result.joined_at == EARLY
    assert result.current


def test_the_kept_employee_id_wins_else_the_merged_one_is_taken() -> None:
    assert merged_membership(_side(employee_id="K"), _side(employee_id="M")).employee_id == "K"
    assert merged_membership(_side(), _side(employee_id="M")).employee_id == "M"


def test_a_current_membership_beats_a_removed_one_whichever_account_it_is() -> None:
    kept_removed = _side(role="admin", removed_at=LATE)
    merged_current = _side(role="officer")
    result = merged_membership(kept_removed, merged_current)
    assert result.role == "officer" and result.current
    kept_current = _side(role="member")
    merged_removed = _side(role="admin", removed_at=LATE)
    result = merged_membership(kept_current, merged_removed)
    assert result.role == "member" and result.current


def test_both_removed_the_kept_one_stays_removed() -> None:
    result = merged_membership(
        _side(role="officer", removed_at=EARLY), _side(role="admin", removed_at=LATE)
    )
    assert result.role == "officer" and result.removed_at == EARLY


KEEP, DROP, OTHER = (uuid.UUID(int=i) for i in (10, 11, 12))


def test_merge_steps() -> None:
    assert merge_step(KEEP, DROP, None, None) == "merge"
    assert merge_step(KEEP, KEEP, None, None) == "self"
    # Asked again: done, nothing to change (and no second event).
    assert merge_step(KEEP, DROP, None, KEEP) == "done"
    assert merge_step(KEEP, DROP, None, OTHER) == "drop_merged_elsewhere"
    assert merge_step(KEEP, DROP, OTHER, None) == "keep_merged"
    assert merge_step(KEEP, DROP, None, None, confirmed=False) == "unconfirmed"
