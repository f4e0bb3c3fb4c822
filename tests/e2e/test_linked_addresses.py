"""Linked addresses: one person, one account, however they were invited (issue 16, item 1).

Tina has an account as tina.home@; a department invites tina.work@ and she accepts
signed in as tina.home@. Opening the emailed link proved she receives mail at the work
address, so identity links it to her account: from then on inviting, adding or
importing the work address finds her (already a member, or her account) instead of
making a second account. An address another account holds is not linked (she still
joins), and two accounts racing for one address cannot both hold it.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]  # no stubs in the test extra
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from prodigy_users.contracts.identity import AddressLinked, AddressUnlinked
from prodigy_users.contracts.schema_export import file_name
from prodigy_users.contracts.topics import IDENTITY_EVENTS
from tests.e2e.import_support import accounts_with, csv_file, results, run_import
from tests.e2e.test_public_topics import read_topics
from tests.support import (
    PASSWORD,
    Admin,
    Api,
    Person,
    accept,
    added_person,
    invitation_token,
    invite_ok,
    invited_person,
    problem_type,
    random_email,
    settle,
    wait_for,
    wait_mail_matching,
)

pytestmark = pytest.mark.e2e

SCHEMAS = Path(__file__).resolve().parents[2] / "contracts" / "schemas"

HEADER = ["Name", "E-mail", "Role", "Employee ID", "Groups"]


async def _query(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(text(sql), params))
    finally:
        await engine.dispose()


async def holders(stack: Any, email: str) -> list[tuple[str, bool]]:
    """Identity's ``(account_id, login)`` rows for the address: at most one, ever."""
    rows = await _query(
        stack.database_url("identity"),
        "SELECT account_id, login FROM account_addresses WHERE email_normalised = :e",
        e=email.lower(),
    )
    return [(str(r[0]), bool(r[1])) for r in rows]


async def linked_in_membership(stack: Any, email: str) -> str | None:
    """The account membership finds the linked address under, if it has heard of it."""
    rows = await _query(
        stack.database_url("membership"),
        "SELECT account_id FROM account_addresses WHERE email_normalised = :e",
        e=email.lower(),
    )
    return str(rows[0][0]) if rows else None


async def wait_linked(stack: Any, email: str, account_id: str) -> None:
    """Until membership's lookups find ``account_id`` under the address."""

    async def probe() -> bool | None:
        return True if await linked_in_membership(stack, email) == account_id else None

    await wait_for(probe, timeout=30.0, what=f"{email} linked to {account_id}")


async def accept_signed_in(api: Api, admin: Admin, address: str, person: Person) -> None:
    """Invite ``address`` into the admin's department; ``person`` accepts signed in."""
    [result] = await invite_ok(api, admin, [address])
    assert result["outcome"] == "invited", result
    [mail] = await wait_mail_matching(api, address, _invitation, what="invitation")
    outcome = await settle(api, await accept(api, invitation_token(mail), person=person))
    assert outcome.status_code in (200, 201), outcome.body
    assert outcome.body["account_id"] == person.account_id


def _invitation(mail: dict[str, Any]) -> bool:
    return "/invitations/" in mail["text"]


def _skip_external(stack: Any) -> None:
    if stack is None:
        pytest.skip("reads the services' databases")


async def test_tina_accepts_at_work_signed_in_at_home_and_is_found_by_her_work_address(
    api: Api, stack: Any
) -> None:
    _skip_external(stack)
    home_dept = await api.create_department(f"Home {uuid.uuid4().hex[:6]}")
    tina = await invited_person(api, home_dept, name="Tina Cruz")
    work = random_email("tina.work")
    admin = await api.create_department(f"Station {uuid.uuid4().hex[:6]}")

    await accept_signed_in(api, admin, work, tina)
    await wait_linked(stack, work, tina.account_id)
    assert await holders(stack, work) == [(tina.account_id, False)]
    assert await holders(stack, tina.email) == [(tina.account_id, True)]

    # Inviting the work address again: she is already a member.
    [again] = await invite_ok(api, admin, [work.upper()])
    assert again["outcome"] == "already_member", again
    # Adding it: already a member, and no second account.
    r = await api.add_member(admin, work, name="Tina Cruz")
    assert r.status_code == 409, r.text
    assert problem_type(r) == "already-member"
    # Importing it: already a member.
    status = await run_import(api, admin, csv_file([HEADER, ["Tina Cruz", work, "", "", ""]]))
    assert status["counts"]["already_member"] == 1, status["counts"]
    got = await results(api, admin, status["import_id"])
    assert got[1][-2] == "already_member", got

    # A department she is not in: adding the work address finds her account (the admin
    # is told to invite her), an import invites her; nobody makes a second account.
    other = await api.create_department(f"Other {uuid.uuid4().hex[:6]}")
    r = await api.add_member(other, work, name="Tina Cruz")
    settled = await settle(api, r)
    assert settled.status_code == 409, settled.body
    assert settled.body["type"].endswith("/account-exists"), settled.body
    status = await run_import(api, other, csv_file([HEADER, ["Tina Cruz", work, "", "", ""]]))
    assert status["counts"]["invited"] == 1 and status["counts"]["created"] == 0, status
    assert await accounts_with(stack.database_url("identity"), [work]) == {work.lower(): 0}
    assert await holders(stack, work) == [(tina.account_id, False)]

    # Signing in stays by the login email only.
    assert await api.login(tina.email)
    r = await api.http.post(
        api.url("identity", "/v1/auth/token"), json={"email": work, "password": PASSWORD}
    )
    assert r.status_code == 401, r.text


async def test_an_address_another_account_holds_is_not_linked_but_the_person_joins(
    api: Api, stack: Any
) -> None:
    _skip_external(stack)
    admin = await api.create_department(f"Station {uuid.uuid4().hex[:6]}")
    home = await api.create_department(f"Home {uuid.uuid4().hex[:6]}")
    owner = await added_person(api, home)
    other = await added_person(api, home)

    # The invitation went to the owner's login email; the other person accepts it.
    await accept_signed_in(api, admin, owner.email, other)
    assert await holders(stack, owner.email) == [(owner.account_id, True)]
    assert await linked_in_membership(stack, owner.email) is None


async def test_two_accounts_racing_to_link_one_address_one_wins(api: Api, stack: Any) -> None:
    _skip_external(stack)
    home = await api.create_department(f"Home {uuid.uuid4().hex[:6]}")
    first, second = await added_person(api, home), await added_person(api, home)
    shared = random_email("shared")
    dept_a = await api.create_department(f"A {uuid.uuid4().hex[:6]}")
    dept_b = await api.create_department(f"B {uuid.uuid4().hex[:6]}")
    for dept in (dept_a, dept_b):
        [result] = await invite_ok(api, dept, [shared])
        assert result["outcome"] == "invited", result
    mails = await api.wait_mail(shared, count=2)
    tokens = [invitation_token(m) for m in mails]

    answers = await asyncio.gather(
        accept(api, tokens[0], person=first), accept(api, tokens[1], person=second)
    )
    for r in answers:
        assert r.status_code in (200, 201, 202), r.text

    async def one_holder() -> list[tuple[str, bool]] | None:
        found = await holders(stack, shared)
        return found or None

    [(winner, login)] = await wait_for(one_holder, timeout=30.0, what="the address linked")
    assert not login and winner in (first.account_id, second.account_id)
    await wait_linked(stack, shared, winner)
    assert await accounts_with(stack.database_url("identity"), [shared]) == {shared.lower(): 0}


async def test_accepting_and_adding_the_address_at_once_leave_one_account_holding_it(
    api: Api, stack: Any
) -> None:
    _skip_external(stack)
    home = await api.create_department(f"Home {uuid.uuid4().hex[:6]}")
    tina = await added_person(api, home)
    work = random_email("tina.work")
    admin = await api.create_department(f"Station {uuid.uuid4().hex[:6]}")
    other = await api.create_department(f"Other {uuid.uuid4().hex[:6]}")
    [result] = await invite_ok(api, admin, [work])
    assert result["outcome"] == "invited", result
    [mail] = await api.wait_mail(work)

    accepted, added = await asyncio.gather(
        accept(api, invitation_token(mail), person=tina),
        api.add_member(other, work, name="Tina Cruz"),
    )
    assert accepted.status_code in (200, 201, 202), accepted.text
    added_outcome = await settle(api, added)

    async def settled_holder() -> list[tuple[str, bool]] | None:
        found = await holders(stack, work)
        return found or None

    [(holder, login)] = await wait_for(settled_holder, timeout=30.0, what="the address held")
    count = (await accounts_with(stack.database_url("identity"), [work]))[work.lower()]
    if added_outcome.status_code == 201:
        # The add came first: the address is a new account's login email, not linked.
        assert login and holder == added_outcome.body["account_id"] and count == 1
    else:
        assert added_outcome.status_code == 409, added_outcome.body
        assert (holder, login) == (tina.account_id, False) and count == 0


_ADDRESS_LINK = re.compile(r"/address-confirmation\?token=([A-Za-z0-9_\-]+)")


def _address_link(mail: dict[str, Any]) -> bool:
    return "/address-confirmation?token=" in mail["text"]


async def ask_to_link(api: Api, person: Person, address: str) -> str:
    """POST /v1/me/addresses (202) and the token of the link that reaches the address."""
    before = len([m for m in await api.mails(address) if _address_link(m)])
    r = await api.http.post(
        api.url("identity", "/v1/me/addresses"), json={"email": address}, headers=person.headers
    )
    assert r.status_code == 202, r.text
    assert not r.content
    mails = await wait_mail_matching(
        api, address, _address_link, count=before + 1, what="address link"
    )
    mail = mails[before]
    match = _ADDRESS_LINK.search(mail["text"])
    assert match and mail["html"] and match.group(1) in mail["html"], mail["text"]
    return match.group(1)


async def confirm_link(api: Api, token: str) -> httpx.Response:
    """POST /v1/address-confirmations."""
    return await api.http.post(
        api.url("identity", "/v1/address-confirmations"), json={"token": token}
    )


async def my_addresses(api: Api, person: Person) -> list[dict[str, Any]]:
    """GET /v1/me/addresses."""
    r = await api.http.get(api.url("identity", "/v1/me/addresses"), headers=person.headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_a_person_links_an_address_by_its_link_unlinks_it_and_it_is_free_again(
    api: Api, stack: Any, bootstrap: str
) -> None:
    _skip_external(stack)
    home = await api.create_department(f"Home {uuid.uuid4().hex[:6]}")
    tina, sam = await added_person(api, home), await added_person(api, home)
    work = random_email("tina.work")

    token = await ask_to_link(api, tina, work)
    r = await confirm_link(api, token)
    assert r.status_code == 200, r.text
    linked = r.json()
    assert linked["email"] == work and linked["login"] is False
    again = await confirm_link(api, token)
    assert again.status_code == 400 and problem_type(again) == "token-used", again.text

    items = await my_addresses(api, tina)
    assert [(i["email"], i["login"]) for i in items] == [(tina.email, True), (work, False)]
    await wait_linked(stack, work, tina.account_id)
    [result] = await invite_ok(api, home, [work])
    assert result["outcome"] == "already_member", result

    # The login email cannot be removed; someone else's address is not found.
    r = await api.http.delete(
        api.url("identity", f"/v1/me/addresses/{items[0]['address_id']}"), headers=tina.headers
    )
    assert r.status_code == 409 and problem_type(r) == "login-email-not-removable", r.text
    r = await api.http.delete(
        api.url("identity", f"/v1/me/addresses/{linked['address_id']}"), headers=sam.headers
    )
    assert r.status_code == 404 and problem_type(r) == "address-not-found", r.text
    # A request for an address of one's own is refused (it is not someone else's).
    r = await api.http.post(
        api.url("identity", "/v1/me/addresses"), json={"email": work.upper()}, headers=tina.headers
    )
    assert r.status_code == 422 and problem_type(r) == "address-already-yours", r.text

    r = await api.http.delete(
        api.url("identity", f"/v1/me/addresses/{linked['address_id']}"), headers=tina.headers
    )
    assert r.status_code == 204, r.text
    assert [i["email"] for i in await my_addresses(api, tina)] == [tina.email]
    assert await holders(stack, work) == []

    async def forgotten() -> bool | None:
        return True if await linked_in_membership(stack, work) is None else None

    await wait_for(forgotten, timeout=30.0, what="membership forgets the link")
    # The public topic says linked, then unlinked, and never the address itself.
    records = await read_topics(bootstrap, [IDENTITY_EVENTS.name])
    mine = [
        json.loads(v)
        for v in records[IDENTITY_EVENTS.name]
        if tina.account_id.encode() in v and b"address_" in v
    ]
    assert [e["type"] for e in mine] == [AddressLinked.TYPE, AddressUnlinked.TYPE], mine
    assert all(work.lower() not in json.dumps(e).lower() for e in mine)
    for envelope in mine:
        kind = AddressLinked if envelope["type"] == AddressLinked.TYPE else AddressUnlinked
        schema = json.loads((SCHEMAS / file_name(kind)).read_text())
        jsonschema.validate(envelope, schema, format_checker=jsonschema.FormatChecker())
    # Free again: another account links it.
    r = await confirm_link(api, await ask_to_link(api, sam, work))
    assert r.status_code == 200, r.text
    assert await holders(stack, work) == [(sam.account_id, False)]


async def test_asking_for_a_taken_address_answers_the_same_and_the_link_then_fails(
    api: Api, stack: Any
) -> None:
    _skip_external(stack)
    home = await api.create_department(f"Home {uuid.uuid4().hex[:6]}")
    asker, owner = await added_person(api, home), await added_person(api, home)
    free = random_email("free")

    answers = []
    for address in (free, owner.email):
        r = await api.http.post(
            api.url("identity", "/v1/me/addresses"), json={"email": address}, headers=asker.headers
        )
        answers.append((r.status_code, r.content, r.headers.get("content-type")))
    assert answers[0] == answers[1] == (202, b"", None), answers

    # A link went to each address: only its reader learns, on opening it, that it is taken.
    await wait_mail_matching(api, free, _address_link, what="address link")
    [mail] = await wait_mail_matching(api, owner.email, _address_link, what="address link")
    match = _ADDRESS_LINK.search(mail["text"])
    assert match
    token = match.group(1)
    r = await confirm_link(api, token)
    assert r.status_code == 409 and problem_type(r) == "email-taken", r.text
    assert await holders(stack, owner.email) == [(owner.account_id, True)]
    # The link is spent.
    r = await confirm_link(api, token)
    assert r.status_code == 400 and problem_type(r) == "token-used", r.text


async def test_an_expired_or_unknown_address_link_is_refused(api: Api, stack: Any) -> None:
    _skip_external(stack)
    home = await api.create_department(f"Home {uuid.uuid4().hex[:6]}")
    person = await added_person(api, home)
    address = random_email("late")
    token = await ask_to_link(api, person, address)
    engine = create_async_engine(stack.database_url("identity"))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE credential_tokens SET expires_at = now() - interval '1 second' "
                    "WHERE account_id = :a AND purpose = 'link_address'"
                ),
                {"a": person.account_id},
            )
    finally:
        await engine.dispose()
    r = await confirm_link(api, token)
    assert r.status_code == 400 and problem_type(r) == "token-expired", r.text
    r = await confirm_link(api, "not-a-token")
    assert r.status_code == 400 and problem_type(r) == "token-invalid", r.text
    assert await holders(stack, address) == []


async def test_the_duplicates_report_finds_two_accounts_of_one_name_and_domain(
    api: Api, stack: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _skip_external(stack)
    from prodigy_users.stack import cli

    name = f"Rosa Dup{uuid.uuid4().hex[:6]}"
    first = await api.create_department(f"A {uuid.uuid4().hex[:6]}")
    second = await api.create_department(f"B {uuid.uuid4().hex[:6]}")
    r1 = await api.add_member(first, random_email("rosa.home"), name=name)
    r2 = await api.add_member(second, random_email("rosa.work"), name=name.upper())
    assert r1.status_code == r2.status_code == 201, (r1.text, r2.text)
    ids = {r1.json()["account_id"], r2.json()["account_id"]}

    monkeypatch.setenv("PRODIGY_DATABASE_URL", stack.database_url("identity"))
    # In a thread: the command runs its own event loop, as it does for an operator.
    assert await asyncio.to_thread(cli.main, ["accounts", "duplicates", "--json"]) == 0
    groups = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [mine] = [g for g in groups if {a["account_id"] for a in g["accounts"]} & ids]
    assert mine["reason"] == "similar name, same domain"
    assert {a["account_id"] for a in mine["accounts"]} == ids
