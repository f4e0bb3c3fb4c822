"""Names and login emails that can change: they belong to the account, so a change
shows in every department (issue 16, item 4).

A person renames themselves (``PATCH /v1/me``) and an admin corrects a member's name
(``PATCH .../members/{account}``): membership's lists, both departments' users tables
and the person's own record follow, and ``identity.account_updated`` on the public
topic validates against its committed schema. A person moves their login email to an
address they prove with the link sent there: the old address gets a notice, the old
email no longer signs in and the new one does; used, replaced, expired and unknown
links are refused; an address another account holds is refused only when the link
is opened, never when it is asked for. Another department's admin cannot rename, and
control characters are refused with 422 naming the field.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the test extra
import pytest

from prodigy_users.contracts.identity import AccountUpdated
from prodigy_users.contracts.schema_export import file_name
from prodigy_users.contracts.topics import IDENTITY_EVENTS
from tests.e2e.test_public_topics import read_topics
from tests.support import (
    PASSWORD,
    Admin,
    Api,
    Person,
    bearer,
    checked_email,
    confirmation_token,
    invited_person,
    join,
    join_token,
    patch_member,
    problem_type,
    random_email,
    registration,
    subject_has,
    wait_for,
    wait_mail_matching,
    wait_row,
)

pytestmark = pytest.mark.e2e

SCHEMAS = Path(__file__).resolve().parents[2] / "contracts" / "schemas"
_CHANGE_LINK = re.compile(r"/email-change\?token=([A-Za-z0-9_\-]+)")


def change_token(mail: dict[str, Any]) -> str:
    """The token in a new login email's link; the HTML part has the same link."""
    match = _CHANGE_LINK.search(mail["text"])
    assert match, f"no email-change link in: {mail['text']!r}"
    assert mail["html"] and match.group(1) in mail["html"]
    return match.group(1)


async def _person_in_two_departments(api: Api, name: str) -> tuple[Admin, Person, Admin]:
    """A member of department A (invited, registered with a password) who is also the
    admin of department B: (A's admin, the person, the person as B's admin)."""
    admin_a = await api.create_department(f"Station A {uuid.uuid4().hex[:6]}")
    person = await invited_person(api, admin_a, name=name)
    as_admin_b = await api.create_department(
        f"Station B {uuid.uuid4().hex[:6]}", admin_email=person.email
    )
    assert as_admin_b.account_id == person.account_id, "one account in both departments"
    person = Person(person.account_id, person.email, as_admin_b.token)
    return admin_a, person, as_admin_b


async def _shown_everywhere(
    api: Api, admin_a: Admin, admin_b: Admin, person: Person, **expected: str
) -> None:
    """Both departments' users tables, membership's list and the person's own record
    show ``expected`` (name, email) for the person."""

    def matches(row: dict[str, Any] | None) -> bool:
        return row is not None and all(row[k] == v for k, v in expected.items())

    for admin in (admin_a, admin_b):
        await wait_row(api, admin, person.account_id, matches, what=f"{expected} in the table")

    async def record() -> dict[str, Any] | None:
        r = await api.http.get(api.url("reporting", "/v1/me/record"), headers=person.headers)
        assert r.status_code == 200, r.text
        mine = r.json()["departments"]
        ok = len(mine) == 2 and all(matches(d) for d in mine)
        return r.json() if ok else None

    await wait_for(record, timeout=30.0, what=f"{expected} in the person's own record")

    async def members() -> bool | None:
        # An empty PATCH changes nothing and answers membership's view of the member.
        for admin in (admin_a, admin_b):
            r = await patch_member(api, admin, person.account_id, {})
            assert r.status_code == 200, r.text
            if not matches(r.json()):
                return None
        return True

    await wait_for(members, timeout=30.0, what=f"{expected} in membership's members")


async def _account_updates(bootstrap: str, account_id: str) -> list[dict[str, Any]]:
    """The account's ``account_updated`` events on the public topic, each validated
    against its committed JSON Schema."""
    records = await read_topics(bootstrap, [IDENTITY_EVENTS.name])
    schema = json.loads((SCHEMAS / file_name(AccountUpdated)).read_text())
    found = []
    for value in records[IDENTITY_EVENTS.name]:
        envelope = json.loads(value)
        if envelope["type"] != AccountUpdated.TYPE:
            continue
        if envelope["data"]["account_id"] != account_id:
            continue
        jsonschema.validate(envelope, schema, format_checker=jsonschema.FormatChecker())
        found.append(envelope["data"])
    return found


async def test_a_person_renames_themselves_and_every_department_shows_it(
    api: Api, bootstrap: str
) -> None:
    admin_a, person, admin_b = await _person_in_two_departments(api, "Rosa Tpyo")
    # Joined B as its admin under the name its operator typed: one person, two names.
    await wait_row(api, admin_b, person.account_id, bool, what="the person in B's table")

    r = await api.http.patch(
        api.url("identity", "/v1/me"), json={"name": "  Rosa   Typo "}, headers=person.headers
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"account_id": person.account_id, "email": person.email, "name": "Rosa Typo"}
    await _shown_everywhere(api, admin_a, admin_b, person, name="Rosa Typo")

    # The same name again changes nothing and announces nothing.
    r = await api.http.patch(
        api.url("identity", "/v1/me"), json={"name": "Rosa Typo"}, headers=person.headers
    )
    assert r.status_code == 200 and r.json()["name"] == "Rosa Typo", r.text
    me = await api.http.get(api.url("identity", "/v1/me"), headers=person.headers)
    assert me.json()["name"] == "Rosa Typo"

    async def announced() -> list[dict[str, Any]] | None:
        found = await _account_updates(bootstrap, person.account_id)
        return found or None

    [event] = await wait_for(announced, timeout=30.0, what="account_updated on the topic")
    assert event["name"] == {"old": "Rosa Tpyo", "new": "Rosa Typo"}
    assert event["changed_by"] == person.account_id
    assert event.get("email") is None and event.get("department_id") is None


async def test_an_admin_corrects_a_members_name_in_every_department(
    api: Api, bootstrap: str
) -> None:
    admin_a, person, admin_b = await _person_in_two_departments(api, "Sam Rivrea")
    await wait_row(api, admin_b, person.account_id, bool, what="the person in B's table")

    r = await patch_member(api, admin_a, person.account_id, {"name": "Sam Rivera"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Sam Rivera"
    assert body["notes"] == [
        "The name belongs to the person's account: it changed in every department they "
        "belong to."
    ]
    await _shown_everywhere(api, admin_a, admin_b, person, name="Sam Rivera")
    me = await api.http.get(api.url("identity", "/v1/me"), headers=person.headers)
    assert me.json()["name"] == "Sam Rivera"

    async def announced() -> list[dict[str, Any]] | None:
        found = await _account_updates(bootstrap, person.account_id)
        return found or None

    [event] = await wait_for(announced, timeout=30.0, what="account_updated on the topic")
    assert event["name"] == {"old": "Sam Rivrea", "new": "Sam Rivera"}
    assert event["changed_by"] == admin_a.account_id
    assert event["department_id"] == admin_a.department_id

    # Another change that is no rename says nothing about names.
    r = await patch_member(api, admin_a, person.account_id, {"employee_id": "E-17"})
    assert r.status_code == 200 and r.json()["notes"] == [], r.text


async def test_only_an_admin_of_one_of_the_persons_departments_renames_them(
    api: Api,
) -> None:
    admin_a = await api.create_department()
    person = await invited_person(api, admin_a, name="Ana Lima")
    other = await api.create_department()

    # Another department's admin, on this department's path: not their department.
    r = await patch_member(
        api,
        Admin(admin_a.department_id, other.account_id, other.email, other.token),
        person.account_id,
        {"name": "Ana Hijacked"},
    )
    assert r.status_code == 403 and problem_type(r) == "forbidden", r.text
    # ... and on their own department's path: the person is no member there.
    r = await patch_member(api, other, person.account_id, {"name": "Ana Hijacked"})
    assert r.status_code == 404 and problem_type(r) == "member-not-found", r.text
    # The person themselves is no admin.
    as_person = Admin(admin_a.department_id, person.account_id, person.email, person.token)
    r = await patch_member(api, as_person, person.account_id, {"name": "Ana Hijacked"})
    assert r.status_code == 403, r.text

    me = await api.http.get(api.url("identity", "/v1/me"), headers=person.headers)
    assert me.json()["name"] == "Ana Lima"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Ana\nLima", "control characters"),
        ("Ana\u0000Lima", "must not contain U+0000"),
        ("   ", "blank"),
        ("", "at least 1"),
        ("x" * 201, "at most 200"),
    ],
)
async def test_a_bad_name_is_refused_naming_the_field(api: Api, name: str, message: str) -> None:
    admin = await api.create_department()
    person = await invited_person(api, admin, name="Ana Lima")
    answers = [
        await api.http.patch(
            api.url("identity", "/v1/me"), json={"name": name}, headers=person.headers
        ),
        await patch_member(api, admin, person.account_id, {"name": name}),
    ]
    for r in answers:
        assert r.status_code == 422 and problem_type(r) == "validation", r.text
        [error] = r.json()["errors"]
        assert error["field"].endswith("name"), error
        assert message in error["message"], error
    me = await api.http.get(api.url("identity", "/v1/me"), headers=person.headers)
    assert me.json()["name"] == "Ana Lima"


async def _ask(api: Api, person: Person, email: str, password: str = PASSWORD) -> Any:
    return await api.http.post(
        api.url("identity", "/v1/me/email-change"),
        json={"email": email, "password": password},
        headers=person.headers,
    )


async def _confirm(api: Api, token: str) -> Any:
    return await api.http.post(
        api.url("identity", "/v1/email-change-confirmations"), json={"token": token}
    )


async def _signs_in(api: Api, email: str) -> int:
    r = await api.http.post(
        api.url("identity", "/v1/auth/token"), json={"email": email, "password": PASSWORD}
    )
    return r.status_code


async def test_a_person_moves_their_login_email_with_a_link_sent_to_the_new_address(
    api: Api, bootstrap: str
) -> None:
    admin_a, person, admin_b = await _person_in_two_departments(api, "Tina Cruz")
    old, new = person.email, random_email("tina-new")

    # Two requests: only the latest link works.
    assert (await _ask(api, person, new)).status_code == 202
    [first] = await wait_mail_matching(api, new, subject_has("confirm", "login email"))
    assert (await _ask(api, person, new)).status_code == 202
    mails = await wait_mail_matching(api, new, subject_has("confirm", "login email"), count=2)
    latest = next(change_token(m) for m in mails if change_token(m) != change_token(first))
    r = await _confirm(api, change_token(first))
    assert r.status_code == 400 and problem_type(r) == "token-used", r.text
    # Nothing changed yet: the old email signs in, the new one does not.
    assert await _signs_in(api, old) == 200
    assert await _signs_in(api, new) == 401

    r = await _confirm(api, latest)
    assert r.status_code == 200, r.text
    assert r.json() == {"account_id": person.account_id, "email": new, "name": "Tina Cruz"}
    r = await _confirm(api, latest)
    assert r.status_code == 400 and problem_type(r) == "token-used", r.text
    r = await _confirm(api, "never-issued-" + uuid.uuid4().hex)
    assert r.status_code == 400 and problem_type(r) == "token-invalid", r.text

    assert await _signs_in(api, old) == 401
    assert await _signs_in(api, new) == 200
    [notice] = await wait_mail_matching(api, old, subject_has("login email", "changed"))
    assert old in notice["text"] and new not in notice["text"], "the new address is masked"
    assert f"{new[0]}***@{new.rsplit('@', 1)[1]}" in notice["text"]
    me = await api.http.get(api.url("identity", "/v1/me"), headers=bearer(await api.login(new)))
    assert me.json()["email"] == new

    await _shown_everywhere(api, admin_a, admin_b, person, email=new)
    # Membership looks people up by their login email: the new one finds the person.
    r = await api.add_member(admin_a, new.upper(), name="Tina Again")
    assert r.status_code == 409 and problem_type(r) == "already-member", r.text

    async def announced() -> list[dict[str, Any]] | None:
        found = [e for e in await _account_updates(bootstrap, person.account_id) if e.get("email")]
        return found or None

    [event] = await wait_for(announced, timeout=30.0, what="the email change on the topic")
    assert event["email"] == {"old": old, "new": new}
    assert event["changed_by"] == person.account_id


async def test_bad_email_change_requests_are_refused_and_counted(api: Api) -> None:
    admin = await api.create_department()
    person = await invited_person(api, admin, name="Bo Bad")
    new = random_email("bo-new")

    r = await _ask(api, person, new, password="not the password")
    assert r.status_code == 422 and problem_type(r) == "wrong-password", r.text
    assert r.json()["errors"][0]["field"] == "password"
    r = await _ask(api, person, person.email.upper())
    assert r.status_code == 422 and problem_type(r) == "same-email", r.text
    assert r.json()["errors"][0]["field"] == "email"
    r = await _ask(api, person, "not an address")
    assert r.status_code == 422 and problem_type(r) == "validation", r.text
    r = await _ask(api, person, new + "\n")
    assert r.status_code == 422 and problem_type(r) == "validation", r.text
    assert r.json()["errors"][0]["field"].endswith("email")
    r = await api.http.post(
        api.url("identity", "/v1/me/email-change"), json={"email": new, "password": PASSWORD}
    )
    assert r.status_code == 401, "signed in only"
    assert await api.mails(new) == [], "nothing was sent for a refused request"

    # Every request that passes validation counts (each may email an address the person
    # typed), wrong passwords too: 5 per 15 minutes.
    for _ in range(3):
        assert (await _ask(api, person, new)).status_code == 202
    r = await _ask(api, person, new)
    assert r.status_code == 429 and problem_type(r) == "too-many-attempts", r.text
    assert int(r.headers["retry-after"]) > 0


async def test_an_address_another_account_holds_is_refused_only_when_the_link_is_opened(
    api: Api,
) -> None:
    admin = await api.create_department()
    holder = await invited_person(api, admin, name="Holly Holder")
    person = await invited_person(api, admin, name="Pat Asker")

    # The same answer as for a free address: nothing tells the asker it is taken.
    r = await _ask(api, person, holder.email.upper())
    assert r.status_code == 202 and r.content == b"", r.text
    [mail] = await wait_mail_matching(api, holder.email, subject_has("confirm", "login email"))
    r = await _confirm(api, change_token(mail))
    assert r.status_code == 409 and problem_type(r) == "email-taken", r.text
    r = await _confirm(api, change_token(mail))
    assert r.status_code == 400 and problem_type(r) == "token-used", r.text

    assert await _signs_in(api, person.email) == 200
    assert await _signs_in(api, holder.email) == 200
    me = await api.http.get(api.url("identity", "/v1/me"), headers=person.headers)
    assert me.json()["email"] == person.email


async def test_an_expired_email_change_link_is_refused(api: Api, controllable: Any) -> None:
    admin = await api.create_department()
    person = await invited_person(api, admin, name="Eve Expired")
    new = random_email("eve-new")
    assert (await _ask(api, person, new)).status_code == 202
    [mail] = await wait_mail_matching(api, new, subject_has("confirm", "login email"))

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(controllable.database_url("identity"))
    try:
        async with engine.begin() as conn:
            moved = await conn.execute(
                text(
                    "UPDATE credential_tokens SET expires_at = now() - interval '1 minute'"
                    " WHERE account_id = :a AND purpose = 'change_email' AND used_at IS NULL"
                ),
                {"a": uuid.UUID(person.account_id)},
            )
            assert moved.rowcount == 1
    finally:
        await engine.dispose()

    r = await _confirm(api, change_token(mail))
    assert r.status_code == 400 and problem_type(r) == "token-expired", r.text
    assert await _signs_in(api, person.email) == 200
    assert await _signs_in(api, new) == 401


async def test_two_accounts_confirming_the_same_new_address_at_once_one_wins(api: Api) -> None:
    admin = await api.create_department()
    first = await invited_person(api, admin, name="Ines First")
    second = await invited_person(api, admin, name="Ugo Second")
    wanted = random_email("contested")
    for person in (first, second):
        assert (await _ask(api, person, wanted)).status_code == 202
    mails = await wait_mail_matching(api, wanted, subject_has("confirm", "login email"), count=2)
    tokens = [change_token(m) for m in mails]

    answers = await asyncio.gather(*(_confirm(api, t) for t in tokens))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 409], [r.text for r in answers]
    [refused] = [r for r in answers if r.status_code == 409]
    assert problem_type(refused) == "email-taken"
    [won] = [r.json() for r in answers if r.status_code == 200]
    loser = second if won["account_id"] == first.account_id else first

    # One account has the address; the other keeps its own and still signs in.
    assert await _signs_in(api, wanted) == 200
    assert await _signs_in(api, loser.email) == 200
    me = await api.http.get(api.url("identity", "/v1/me"), headers=loser.headers)
    assert me.json()["email"] == loser.email


async def test_a_registration_nobody_confirmed_does_not_hold_the_address(api: Api) -> None:
    # Someone registers the address first and never confirms: as for every other
    # request for it, the address is free; their registration lapses.
    admin = await api.create_department()
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/registration-link"),
        json={"role": "member"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    wanted = random_email("squatted")
    squat = await join(api, join_token(r.json()["url"]), body=registration(wanted, "Sq Uatter"))
    checked_email(squat, wanted)
    [confirmation] = await wait_mail_matching(api, wanted, subject_has("confirm your email"))

    person = await invited_person(api, admin, name="Rightful Owner")
    assert (await _ask(api, person, wanted)).status_code == 202
    [mail] = await wait_mail_matching(api, wanted, subject_has("confirm", "login email"))
    r = await _confirm(api, change_token(mail))
    assert r.status_code == 200 and r.json()["email"] == wanted, r.text
    assert await _signs_in(api, wanted) == 200

    # The registration's link no longer confirms anything.
    r = await api.http.post(
        api.url("identity", "/v1/email-confirmations"),
        json={"token": confirmation_token(confirmation), "password": PASSWORD},
    )
    assert r.status_code == 400 and problem_type(r) == "token-invalid", r.text
