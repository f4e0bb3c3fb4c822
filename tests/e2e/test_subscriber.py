"""An outside team's subscriber: a plain aiokafka consumer reads `membership.events.v1`
from the beginning and rebuilds one department's member list from the events alone,
then lays the accounts' latest names and login emails over it from
`identity.events.v1`'s `account_updated` (names and emails are the accounts', so a
change is announced there once, for every department).

The consumer and the rebuild below use nothing from the project (JSON parsed by hand),
as a team that only read docs/events.md would write them; the project's test helpers
only drive the system.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.support import (
    Api,
    Person,
    accept,
    added_person,
    envelope_of,
    invitation_token,
    invite_ok,
    invited_person,
    patch_member,
    subject_has,
    wait_for,
    wait_mail_matching,
)

pytestmark = pytest.mark.e2e

TOPIC = "membership.events.v1"
ACCOUNTS_TOPIC = "identity.events.v1"


# -- the subscriber (no project code) ------------------------------------------------


async def read_department_events(
    bootstrap: str, department_id: str, *, until_group: str, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Every event of one department, from the beginning of the topic, deduplicated.

    Reads until the group-created event named ``until_group`` has been seen: events of a
    department are in order, so everything before it has been read by then.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fetch metadata, so the topic's partitions are known
        partitions = consumer.partitions_for_topic(TOPIC) or set()
        assert partitions, f"{TOPIC} has no partitions"
        assigned = [TopicPartition(TOPIC, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        seen: set[str] = set()
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    envelope = envelope_of(record.value)
                    if envelope is None:
                        continue
                    data = envelope["data"]
                    if data.get("department_id") != department_id:
                        continue
                    if envelope["event_id"] in seen:  # at least once: skip redeliveries
                        continue
                    seen.add(envelope["event_id"])
                    events.append(envelope)
                    if (
                        envelope["type"] == "membership.group_created"
                        and data.get("name") == until_group
                    ):
                        return events
        raise AssertionError(f"did not see group {until_group!r} within {timeout}s")
    finally:
        await consumer.stop()


async def read_account_updates(bootstrap: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every ``account_updated`` of ``identity.events.v1`` up to its end as of now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = consumer.partitions_for_topic(ACCOUNTS_TOPIC) or set()
        assigned = [TopicPartition(ACCOUNTS_TOPIC, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            assert time.monotonic() < deadline, f"did not read {ACCOUNTS_TOPIC} to its end"
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    envelope = envelope_of(record.value)
                    if envelope and envelope["type"] == "identity.account_updated":
                        found[envelope["event_id"]] = envelope["data"]
        return list(found.values())
    finally:
        await consumer.stop()


def lay_account_updates(
    members: dict[str, dict[str, Any]], updates: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each member's name and email as their account's latest ``account_updated`` says
    (by ``occurred_at``: the two topics are not in order with each other)."""
    for field in ("name", "email"):
        latest: dict[str, tuple[str, str]] = {}
        for d in updates:
            change = d.get(field)
            if change is None:
                continue
            if d["account_id"] not in latest or latest[d["account_id"]][0] < d["occurred_at"]:
                latest[d["account_id"]] = (d["occurred_at"], change["new"])
        for account, (_, value) in latest.items():
            if account in members:
                members[account][field] = value
    return members


def rebuild_members(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The department's current members, by account id, from its events in order."""
    members: dict[str, dict[str, Any]] = {}
    groups: dict[str, str] = {}
    memberships: dict[str, set[str]] = {}
    for envelope in events:
        kind, d = envelope["type"], envelope["data"]
        account = d.get("account_id")
        if kind == "membership.member_added":
            members[account] = {k: d.get(k) for k in ("name", "email", "role", "employee_id")}
            members[account]["status"] = d.get("status", "active")
            memberships[account] = set()
        elif kind == "membership.member_restored":
            members[account] = {
                k: d.get(k) for k in ("name", "email", "role", "status", "employee_id")
            }
            memberships[account] = set(d.get("group_ids", []))
        elif kind == "membership.member_removed":
            members.pop(account, None)
            memberships.pop(account, None)
        elif kind == "membership.member_merged":
            # One person's two accounts merged: the merged one is gone, the kept one's
            # membership is as the event says (whole, groups included).
            members.pop(d["merged_account_id"], None)
            memberships.pop(d["merged_account_id"], None)
            if d.get("removed"):
                members.pop(account, None)
                memberships.pop(account, None)
            else:
                members[account] = {
                    k: d.get(k) for k in ("name", "email", "role", "status", "employee_id")
                }
                memberships[account] = set(d.get("group_ids", []))
        elif kind == "membership.member_role_changed" and account in members:
            members[account]["role"] = d["role"]
        elif kind == "membership.member_status_changed" and account in members:
            members[account]["status"] = d["status"]
        elif kind == "membership.employee_id_set" and account in members:
            members[account]["employee_id"] = d.get("employee_id")
        elif kind in ("membership.group_created", "membership.group_renamed"):
            groups[d["group_id"]] = d["name"]
        elif kind == "membership.group_deleted":
            groups.pop(d["group_id"], None)
            for joined in memberships.values():
                joined.discard(d["group_id"])
        elif kind == "membership.member_joined_group" and account in memberships:
            memberships[account].add(d["group_id"])
        elif kind == "membership.member_left_group" and account in memberships:
            memberships[account].discard(d["group_id"])
        # Anything else (invitations, links, types added later): not about who is a member.
    for account, member in members.items():
        member["groups"] = sorted(groups[g] for g in memberships[account] if g in groups)
    return members


# -- the test -------------------------------------------------------------------------


def _as_table(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        row["account_id"]: {
            "name": row["name"],
            "email": row["email"].lower(),
            "role": row["role"],
            "status": row["status"],
            "employee_id": row["employee_id"],
            "groups": sorted(g["name"] for g in row["groups"]),
        }
        for row in rows
    }


async def test_a_subscriber_rebuilds_the_member_list_from_the_events(
    api: Api, bootstrap: str
) -> None:
    name = f"Station {uuid.uuid4().hex[:6]}"
    admin = await api.create_department(name)
    dept = f"/v1/departments/{admin.department_id}"
    groups_url = api.url("membership", f"{dept}/groups")

    async def group(name: str) -> str:
        r = await api.http.post(groups_url, json={"name": name}, headers=admin.headers)
        assert r.status_code == 201, r.text
        group_id: str = r.json()["group_id"]
        return group_id

    async def put(group_id: str, person: Person) -> None:
        r = await api.http.put(
            f"{groups_url}/{group_id}/members/{person.account_id}", headers=admin.headers
        )
        assert r.status_code == 204, r.text

    async def change(person: Person, body: dict[str, Any]) -> None:
        r = await patch_member(api, admin, person.account_id, body)
        assert r.status_code == 200, r.text

    async def remove(person: Person) -> None:
        r = await api.http.delete(
            api.url("membership", f"{dept}/members/{person.account_id}"), headers=admin.headers
        )
        assert r.status_code == 204, r.text

    ana = await invited_person(api, admin, name="Ana Lima")
    bo = await added_person(api, admin)
    cy = await added_person(api, admin, role="officer")
    alpha, beta = await group("Alpha"), await group("Beta")
    await put(alpha, ana)
    await put(alpha, bo)
    await put(beta, bo)
    r = await api.http.patch(f"{groups_url}/{beta}", json={"name": "Bravo"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    await change(bo, {"role": "officer"})
    await change(bo, {"status": "inactive"})
    await change(ana, {"employee_id": "E-ANA"})
    await change(cy, {"employee_id": "E-CY"})
    await change(cy, {"employee_id": None})
    await remove(cy)
    await remove(ana)
    await invite_ok(api, admin, [ana.email], role="officer")
    mails = await wait_mail_matching(api, ana.email, subject_has("invited", name), count=2)
    r = await accept(api, invitation_token(mails[-1]), person=ana)
    assert r.status_code == 200 and r.json()["status"] == "restored", r.text
    charlie = await group("Charlie")
    await put(charlie, ana)
    r = await api.http.delete(f"{groups_url}/{alpha}", headers=admin.headers)
    assert r.status_code == 204, r.text
    [revoked] = await invite_ok(api, admin, ["never-joins-" + ana.email])
    r = await api.http.delete(
        api.url("membership", f"{dept}/invitations/{revoked['invitation_id']}"),
        headers=admin.headers,
    )
    assert r.status_code == 204, r.text
    # Names are the accounts': Ana renames herself, the admin corrects Bo's.
    r = await api.http.patch(
        api.url("identity", "/v1/me"), json={"name": "Ana Lima Souza"}, headers=ana.headers
    )
    assert r.status_code == 200, r.text
    await change(bo, {"name": "Bo Member"})

    marker = f"marker-{uuid.uuid4().hex}"
    await group(marker)

    events = await read_department_events(bootstrap, admin.department_id, until_group=marker)

    async def both_renamed() -> list[dict[str, Any]] | None:
        updates = await read_account_updates(bootstrap)
        renamed = {d["account_id"] for d in updates if d.get("name")}
        return updates if {ana.account_id, bo.account_id} <= renamed else None

    updates = await wait_for(both_renamed, what="both renames on identity.events.v1")
    rebuilt = lay_account_updates(rebuild_members(events), updates)

    types = {e["type"] for e in events}
    assert {
        "membership.department_created",
        "membership.member_added",
        "membership.member_removed",
        "membership.member_restored",
        "membership.member_role_changed",
        "membership.member_status_changed",
        "membership.employee_id_set",
        "membership.group_deleted",
        "membership.member_left_group",
        "membership.invitation_accepted",
        "membership.invitation_revoked",
    } <= types
    assert all(e["key"] == admin.department_id for e in events)
    for member in rebuilt.values():
        member["email"] = member["email"].lower()
    assert rebuilt == {
        admin.account_id: {
            "name": "Ada Admin",
            "email": admin.email.lower(),
            "role": "admin",
            "status": "active",
            "employee_id": None,
            "groups": [],
        },
        ana.account_id: {
            "name": "Ana Lima Souza",
            "email": ana.email.lower(),
            "role": "officer",
            "status": "active",
            "employee_id": "E-ANA",
            "groups": ["Charlie"],
        },
        bo.account_id: {
            "name": "Bo Member",
            "email": bo.email.lower(),
            "role": "officer",
            "status": "inactive",
            "employee_id": None,
            "groups": ["Bravo"],
        },
    }

    async def table_matches() -> dict[str, dict[str, Any]] | None:
        table = _as_table(await api.report_users(admin))
        return table if table == rebuilt else None

    await wait_for(table_matches, what="the users table to equal the rebuilt member list")
