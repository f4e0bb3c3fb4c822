"""``GET /v1/me/memberships`` over HTTP: any signed-in account lists the departments it is
a member of now, by name, with its role and status in each; a removal takes one off the
list and accepting an invitation again puts it back."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support import (
    Api,
    Person,
    accept,
    bearer,
    invitation_token,
    invite_ok,
    patch_member,
    random_email,
    wait_mail_matching,
)

pytestmark = pytest.mark.e2e


async def _mine(api: Api, token: str | None) -> Any:
    headers = bearer(token) if token else None
    return await api.http.get(api.url("membership", "/v1/me/memberships"), headers=headers)


async def test_an_account_lists_its_departments_by_name(api: Api) -> None:
    tag = uuid.uuid4().hex[:6]
    email = random_email("multi")
    bravo = await api.create_department(f"Bravo {tag}", admin_email=email)
    alpha = await api.create_department(f"Alpha {tag}", admin_email=email)
    charlie = await api.create_department(f"Charlie {tag}")
    # The latest token: setting the password again for Alpha revoked the earlier ones.
    person = Person(bravo.account_id, email, alpha.token)

    # Invited as an officer to a third department, accepted with the same account.
    await invite_ok(api, charlie, [email], role="officer")
    [mail] = await wait_mail_matching(api, email, lambda m: "/invitations/" in m["text"])
    assert (await accept(api, invitation_token(mail), person=person)).status_code == 200
    r = await patch_member(api, charlie, person.account_id, {"status": "inactive"})
    assert r.status_code == 200, r.text

    r = await _mine(api, person.token)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["department_name"], i["role"], i["status"]) for i in items] == [
        (f"Alpha {tag}", "admin", "active"),
        (f"Bravo {tag}", "admin", "active"),
        (f"Charlie {tag}", "officer", "inactive"),
    ]
    assert [i["department_id"] for i in items] == [
        alpha.department_id,
        bravo.department_id,
        charlie.department_id,
    ]
    assert all(i["joined_at"] for i in items)

    # Removed from Charlie: not listed any more; back through a new invitation: listed.
    removed = await api.http.delete(
        api.url(
            "membership",
            f"/v1/departments/{charlie.department_id}/members/{person.account_id}",
        ),
        headers=charlie.headers,
    )
    assert removed.status_code == 204, removed.text
    names = [i["department_name"] for i in (await _mine(api, person.token)).json()["items"]]
    assert names == [f"Alpha {tag}", f"Bravo {tag}"]
    await invite_ok(api, charlie, [email])
    mails = await wait_mail_matching(
        api, email, lambda m: "/invitations/" in m["text"], count=2, what="a second invitation"
    )
    back = await accept(api, invitation_token(mails[-1]), person=person)
    assert back.status_code == 200 and back.json()["status"] == "restored", back.text
    items = (await _mine(api, person.token)).json()["items"]
    assert [(i["department_name"], i["role"]) for i in items][-1] == (f"Charlie {tag}", "officer")


async def test_only_a_signed_in_account_and_only_its_own(api: Api) -> None:
    admin = await api.create_department()
    r = await _mine(api, None)
    assert r.status_code == 401
    # Someone else's departments never show: a new account has none.
    stranger = api.keys.token(uuid.uuid4())
    r = await _mine(api, stranger)
    assert r.status_code == 200 and r.json() == {"items": []}
    # An operator's token is no account: no memberships.
    r = await _mine(api, api.keys.operator_token())
    assert r.status_code == 200 and r.json() == {"items": []}
    r = await _mine(api, admin.token)
    assert [i["department_id"] for i in r.json()["items"]] == [admin.department_id]
