"""Who may call the invitation, registration-link, member and group endpoints:
only an admin of the department (401 without a token, 403 for everyone else)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support import (
    Api,
    added_person,
    invite_ok,
    list_invitations,
    random_email,
    report_row,
    subject_has,
    wait_for,
    wait_mail_matching,
)

pytestmark = pytest.mark.e2e


def _calls(dept: str, invitation: str, group: str, account: str) -> list[tuple[str, str, Any]]:
    """Every admin endpoint of the issue, with a body that would change something."""
    d = f"/v1/departments/{dept}"
    return [
        ("GET", d, None),
        ("PATCH", d, {"invitation_ttl_s": 5}),
        ("POST", f"{d}/invitations", {"emails": [random_email("authz")]}),
        ("GET", f"{d}/invitations", None),
        ("POST", f"{d}/invitations/{invitation}/reminders", None),
        ("DELETE", f"{d}/invitations/{invitation}", None),
        ("GET", f"{d}/registration-link", None),
        ("POST", f"{d}/registration-link", {"role": "admin"}),
        ("DELETE", f"{d}/registration-link", None),
        ("PATCH", f"{d}/members/{account}", {"role": "admin", "employee_id": "X-1"}),
        ("DELETE", f"{d}/members/{account}", None),
        ("POST", f"{d}/members/{account}/password-reset", None),
        ("POST", f"{d}/groups", {"name": "Intruders"}),
        ("GET", f"{d}/groups", None),
        ("PATCH", f"{d}/groups/{group}", {"name": "Renamed"}),
        ("PUT", f"{d}/groups/{group}/members/{account}", None),
        ("DELETE", f"{d}/groups/{group}/members/{account}", None),
        ("DELETE", f"{d}/groups/{group}", None),
    ]


async def test_only_the_departments_admins_may_manage_it(api: Api) -> None:
    outsider = await api.create_department()
    admin = await api.create_department()
    officer = await added_person(api, admin, role="officer")
    member = await added_person(api, admin, role="member")
    invited = random_email("invited")
    [invitation] = await invite_ok(api, admin, [invited])
    await api.wait_mail(invited)
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/groups"),
        json={"name": "Day shift"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    group = r.json()["group_id"]
    calls = _calls(admin.department_id, invitation["invitation_id"], group, member.account_id)
    callers: list[tuple[str, dict[str, str], int]] = [
        ("no token", {}, 401),
        ("another department's admin", outsider.headers, 403),
        ("an officer", officer.headers, 403),
        ("a member", member.headers, 403),
    ]

    for method, path, body in calls:
        for who, headers, expected in callers:
            r = await api.http.request(
                method, api.url("membership", path), json=body, headers=headers
            )
            assert r.status_code == expected, f"{method} {path} as {who}: {r.status_code} {r.text}"
            assert r.headers["content-type"].startswith("application/problem+json")

    # The public accept and join calls need no token, but a bad one is refused, not
    # mistaken for someone registering.
    tampered = admin.token[:-4] + ("AAAA" if not admin.token.endswith("AAAA") else "BBBB")
    for path in ("/v1/invitations/some-token/accept", "/v1/join/some-token"):
        r = await api.http.post(
            api.url("membership", path),
            json={"name": "Mal Lory", "email": random_email("mallory"), "password": "x" * 20},
            headers={"Authorization": f"Bearer {tampered}"},
        )
        assert r.status_code == 401, f"{path}: {r.status_code} {r.text}"

    # An unknown department is 404 whoever asks (an admin elsewhere included).
    for method, path, body in _calls(
        str(uuid.uuid4()), invitation["invitation_id"], group, member.account_id
    ):
        r = await api.http.request(
            method, api.url("membership", path), json=body, headers=admin.headers
        )
        assert r.status_code == 404, f"{method} {path}: {r.status_code} {r.text}"
        assert r.json()["type"].endswith("/department-not-found")

    # Nothing any refused call asked for happened.
    [still] = await list_invitations(api, admin)
    assert (still["invitation_id"], still["status"]) == (invitation["invitation_id"], "pending")
    r = await api.http.get(
        api.url("membership", f"/v1/departments/{admin.department_id}"), headers=admin.headers
    )
    assert r.json()["invitation_ttl_s"] != 5
    r = await api.http.get(
        api.url("membership", f"/v1/departments/{admin.department_id}/registration-link"),
        headers=admin.headers,
    )
    assert r.json()["enabled"] is False
    r = await api.http.get(
        api.url("membership", f"/v1/departments/{admin.department_id}/groups"),
        headers=admin.headers,
    )
    assert [(g["name"], g["member_count"]) for g in r.json()["items"]] == [("Day shift", 0)]
    # Fence: an admin's own change reaches the users table after anything done before it.
    officer_url = f"/v1/departments/{admin.department_id}/members/{officer.account_id}"
    r = await api.http.patch(
        api.url("membership", officer_url),
        json={"status": "inactive"},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    await api.wait_reported(admin, officer.email)

    async def fenced() -> bool:
        row = await report_row(api, admin, officer.account_id)
        return row is not None and row["status"] == "inactive"

    await wait_for(fenced, what="the fence change in the users table")
    row = await report_row(api, admin, member.account_id)
    assert row is not None
    assert (row["role"], row["employee_id"], row["groups"]) == ("member", None, [])
    assert len(await api.mails(invited)) == 1, "no reminder went out"
    # Fence for the reset refused above: the admin's own reset email for the officer.
    r = await api.http.post(
        api.url(
            "membership",
            f"/v1/departments/{admin.department_id}/members/{officer.account_id}/password-reset",
        ),
        headers=admin.headers,
    )
    assert r.status_code == 202, r.text
    await wait_mail_matching(api, officer.email, subject_has("reset"))
    assert [m for m in await api.mails(member.email) if "reset" in m["subject"].lower()] == []
    invitations = await list_invitations(api, admin)
    assert len(invitations) == 1, "no invitation was created by a refused call"
