"""Who did it, end to end: a department's activity log and the record's history say who
made every change (an admin by name, the person themselves, an import), the log's
filters, paging and CSV (formula cells neutralised) work, and only the department's
admins read it."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.import_support import csv_file, run_import, tag
from tests.support import (
    Admin,
    Api,
    Person,
    accept,
    added_person,
    bearer,
    invitation_token,
    invite_ok,
    invited_person,
    patch_member,
    problem_type,
    random_email,
    subject_has,
    wait_for,
    wait_mail_matching,
)

pytestmark = pytest.mark.e2e

# A name a spreadsheet would run as a formula.
FORMULA_NAME = '=HYPERLINK("http://evil.example","Sam")'
ADMIN_NAME = "Ada Admin"  # what ``Api.create_department`` names the admin
CHANGES = 13  # what the story below makes


def _log_path(admin: Admin, suffix: str = "") -> str:
    return f"/v1/reports/departments/{admin.department_id}/activity{suffix}"


async def _get(
    api: Api,
    admin: Admin,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await api.http.get(
        api.url("reporting", _log_path(admin)),
        params=params or {},
        headers=headers if headers is not None else admin.headers,
    )


async def _walk(api: Api, admin: Admin, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        r = await _get(api, admin, {**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def _wait_log(api: Api, admin: Admin, count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        r = await _get(api, admin, {"limit": "500"})
        if r.status_code == 403:  # reporting has not heard of the admin yet
            return None
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items if len(items) >= count else None

    return await wait_for(probe, timeout=60.0, what=f"{count} changes in the activity log")


def _of(log: list[dict[str, Any]], person: Person) -> list[dict[str, Any]]:
    return [e for e in log if e["person"]["account_id"] == person.account_id]


def _said(entry: dict[str, Any]) -> tuple[str, str, str, str | None]:
    return (
        entry["action"],
        entry["person"]["account_id"],
        entry["by"]["kind"],
        entry["by"]["label"],
    )


@pytest.fixture(scope="module")
async def story(api: Api) -> dict[str, Any]:
    """A department's admin adds, changes, marks inactive and removes people, someone
    joins by invitation and has their name corrected by the admin, another invitation
    is withdrawn, and an import adds two people; every change has reached the log."""
    admin = await api.create_department()
    sam = await added_person(api, admin)
    r = await api.add_member(admin, random_email("formula"), name=FORMULA_NAME)
    assert r.status_code == 201, r.text
    formula = r.json()["account_id"]
    r = await patch_member(api, admin, sam.account_id, {"role": "officer"})
    assert r.status_code == 200, r.text
    r = await patch_member(api, admin, sam.account_id, {"status": "inactive"})
    assert r.status_code == 200, r.text
    ivy = await invited_person(api, admin, name="Ivy Invitd")
    r = await patch_member(api, admin, ivy.account_id, {"name": "Ivy Invited"})
    assert r.status_code == 200, r.text
    gone = random_email("withdrawn")
    [withdrawn] = await invite_ok(api, admin, f"Wes Withdrawn <{gone}>")
    r = await api.http.delete(
        api.url(
            "membership",
            f"/v1/departments/{admin.department_id}/invitations/{withdrawn['invitation_id']}",
        ),
        headers=admin.headers,
    )
    assert r.status_code == 204, r.text
    t = tag()
    imported = await run_import(
        api,
        admin,
        csv_file(
            [
                ["Email", "Name"],
                [f"imp1-{t}@example.org", "Imp One"],
                [f"imp2-{t}@example.org", "Imp Two"],
            ]
        ),
    )
    assert imported["counts"]["created"] == 2, imported
    # The record's history of a person before their removal (the record goes with it).
    before_removal = await _record_history(api, admin, sam.account_id, 3)
    r = await api.http.delete(
        api.url("membership", f"/v1/departments/{admin.department_id}/members/{formula}"),
        headers=admin.headers,
    )
    assert r.status_code == 204, r.text
    # The admin's own join, Sam's join, role and status, the formula's join and removal,
    # Ivy's invitation, join and rename, Wes's invitation and its withdrawal, two
    # imported joins.
    log = await _wait_log(api, admin, CHANGES)
    return {
        "admin": admin,
        "sam": sam,
        "formula": formula,
        "ivy": ivy,
        "withdrawn": gone,
        "log": log,
        "sam_history": before_removal,
    }


async def _record_history(
    api: Api, admin: Admin, account_id: str, count: int
) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        r = await api.http.get(
            api.url(
                "reporting", f"/v1/reports/departments/{admin.department_id}/users/{account_id}"
            ),
            headers=admin.headers,
        )
        if r.status_code in (403, 404):
            return None
        assert r.status_code == 200, r.text
        history: list[dict[str, Any]] = r.json()["history"]
        return history if len(history) >= count else None

    return await wait_for(probe, timeout=60.0, what=f"{count} entries in the record's history")


async def test_the_log_lists_every_change_with_who_what_whom_and_when(
    story: dict[str, Any],
) -> None:
    admin: Admin = story["admin"]
    sam: Person = story["sam"]
    ivy: Person = story["ivy"]
    log: list[dict[str, Any]] = story["log"]
    by_admin = ("admin", ADMIN_NAME)
    got = [_said(e) for e in log]
    assert len(got) == CHANGES, got
    for expected in [
        ("joined", sam.account_id, *by_admin),
        ("role_changed", sam.account_id, *by_admin),
        ("status_changed", sam.account_id, *by_admin),
        ("joined", story["formula"], *by_admin),
        ("removed", story["formula"], *by_admin),
        ("joined", ivy.account_id, "self", "the person themselves"),
        # The name is the account's, but the admin fixed it here: this log says so.
        ("renamed", ivy.account_id, *by_admin),
        # The department's first admin was added by the operator who created it.
        ("joined", admin.account_id, "operator", "an operator"),
    ]:
        assert expected in got, (expected, got)
    imports = [e for e in log if e["by"]["kind"] == "import"]
    assert sorted(e["person"]["name"] for e in imports) == ["Imp One", "Imp Two"]
    for e in imports:
        assert e["action"] == "joined" and e["by"]["label"] == "an import"
        assert (e["by"]["account_id"], e["by"]["name"]) == (admin.account_id, ADMIN_NAME)
        assert e["details"]["via"] == "import" and uuid.UUID(e["details"]["import_id"])
    # Newest first; every entry has its event, time and the person's name.
    times = [datetime.fromisoformat(e["at"]) for e in log]
    assert times == sorted(times, reverse=True)
    assert len({e["event_id"] for e in log}) == CHANGES
    role = next(e for e in log if e["action"] == "role_changed")
    assert role["details"] == {"role": "officer", "previous_role": "member"}
    assert role["person"]["name"] == "Pat Member"
    assert role["by"]["account_id"] == admin.account_id
    assert abs(times[0] - datetime.now(UTC)) < timedelta(minutes=10)
    ivy_join = next(e for e in log if e["action"] == "joined" and e in _of(log, ivy))
    assert ivy_join["details"]["invited_by"] == admin.account_id
    [renamed] = [e for e in _of(log, ivy) if e["action"] == "renamed"]
    assert renamed["details"] == {"name": "Ivy Invited", "previous_name": "Ivy Invitd"}
    assert renamed["person"]["name"] == "Ivy Invited"
    # An invitation names the address (nobody may have an account yet), by the admin.
    invitations = [e for e in log if e["person"]["account_id"] is None]
    assert sorted((e["action"], e["person"]["email"]) for e in invitations) == sorted(
        [
            ("invited", ivy.email),
            ("invited", story["withdrawn"]),
            ("invitation_revoked", story["withdrawn"]),
        ]
    )
    assert {_said(e)[2:] for e in invitations} == {by_admin}
    wes = [e for e in invitations if e["action"] == "invited" and e["person"]["name"]]
    assert [e["person"]["name"] for e in wes] == ["Wes Withdrawn"]
    assert wes[0]["details"]["role"] == "member" and uuid.UUID(wes[0]["details"]["invitation_id"])


async def test_the_record_history_says_who_made_each_change(
    api: Api, story: dict[str, Any]
) -> None:
    history = story["sam_history"]
    assert [(h["event"], h["by"]["kind"], h["by"]["label"]) for h in history] == [
        ("joined", "admin", ADMIN_NAME),
        ("role_changed", "admin", ADMIN_NAME),
        ("status_changed", "admin", ADMIN_NAME),
    ]
    assert {h["by"]["account_id"] for h in history} == {story["admin"].account_id}
    ivy: Person = story["ivy"]
    history = await _record_history(api, story["admin"], ivy.account_id, 2)
    assert [(h["event"], h["by"]["kind"], h["by"]["label"]) for h in history] == [
        ("joined", "self", "the person themselves"),
        ("renamed", "admin", ADMIN_NAME),
    ]
    assert history[1]["details"] == {"name": "Ivy Invited", "previous_name": "Ivy Invitd"}


async def test_filters_by_person_action_and_dates(api: Api, story: dict[str, Any]) -> None:
    admin: Admin = story["admin"]
    sam: Person = story["sam"]
    mine = await _walk(api, admin, {"person": sam.account_id})
    assert [e["action"] for e in mine] == ["status_changed", "role_changed", "joined"]
    changes = await _walk(api, admin, {"action": "role_changed,removed"})
    assert sorted(e["action"] for e in changes) == ["removed", "role_changed"]
    assert await _walk(api, admin, {"action": ["joined"], "person": sam.account_id}) == [mine[-1]]
    today = datetime.now(UTC).date()
    everything = await _walk(api, admin, {"from": str(today - timedelta(days=1)), "to": str(today)})
    assert len(everything) == CHANGES
    assert await _walk(api, admin, {"to": str(today - timedelta(days=1))}) == []
    assert await _walk(api, admin, {"from": str(today + timedelta(days=1))}) == []


async def test_bad_filters_are_problems_naming_the_field(api: Api, story: dict[str, Any]) -> None:
    admin: Admin = story["admin"]
    r = await _get(api, admin, {"person": "nobody", "action": "hired", "from": "yesterday"})
    assert r.status_code == 422 and problem_type(r) == "validation", r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == ["person", "action", "from"]
    r = await _get(api, admin, {"from": "2026-12-05", "to": "2026-12-01"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["to"]
    page = (await _get(api, admin, {"limit": "2"})).json()
    r = await _get(api, admin, {"limit": "2", "cursor": page["next_cursor"], "action": "joined"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["cursor"], r.text


async def test_pages_walk_the_whole_log_once(api: Api, story: dict[str, Any]) -> None:
    admin: Admin = story["admin"]
    walked = await _walk(api, admin, {"limit": "2"})
    assert [e["event_id"] for e in walked] == [e["event_id"] for e in story["log"]]
    first = (await _get(api, admin, {"limit": str(CHANGES)})).json()
    assert first["next_cursor"] is None


async def test_the_csv_has_every_change_with_formulas_neutralised(
    api: Api, story: dict[str, Any]
) -> None:
    admin: Admin = story["admin"]
    r = await api.http.get(api.url("reporting", _log_path(admin, "/export")), headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert "activity-" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8"))))
    assert rows[0] == [
        "When (UTC)",
        "Action",
        "Person",
        "Person's account ID",
        "By",
        "By (kind)",
        "By account ID",
        "Details",
    ]
    body = rows[1:]
    assert [row[3] for row in body] == [e["person"]["account_id"] or "" for e in story["log"]]
    formula = [row for row in body if row[3] == story["formula"]]
    assert {row[1] for row in formula} == {"joined", "removed"}
    assert {row[2] for row in formula} == {"'" + FORMULA_NAME}
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in body for cell in row)
    assert {row[4] for row in formula} == {ADMIN_NAME}
    # The same filters as the log.
    r = await api.http.get(
        api.url("reporting", _log_path(admin, "/export")),
        params={"person": story["sam"].account_id, "bom": "true"},
        headers=admin.headers,
    )
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    assert len(list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))) == 1 + 3
    r = await api.http.get(
        api.url("reporting", _log_path(admin, "/export")),
        params={"action": "x"},
        headers=admin.headers,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "action"


async def test_only_the_department_s_admins_read_it(api: Api, story: dict[str, Any]) -> None:
    admin: Admin = story["admin"]
    ivy: Person = story["ivy"]
    sam: Person = story["sam"]  # an officer now: reads the users table, not the log
    other = await api.create_department()
    for headers in (bearer(ivy.token), bearer(sam.token), other.headers):
        for suffix in ("", "/export"):
            r = await api.http.get(api.url("reporting", _log_path(admin, suffix)), headers=headers)
            assert r.status_code == 403 and problem_type(r) == "forbidden", r.text
            assert r.json()["detail"] == "Only admins of this department may see its activity."
    # The users table answers members and other departments' admins the same way.
    for headers in (bearer(ivy.token), other.headers):
        r = await api.http.get(
            api.url("reporting", f"/v1/reports/departments/{admin.department_id}/users"),
            headers=headers,
        )
        assert r.status_code == 403 and problem_type(r) == "forbidden"
    r = await api.http.get(api.url("reporting", _log_path(admin)))
    assert r.status_code == 401


async def test_group_changes_update_imports_and_restores_say_who(api: Api) -> None:
    admin = await api.create_department()
    pat = await added_person(api, admin)
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/groups"),
        json={"name": "Night shift"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    group_id = r.json()["group_id"]
    r = await api.http.put(
        api.url(
            "membership",
            f"/v1/departments/{admin.department_id}/groups/{group_id}/members/{pat.account_id}",
        ),
        headers=admin.headers,
    )
    assert r.status_code == 204, r.text
    t = tag()
    updated = await run_import(
        api,
        admin,
        csv_file(
            [["Email", "Role", "Employee ID", "Groups"], [pat.email, "officer", f"E-{t}", ""]]
        ),
        mode="update",
    )
    assert updated["counts"]["updated"] == 1, updated
    member = f"/v1/departments/{admin.department_id}/members/{pat.account_id}"
    r = await api.http.delete(api.url("membership", member), headers=admin.headers)
    assert r.status_code == 204, r.text
    # Invited back: the person comes back themselves.
    [result] = await invite_ok(api, admin, [pat.email])
    assert result["outcome"] == "invited", result
    [mail] = await wait_mail_matching(api, pat.email, subject_has("invited"))
    r = await accept(api, invitation_token(mail), person=pat)
    assert r.status_code == 200 and r.json()["status"] == "restored", r.text

    # An operator's upload (``prodigy-users import``) names no admin.
    by_operator = await run_import(
        api,
        admin,
        csv_file([["Email", "Name"], [f"op-{t}@example.org", "Olu Operated"]]),
        headers=bearer(api.keys.operator_token()),
    )
    assert by_operator["counts"]["created"] == 1, by_operator

    # admin's join, pat's join, group join, role + employee ID by the import, removal,
    # the invitation back, restore, the operator's import
    log = await _wait_log(api, admin, 9)
    [operated] = [e for e in log if e["person"]["name"] == "Olu Operated"]
    assert operated["by"] == {
        "kind": "import",
        "account_id": None,
        "name": None,
        "label": "an import",
    }
    assert operated["details"]["import_id"] == by_operator["import_id"]
    got = [
        (e["action"], e["by"]["kind"], e["by"]["account_id"])
        for e in log
        if e["person"]["account_id"] == pat.account_id
    ]
    assert got == [
        ("restored", "self", pat.account_id),
        ("removed", "admin", admin.account_id),
        ("employee_id_set", "import", admin.account_id),
        ("role_changed", "import", admin.account_id),
        ("joined_group", "admin", admin.account_id),
        ("joined", "admin", admin.account_id),
    ] or got == [
        ("restored", "self", pat.account_id),
        ("removed", "admin", admin.account_id),
        ("role_changed", "import", admin.account_id),
        ("employee_id_set", "import", admin.account_id),
        ("joined_group", "admin", admin.account_id),
        ("joined", "admin", admin.account_id),
    ], got
    by_import = [e for e in log if e["by"]["kind"] == "import"]
    assert {e["details"]["import_id"] for e in by_import} == {
        updated["import_id"],
        by_operator["import_id"],
    }
    assert {e["by"]["label"] for e in by_import} == {"an import"}
