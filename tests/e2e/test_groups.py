"""Groups end to end: create, rename, delete, members in and out, as reporting shows them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.support import Admin, Api, added_person, patch_member, problem_type, wait_row

pytestmark = pytest.mark.e2e


class Groups:
    """The department's groups over HTTP."""

    def __init__(self, api: Api, admin: Admin) -> None:
        self.api = api
        self.admin = admin
        self.base = api.url("membership", f"/v1/departments/{admin.department_id}/groups")

    async def create(self, name: str) -> Any:
        return await self.api.http.post(self.base, json={"name": name}, headers=self.admin.headers)

    async def listing(self) -> dict[str, dict[str, Any]]:
        r = await self.api.http.get(self.base, headers=self.admin.headers)
        assert r.status_code == 200, r.text
        return {g["group_id"]: g for g in r.json()["items"]}

    async def rename(self, group_id: str, name: str) -> Any:
        return await self.api.http.patch(
            f"{self.base}/{group_id}", json={"name": name}, headers=self.admin.headers
        )

    async def delete(self, group_id: str) -> Any:
        return await self.api.http.delete(f"{self.base}/{group_id}", headers=self.admin.headers)

    async def put(self, group_id: str, account_id: str) -> Any:
        return await self.api.http.put(
            f"{self.base}/{group_id}/members/{account_id}", headers=self.admin.headers
        )

    async def take_out(self, group_id: str, account_id: str) -> Any:
        return await self.api.http.delete(
            f"{self.base}/{group_id}/members/{account_id}", headers=self.admin.headers
        )


def _names(row: dict[str, Any] | None) -> set[str]:
    return {g["name"] for g in row["groups"]} if row else set()


async def test_groups_and_their_members(api: Api) -> None:
    admin = await api.create_department()
    groups = Groups(api, admin)
    pat, quinn = await added_person(api, admin), await added_person(api, admin)

    r = await groups.create("Night shift")
    assert r.status_code == 201, r.text
    night = r.json()
    assert night["name"] == "Night shift" and night["member_count"] == 0
    r = await groups.create("  night   SHIFT ")
    assert r.status_code == 409 and problem_type(r) == "group-name-taken", r.text
    r = await groups.create("Day shift")
    assert r.status_code == 201, r.text
    day = r.json()
    r = await groups.rename(day["group_id"], "NIGHT shift")
    assert r.status_code == 409 and problem_type(r) == "group-name-taken", r.text
    r = await groups.rename(day["group_id"], "Early shift")
    assert r.status_code == 200 and r.json()["name"] == "Early shift", r.text
    r = await groups.create(" ")
    assert r.status_code == 422, r.text

    for group_id, account_id in (
        (night["group_id"], pat.account_id),
        (night["group_id"], pat.account_id),  # again: nothing changes
        (day["group_id"], pat.account_id),  # a person can be in many groups
        (night["group_id"], quinn.account_id),
    ):
        r = await groups.put(group_id, account_id)
        assert r.status_code == 204, r.text

    listed = await groups.listing()
    assert {g["name"]: g["member_count"] for g in listed.values()} == {
        "Night shift": 2,
        "Early shift": 1,
    }
    r = await patch_member(api, admin, pat.account_id, {})
    assert sorted(r.json()["groups"]) == sorted([night["group_id"], day["group_id"]])
    await wait_row(
        api,
        admin,
        pat.account_id,
        lambda row: _names(row) == {"Night shift", "Early shift"},
        what="both groups in the users table",
    )
    await wait_row(
        api, admin, quinn.account_id, lambda row: _names(row) == {"Night shift"}, what="one group"
    )

    r = await groups.take_out(night["group_id"], quinn.account_id)
    assert r.status_code == 204, r.text
    r = await groups.take_out(night["group_id"], quinn.account_id)
    assert r.status_code == 204, "taking out someone not in the group changes nothing"
    await wait_row(api, admin, quinn.account_id, lambda row: _names(row) == set(), what="no group")
    r = await groups.rename(night["group_id"], "Late shift")
    assert r.status_code == 200, r.text
    await wait_row(
        api,
        admin,
        pat.account_id,
        lambda row: _names(row) == {"Late shift", "Early shift"},
        what="the new name in the users table",
    )

    r = await groups.delete(night["group_id"])
    assert r.status_code == 204, r.text
    assert list(await groups.listing()) == [day["group_id"]]
    await wait_row(
        api,
        admin,
        pat.account_id,
        lambda row: _names(row) == {"Early shift"},
        what="the deleted group gone from the users table",
    )
    r = await patch_member(api, admin, pat.account_id, {})
    assert r.json()["groups"] == [day["group_id"]]
    r = await groups.delete(night["group_id"])
    assert r.status_code == 404 and problem_type(r) == "group-not-found", r.text
    r = await groups.put(night["group_id"], pat.account_id)
    assert r.status_code == 404 and problem_type(r) == "group-not-found", r.text
    r = await groups.put(day["group_id"], str(uuid.uuid4()))
    assert r.status_code == 404 and problem_type(r) == "member-not-found", r.text

    # A deleted group's name is free again, and names are per department.
    assert (await groups.create("Late shift")).status_code == 201
    elsewhere = Groups(api, await api.create_department())
    assert (await elsewhere.create("Early shift")).status_code == 201
    # A member of another department cannot be put in this department's group.
    stranger = await added_person(api, elsewhere.admin)
    r = await groups.put(day["group_id"], stranger.account_id)
    assert r.status_code == 404 and problem_type(r) == "member-not-found", r.text


async def test_two_admins_creating_one_name_at_once_get_one_group_and_a_clear_409(
    api: Api,
) -> None:
    admin = await api.create_department()
    groups = Groups(api, admin)
    answers = await asyncio.gather(*(groups.create(name) for name in ("Day shift", "day  SHIFT")))
    assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 409)
    assert problem_type(refused) == "group-name-taken", refused.text
    assert [g["name"] for g in (await groups.listing()).values()] == [
        next(r for r in answers if r.status_code == 201).json()["name"]
    ]
