"""Scale-out: two processes per service, one of each killed and restarted mid-burst.

Every effect happens once, nothing is lost, and per-department order holds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from prodigy_users.contracts.topics import MEMBERSHIP_EVENTS
from prodigy_users.stack.supervisor import Stack
from tests.conftest import TEST_SERVICE_ENV
from tests.e2e.own_stack import two_of_each
from tests.support import Api, Keys, envelope_of, random_email, wait_for

pytestmark = pytest.mark.e2e

SERVICES = ("identity", "membership", "notifications", "reporting")


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Stack]:
    async with two_of_each(tmp_path, service_env=TEST_SERVICE_ENV) as stack:
        yield stack


def _api(stack: Stack, replica: int) -> Api:
    urls = {name: stack.url(name, replica) for name in SERVICES}
    urls["mail"] = stack.url("mail")
    return Api(urls, Keys(stack.config.data_dir / "keys"))


async def _department_events(bootstrap: str, department: str, until: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(MEMBERSHIP_EVENTS.name, p)
            for p in consumer.partitions_for_topic(MEMBERSHIP_EVENTS.name) or set()
        ] or [TopicPartition(MEMBERSHIP_EVENTS.name, p) for p in range(6)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    event = envelope_of(record.value)
                    if event is not None and event["key"] == department:
                        events.append(event)
            if any(e["data"].get("email") == until for e in events):
                return events
        raise AssertionError("the marker event never arrived")
    finally:
        await consumer.stop()


async def test_two_processes_per_service_with_kills_apply_every_effect_once(pair: Stack) -> None:
    apis = [_api(pair, 1), _api(pair, 2)]
    try:
        admin = await apis[0].create_department()
        emails = [random_email(f"burst{i}") for i in range(24)]
        invited = [random_email(f"inv{i}") for i in range(6)]

        # HTTP goes to the membership process that survives (a request cut by a kill
        # has no knowable outcome); the kills hit consumers, relays and the other HTTP.
        async def add(i: int, email: str) -> None:
            r = await apis[0].add_member(admin, email)
            assert r.status_code in (201, 202), r.text

        async def invite_then_revoke(i: int, email: str) -> None:
            api = apis[0]
            url = api.url("membership", f"/v1/departments/{admin.department_id}/invitations")
            r = await api.http.post(url, json={"emails": [email]}, headers=admin.headers)
            assert r.status_code == 200, r.text
            [result] = r.json()["results"]
            r = await api.http.delete(f"{url}/{result['invitation_id']}", headers=admin.headers)
            assert r.status_code == 204, r.text

        burst = [asyncio.create_task(add(i, e)) for i, e in enumerate(emails)]
        burst += [asyncio.create_task(invite_then_revoke(i, e)) for i, e in enumerate(invited)]
        # One process of each service dies mid-burst (SIGKILL: no goodbye to its group).
        victims = [f"{name}-{1 + i % 2}" for i, name in enumerate(SERVICES)]
        await asyncio.gather(*(pair.stop_service(v, kill=True) for v in victims))
        await asyncio.gather(*burst)
        await asyncio.gather(*(pair.start_service(v) for v in victims))

        api = apis[0]
        for email in emails + invited:
            await api.wait_mail(email, timeout=120)
        rows = await wait_for(
            lambda: _reported(api, admin, emails), timeout=120, what="every person reported"
        )
        assert sorted(rows) == sorted(emails)
        fence = random_email("fence")
        assert (await api.add_member(admin, fence)).status_code in (201, 202)
        await api.wait_mail(fence, timeout=120)
        for email in emails + invited:
            assert len(await api.mails(email)) == 1, email
        # Each person is in the department once, and each department's events are in
        # order: an invitation is never revoked before it was made.
        events = await _department_events(pair.kafka_bootstrap, admin.department_id, fence)
        added = [e["data"]["email"] for e in events if e["type"] == "membership.member_added"]
        assert sorted(set(added) - {admin.email, fence}) == sorted(emails)
        seen: dict[str, str] = {}
        for event in events:
            if event["type"] == "membership.member_invited":
                seen[event["data"]["invitation_id"]] = "invited"
            elif event["type"] == "membership.invitation_revoked":
                assert seen.get(event["data"]["invitation_id"]) == "invited", event
                seen[event["data"]["invitation_id"]] = "revoked"
        assert sorted(seen.values()) == ["revoked"] * len(invited)
        _ = uuid
    finally:
        for client in apis:
            await client.close()


async def _reported(api: Api, admin: Any, emails: list[str]) -> list[str] | None:
    rows = [u["email"] for u in await api.report_users(admin, allow_forbidden=True)]
    found = [e for e in rows if e in emails]
    assert len(found) == len(set(found)), "someone is in the users table twice"
    return found if len(found) == len(emails) else None
