"""The activity log's rules: who made each change (from the events' actor fields), the
rows the projection records, the filters and their problems, cursors, and how an actor
is said."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from prodigy_users.contracts.identity import AccountUpdated, Change
from prodigy_users.contracts.membership import (
    EmployeeIdSet,
    InvitationExpired,
    InvitationReminded,
    InvitationRevoked,
    MemberAdded,
    MemberInvited,
    MemberJoinedGroup,
    MemberLeftGroup,
    MemberRemoved,
    MemberRestored,
    MemberRoleChanged,
    MemberStatusChanged,
)
from prodigy_users.reporting.activity.rules import (
    ACTIONS,
    INVITATION_ACTIONS,
    ActivityRow,
    ActivityView,
    Actor,
    activity_row,
    actor_of,
    decode_after,
    from_history,
    invitation_row,
    page_of,
    parse_filters,
    rename_details,
    said,
)
from prodigy_users.reporting.activity.service import csv_lines
from prodigy_users.reporting.errors import InvalidActivityFilter, InvalidCursor
from prodigy_users.reporting.projection.rules import HISTORY_EVENTS, Event, Projection
from prodigy_users.runtime.auth import OPERATOR_SUBJECT

DEPT, ADMIN, PERSON, IMPORT = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _added(**fields: Any) -> MemberAdded:
    return MemberAdded(
        department_id=DEPT,
        account_id=PERSON,
        name="Sam Rivera",
        email="sam@example.org",
        role="member",
        joined_at=AT,
        **fields,
    )


def _restored(**fields: Any) -> MemberRestored:
    return MemberRestored(
        department_id=DEPT,
        account_id=PERSON,
        name="Sam Rivera",
        email="sam@example.org",
        role="member",
        status="active",
        restored_at=AT,
        **fields,
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (_added(added_by=ADMIN), Actor("admin", ADMIN)),
        (_added(added_by=ADMIN, via="invitation"), Actor("self", PERSON)),
        (_added(via="registration_link"), Actor("self", PERSON)),
        (_added(via="operator"), Actor("operator")),
        (_added(added_by=ADMIN, via="import", import_id=IMPORT), Actor("import", ADMIN)),
        # An operator's upload names no admin.
        (_added(via="import"), Actor("import")),
        (_added(added_by=OPERATOR_SUBJECT), Actor("operator")),
        (_added(), Actor("system")),
        (_restored(restored_by=ADMIN, via="admin_add"), Actor("admin", ADMIN)),
        (_restored(restored_by=ADMIN, via="invitation"), Actor("self", PERSON)),
        (_restored(restored_by=ADMIN, via="import"), Actor("import", ADMIN)),
        (_restored(via="admin_add"), Actor("system")),
        (
            MemberRoleChanged(
                department_id=DEPT,
                account_id=PERSON,
                role="officer",
                previous_role="member",
                changed_by=ADMIN,
            ),
            Actor("admin", ADMIN),
        ),
        (
            MemberRoleChanged(
                department_id=DEPT,
                account_id=ADMIN,
                role="member",
                previous_role="admin",
                changed_by=ADMIN,
            ),
            Actor("self", ADMIN),
        ),
        (
            MemberRoleChanged(
                department_id=DEPT,
                account_id=PERSON,
                role="officer",
                previous_role="member",
                changed_by=ADMIN,
                import_id=IMPORT,
            ),
            Actor("import", ADMIN),
        ),
        (
            MemberStatusChanged(
                department_id=DEPT,
                account_id=PERSON,
                status="inactive",
                changed_by=OPERATOR_SUBJECT,
            ),
            Actor("operator"),
        ),
        (
            EmployeeIdSet(
                department_id=DEPT,
                account_id=PERSON,
                employee_id="E1",
                changed_by=OPERATOR_SUBJECT,
                import_id=IMPORT,
            ),
            Actor("import"),
        ),
        (
            MemberRemoved(department_id=DEPT, account_id=PERSON, removed_by=ADMIN),
            Actor("admin", ADMIN),
        ),
        (MemberRemoved(department_id=DEPT, account_id=PERSON), Actor("system")),
        (
            MemberJoinedGroup(
                department_id=DEPT, group_id=uuid.uuid4(), account_id=PERSON, changed_by=ADMIN
            ),
            Actor("admin", ADMIN),
        ),
        # Events from before groups named their actor.
        (
            MemberLeftGroup(department_id=DEPT, group_id=uuid.uuid4(), account_id=PERSON),
            Actor("system"),
        ),
    ],
)
def test_who_made_each_change(payload: Any, expected: Actor) -> None:
    assert actor_of(payload) == expected


def test_the_fold_s_history_entries_become_log_rows_with_their_actors() -> None:
    events = [
        Event(uuid.uuid4(), MemberAdded.TYPE, AT, _added(added_by=ADMIN, via="invitation")),
        Event(
            uuid.uuid4(),
            MemberRoleChanged.TYPE,
            AT,
            MemberRoleChanged(
                department_id=DEPT,
                account_id=PERSON,
                role="officer",
                previous_role="member",
                changed_by=ADMIN,
            ),
        ),
        Event(
            uuid.uuid4(),
            MemberRemoved.TYPE,
            AT,
            MemberRemoved(department_id=DEPT, account_id=PERSON, removed_by=ADMIN),
        ),
    ]
    fold = Projection({(DEPT, PERSON): None})
    for e in events:
        fold.apply(e)
    rows = from_history(fold.history, {e.event_id: e.payload for e in events})
    assert [(r.event_id, r.action, r.actor_kind, r.actor_id) for r in rows] == [
        (events[0].event_id, "joined", "self", PERSON),
        (events[1].event_id, "role_changed", "admin", ADMIN),
        (events[2].event_id, "removed", "admin", ADMIN),
    ]
    assert rows[0].details == {"role": "member", "via": "invitation", "invited_by": str(ADMIN)}
    assert rows[1].details == {"role": "officer", "previous_role": "member"}
    assert {r.subject_id for r in rows} == {PERSON} and {r.department_id for r in rows} == {DEPT}


def test_the_actions_are_the_history_s_names() -> None:
    # Membership's events about members, an admin's rename (identity's
    # ``AccountUpdated``), and membership's invitation events.
    invitations = {action for action, _ in INVITATION_ACTIONS.values()}
    assert set(ACTIONS) == set(HISTORY_EVENTS.values()) | {"renamed"} | invitations


def _updated(**fields: Any) -> AccountUpdated:
    return AccountUpdated(account_id=PERSON, occurred_at=AT, **fields)


def test_an_admin_s_rename_is_a_change_in_their_department_by_them() -> None:
    event = _updated(
        name=Change(old="Sam Rivrea", new="Sam Rivera"), changed_by=ADMIN, department_id=DEPT
    )
    details = rename_details(event)
    assert details == {"name": "Sam Rivera", "previous_name": "Sam Rivrea"}
    row = activity_row(uuid.uuid4(), "renamed", AT, event, details)
    assert (row.department_id, row.subject_id, row.action) == (DEPT, PERSON, "renamed")
    assert (row.actor_kind, row.actor_id, row.details) == ("admin", ADMIN, details)


@pytest.mark.parametrize(
    "event",
    [
        # The person's own rename, an email change, an operator's rename: no department's.
        _updated(name=Change(old="a", new="b"), changed_by=PERSON),
        _updated(email=Change(old="a@x.org", new="b@x.org"), changed_by=PERSON),
        _updated(name=Change(old="a", new="b")),
    ],
)
def test_other_account_changes_are_in_no_department_s_log(event: AccountUpdated) -> None:
    assert rename_details(event) is None


def test_filters_parse_with_both_days_included() -> None:
    view = parse_filters(
        DEPT,
        person=str(PERSON),
        action=["role_changed,removed"],
        since="2026-12-01",
        to="2026-12-03",
    )
    f = view.filters
    assert f.person == PERSON and f.actions == {"role_changed", "removed"}
    assert f.since == datetime(2026, 12, 1, tzinfo=UTC)
    assert f.until == datetime(2026, 12, 4, tzinfo=UTC)
    assert parse_filters(DEPT).filters == ActivityView(DEPT).filters


def test_every_bad_filter_is_named() -> None:
    with pytest.raises(InvalidActivityFilter) as caught:
        parse_filters(
            DEPT, person="nobody", action=["joined", "hired"], since="yesterday", to="2026-13-01"
        )
    fields = [e["field"] for e in caught.value.errors]
    assert fields == ["person", "action", "from", "to"]
    assert "'hired'" in caught.value.errors[1]["message"]
    with pytest.raises(InvalidActivityFilter) as caught:
        parse_filters(DEPT, since="2026-12-05", to="2026-12-04")
    assert [e["field"] for e in caught.value.errors] == ["to"]


def _row(n: int) -> ActivityRow:
    return ActivityRow(
        event_id=uuid.UUID(int=n),
        department_id=DEPT,
        occurred_at=AT,
        action="joined",
        subject_id=PERSON,
        actor_kind="admin",
        actor_id=ADMIN,
        details={},
    )


def test_a_page_s_cursor_resumes_after_its_last_row_for_the_same_view_only() -> None:
    view = parse_filters(DEPT, action=["joined"])
    page = page_of([_row(3), _row(2), _row(1)], 2, view, {ADMIN: "Ada Admin"})
    assert [e.event_id for e in page.items] == [uuid.UUID(int=3), uuid.UUID(int=2)]
    assert page.next_cursor is not None
    assert decode_after(page.next_cursor, view) == (AT, uuid.UUID(int=2))
    with pytest.raises(InvalidCursor):
        decode_after(page.next_cursor, parse_filters(DEPT))
    with pytest.raises(InvalidCursor):
        decode_after("not-a-cursor", view)
    assert page_of([_row(1)], 2, view, {}).next_cursor is None


def test_an_actor_is_said_by_name_or_by_kind() -> None:
    names = {ADMIN: "Ada Admin", PERSON: "Sam Rivera"}
    assert said("admin", ADMIN, names).label == "Ada Admin"
    assert said("admin", uuid.uuid4(), names).label == "an admin"
    assert said("self", PERSON, names).label == "the person themselves"
    assert said("self", PERSON, names).name == "Sam Rivera"
    imported = said("import", ADMIN, names)
    assert (imported.label, imported.name, imported.account_id) == ("an import", "Ada Admin", ADMIN)
    assert said("operator", None, names).label == "an operator"
    assert said("mystery", None, names).kind == "system"


def test_the_csv_neutralises_formulas_in_names_and_details() -> None:
    row = ActivityRow(
        event_id=uuid.uuid4(),
        department_id=DEPT,
        occurred_at=AT,
        action="employee_id_set",
        subject_id=PERSON,
        actor_kind="admin",
        actor_id=ADMIN,
        details={"employee_id": '=HYPERLINK("x")'},
    )
    names = {PERSON: "=cmd|' /C calc'!A0", ADMIN: "\x01@Ada"}
    page = page_of([row], 10, ActivityView(DEPT), names)
    [cells] = list(csv.reader(io.StringIO(csv_lines(page.items).decode())))
    assert cells[0] == "2026-12-01 09:30:00"
    assert cells[2] == "'=cmd|' /C calc'!A0"
    assert cells[4] == "'@Ada"
    assert cells[5] == "admin"
    assert cells[7] == 'employee_id: =HYPERLINK("x")'


INVITATION = uuid.uuid4()


def test_an_invitation_s_rows_name_the_address_and_the_admin_who_acted() -> None:
    sent = MemberInvited(
        department_id=DEPT,
        invitation_id=INVITATION,
        email="nia@example.org",
        role="officer",
        expires_at=AT,
        invited_by=ADMIN,
        name="Nia New",
    )
    ids = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    common = {"department_id": DEPT, "invitation_id": INVITATION, "email": "nia@example.org"}
    rows = [
        invitation_row(ids[0], AT, sent),
        invitation_row(ids[1], AT, InvitationReminded(**common, reminded_by=ADMIN)),
        invitation_row(ids[2], AT, InvitationRevoked(**common, revoked_by=OPERATOR_SUBJECT)),
        invitation_row(ids[3], AT, InvitationExpired(**common)),
    ]
    assert [(r.action, r.actor_kind, r.actor_id) for r in rows] == [
        ("invited", "admin", ADMIN),
        ("invitation_reminded", "admin", ADMIN),
        ("invitation_revoked", "operator", None),
        ("invitation_expired", "system", None),
    ]
    assert {r.subject_id for r in rows} == {None} and {r.department_id for r in rows} == {DEPT}
    assert rows[0].details == {
        "email": "nia@example.org",
        "invitation_id": str(INVITATION),
        "role": "officer",
        "name": "Nia New",
    }
    assert rows[1].details == {"email": "nia@example.org", "invitation_id": str(INVITATION)}
    # Read back: nobody's account, the typed name and the address; the admin named.
    page = page_of(rows, 10, ActivityView(DEPT), {ADMIN: "Ada Admin"})
    first, second = page.items[:2]
    assert (first.person_id, first.person_name, first.person_email) == (
        None,
        "Nia New",
        "nia@example.org",
    )
    assert first.person_said() == "Nia New <nia@example.org>"
    assert second.person_said() == "nia@example.org" and first.by.label == "Ada Admin"
    [cells, *_] = list(csv.reader(io.StringIO(csv_lines(page.items).decode())))
    assert (cells[1], cells[2], cells[3], cells[4]) == (
        "invited",
        "Nia New <nia@example.org>",
        "",
        "Ada Admin",
    )
