"""Safe retries: the POSTs that create something honour ``Idempotency-Key``, and adding
someone who is already a member says so.

A client whose connection was cut sends the same request again with the same key and
is answered what the first attempt was answered, with nothing made twice; the case
the faults found (membership killed between committing an add and storing its
answer) is reproduced by leaving the key as a dead process leaves it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.import_support import csv_file, imports_path, upload
from tests.support import Admin, Api, bearer, invite, problem_type, random_email

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def admin(api: Api) -> Admin:
    return await api.create_department()


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _add(
    api: Api, admin: Admin, email: str, key: dict[str, str], name: str = "Pat Retry"
) -> httpx.Response:
    return await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/members"),
        json={"name": name, "email": email, "role": "member"},
        headers={**admin.headers, **key},
    )


async def _fence(api: Api, admin: Admin) -> None:
    """A later, unrelated add whose email has arrived: any email the requests before it
    caused has been relayed, consumed and sent by now."""
    fence = random_email("fence")
    assert (await api.add_member(admin, fence)).status_code == 201
    await api.wait_mail(fence)


async def _imports(api: Api, admin: Admin) -> list[str]:
    """The department's import ids, newest first."""
    r = await api.http.get(api.url("membership", imports_path(admin)), headers=admin.headers)
    assert r.status_code == 200, r.text
    return [i["import_id"] for i in r.json()["items"]]


def _same_answer(first: httpx.Response, again: httpx.Response) -> None:
    assert again.status_code == first.status_code, again.text
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers.get("location") == first.headers.get("location")
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers


async def test_an_add_sent_again_with_its_key_is_answered_the_same_and_adds_once(
    api: Api, admin: Admin
) -> None:
    email, key = random_email("retry"), _key()

    first = await _add(api, admin, email, key)
    again = await _add(api, admin, email, key)

    assert first.status_code == 201, first.text
    _same_answer(first, again)
    other = await _add(api, admin, email, key, name="Someone Else")
    assert other.status_code == 422 and problem_type(other) == "idempotency-key-mismatch"
    await api.wait_mail(email)
    await _fence(api, admin)
    assert len(await api.mails(email)) == 1
    rows = [u for u in await api.report_users(admin) if u["email"] == email]
    assert [r["account_id"] for r in rows] == [first.json()["account_id"]]


async def test_two_requests_with_one_key_at_once_run_once(api: Api, admin: Admin) -> None:
    email, key = random_email("twin"), _key()

    answers = await asyncio.gather(_add(api, admin, email, key), _add(api, admin, email, key))

    ran = [r for r in answers if "idempotent-replayed" not in r.headers and r.status_code == 201]
    assert len(ran) == 1, [(r.status_code, r.text) for r in answers]
    [other] = [r for r in answers if r is not ran[0]]
    if other.status_code == 409:
        assert problem_type(other) == "idempotency-key-in-use"
        assert other.headers["retry-after"] == "1"
    else:
        _same_answer(ran[0], other)
    # However the second was answered, a retry now gets the first answer.
    _same_answer(ran[0], await _add(api, admin, email, key))
    await api.wait_mail(email)
    await _fence(api, admin)
    assert len(await api.mails(email)) == 1


async def test_invitations_groups_imports_and_departments_take_keys(
    api: Api, admin: Admin
) -> None:
    # Invitations: the same paste again is answered "invited", not "already_invited".
    invitee, key = random_email("inv"), _key()
    first = await invite(api, admin, [invitee], headers={**admin.headers, **key})
    assert first.status_code == 200 and first.json()["results"][0]["outcome"] == "invited"
    _same_answer(first, await invite(api, admin, [invitee], headers={**admin.headers, **key}))

    # Groups: the same name again is the group made, not "name taken".
    groups = api.url("membership", f"/v1/departments/{admin.department_id}/groups")
    name, key = f"Shift {uuid.uuid4().hex[:6]}", _key()
    first = await api.http.post(groups, json={"name": name}, headers={**admin.headers, **key})
    assert first.status_code == 201, first.text
    again = await api.http.post(groups, json={"name": name}, headers={**admin.headers, **key})
    _same_answer(first, again)
    listed = (await api.http.get(groups, headers=admin.headers)).json()["items"]
    assert [g["group_id"] for g in listed if g["name"] == name] == [first.json()["group_id"]]

    # Imports: the file sent again (a new multipart boundary) is the same import.
    data = csv_file([["Name", "Email"], ["Ivy Import", random_email("imp")]])
    key, before = _key(), await _imports(api, admin)
    first = await upload(api, admin, data, dry_run=True, headers={**admin.headers, **key})
    assert first.status_code == 202, first.text
    again = await upload(api, admin, data, dry_run=True, headers={**admin.headers, **key})
    _same_answer(first, again)
    other = csv_file([["Name", "Email"], ["Ivy Other", random_email("imp")]])
    r = await upload(api, admin, other, dry_run=True, headers={**admin.headers, **key})
    assert r.status_code == 422 and problem_type(r) == "idempotency-key-mismatch"
    assert await _imports(api, admin) == [first.json()["import_id"], *before]

    # Departments (operators): the same request again is the department made.
    operator, key = bearer(api.keys.operator_token()), _key()
    body = {"name": "Twice Told", "admin": {"name": "Ada Admin", "email": admin.email}}
    url = api.url("membership", "/v1/departments")
    first = await api.http.post(url, json=body, headers={**operator, **key})
    assert first.status_code == 201, first.text
    _same_answer(first, await api.http.post(url, json=body, headers={**operator, **key}))


async def test_a_bad_key_is_refused_naming_the_header_and_creates_nothing(
    api: Api, admin: Admin
) -> None:
    email = random_email("badkey")
    for bad in ("", "with space", "k" * 256):
        r = await _add(api, admin, email, {"Idempotency-Key": bad})
        assert r.status_code == 422, r.text
        [error] = r.json()["errors"]
        assert error["field"] == "Idempotency-Key"
    # An invalid token is the route's 401, key or not.
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/members"),
        json={"name": "Val", "email": email, "role": "member"},
        headers={**bearer("not-a-token"), **_key()},
    )
    assert r.status_code == 401
    assert (await _add(api, admin, email, _key())).status_code == 201, "nothing was created"


# -- the crash the faults found ------------------------------------------------------------


@pytest.fixture
async def membership_db(controllable: Any) -> AsyncIterator[Any]:
    engine = create_async_engine(controllable.database_url("membership"))
    yield engine
    await engine.dispose()


async def _as_a_dead_process_left_it(engine: Any, scope: str, key: str, *, lease_s: float) -> None:
    """The request committed its work, then its process died before the answer was
    stored: the key is still in progress, its lease running out in ``lease_s``."""
    async with engine.begin() as conn:
        result = await conn.execute(
            sa.text(
                "UPDATE idempotency_keys SET state = 'in_progress', status = NULL,"
                " headers = NULL, body = NULL,"
                " locked_until = now() + make_interval(secs => :lease)"
                " WHERE scope = :scope AND key = :key"
            ),
            {"lease": lease_s, "scope": scope, "key": key},
        )
        assert result.rowcount == 1


async def test_a_retry_after_membership_died_mid_add_gets_the_member_not_account_exists(
    api: Api, admin: Admin, membership_db: Any
) -> None:
    email, key = random_email("crash"), _key()
    first = await _add(api, admin, email, key)
    assert first.status_code == 201, first.text
    await _as_a_dead_process_left_it(
        membership_db, admin.account_id, key["Idempotency-Key"], lease_s=60
    )

    # While the dead process's lease runs, the key is in use.
    busy = await _add(api, admin, email, key)
    assert busy.status_code == 409 and problem_type(busy) == "idempotency-key-in-use"
    assert busy.headers["retry-after"] == "1"

    await _as_a_dead_process_left_it(
        membership_db, admin.account_id, key["Idempotency-Key"], lease_s=-1
    )
    again = await _add(api, admin, email, key)

    # Run again (not replayed), it follows the add that committed instead of asking
    # identity for a second account (which used to answer /account-exists).
    assert again.status_code == 201, again.text
    assert "idempotent-replayed" not in again.headers
    assert again.json() == first.json()
    _same_answer(again, await _add(api, admin, email, key))
    await _fence(api, admin)
    assert len(await api.mails(email)) == 1


async def test_a_retried_upload_and_department_after_a_crash_are_not_made_twice(
    api: Api, admin: Admin, membership_db: Any
) -> None:
    data = csv_file([["Name", "Email"], ["Ivy Import", random_email("imp")]])
    key = _key()
    first = await upload(api, admin, data, dry_run=True, headers={**admin.headers, **key})
    assert first.status_code == 202, first.text
    await _as_a_dead_process_left_it(
        membership_db, admin.account_id, key["Idempotency-Key"], lease_s=-1
    )
    again = await upload(api, admin, data, dry_run=True, headers={**admin.headers, **key})
    assert again.status_code == 202 and again.json() == first.json()
    assert "idempotent-replayed" not in again.headers
    assert (await _imports(api, admin)).count(first.json()["import_id"]) == 1

    operator, key = bearer(api.keys.operator_token()), _key()
    body = {"name": "Told Once", "admin": {"name": "Ada Admin", "email": admin.email}}
    url = api.url("membership", "/v1/departments")
    first = await api.http.post(url, json=body, headers={**operator, **key})
    assert first.status_code == 201, first.text
    operator_scope = "00000000-0000-0000-0000-00000000000f"
    await _as_a_dead_process_left_it(
        membership_db, operator_scope, key["Idempotency-Key"], lease_s=-1
    )
    again = await api.http.post(url, json=body, headers={**operator, **key})
    assert again.status_code == 201 and again.json() == first.json(), again.text


# -- already a member -------------------------------------------------------------------------


async def test_adding_a_current_member_says_already_a_member_and_links_the_record(
    api: Api, admin: Admin
) -> None:
    department = (
        await api.http.get(
            api.url("membership", f"/v1/departments/{admin.department_id}"),
            headers=admin.headers,
        )
    ).json()
    email = random_email("member")
    first = await api.add_member(admin, email, name="Mo Member")
    assert first.status_code == 201, first.text
    account_id = first.json()["account_id"]

    for address in (email, email.upper()):
        r = await api.add_member(admin, address, name="Mo Again")
        assert r.status_code == 409, r.text
        assert problem_type(r) == "already-member"
        problem = r.json()
        assert problem["account_id"] == account_id
        assert problem["detail"] == (
            f"Mo Member ({email}) is already a member of {department['name']}."
        )
        assert "invite" not in problem["detail"].lower()

    # Removed, the person is no member: their address has an account, so invite them back.
    removed = await api.http.delete(
        api.url("membership", f"/v1/departments/{admin.department_id}/members/{account_id}"),
        headers=admin.headers,
    )
    assert removed.status_code == 204
    r = await api.add_member(admin, email)
    assert r.status_code == 409 and problem_type(r) == "account-exists", r.text
    assert "invite" in r.json()["detail"].lower()
