"""Outages: identity away, broker away, broker reset (memory-only Tansu loses everything)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from prodigy_users.runtime.relay import read_republished
from tests.support import Api, invite_ok, random_email, wait_for

pytestmark = pytest.mark.e2e


async def _operation_done(api: Api, url: str, headers: dict[str, str]) -> dict[str, Any] | None:
    r = await api.http.get(api.url("membership", url), headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body if body["status"] != "pending" else None


async def test_identity_down_gives_202_then_completes_once(api: Api, controllable: Any) -> None:
    admin = await api.create_department()
    other = await api.create_department()
    email = random_email("later")
    await controllable.stop_service("identity")
    try:
        r = await api.add_member(admin, email)
        assert r.status_code == 202, r.text
        accepted = r.json()
        assert r.headers["location"] == accepted["operation_url"]
        pending = await api.http.get(
            api.url("membership", accepted["operation_url"]), headers=admin.headers
        )
        assert pending.json()["status"] == "pending"
        # Someone else's token cannot read the operation.
        r = await api.http.get(
            api.url("membership", accepted["operation_url"]), headers=other.headers
        )
        assert r.status_code == 404
    finally:
        await controllable.start_service("identity")

    done = await wait_for(
        lambda: _operation_done(api, accepted["operation_url"], admin.headers),
        timeout=60,
        what="the operation to complete",
    )
    assert done["status"] == "succeeded", done
    assert done["member"]["email"] == email
    await api.wait_mail(email)
    await api.wait_reported(admin, email)
    # Adding the same email again is refused: exactly one account was made.
    assert (await api.add_member(admin, email)).status_code == 409
    fence = random_email("fence")
    assert (await api.add_member(admin, fence)).status_code == 201
    await api.wait_mail(fence)
    assert len(await api.mails(email)) == 1


async def test_broker_outage_holds_events_until_it_returns(api: Api, controllable: Any) -> None:
    admin = await api.create_department()
    email = random_email("outage")
    await controllable.stop_broker()
    try:
        r = await api.add_member(admin, email)
        # Membership commits the request and answers; the events wait in its outbox.
        assert r.status_code == 202, r.text
        url = r.json()["operation_url"]
    finally:
        await controllable.start_broker()

    done = await wait_for(
        lambda: _operation_done(api, url, admin.headers), timeout=180, what="the operation"
    )
    assert done["status"] == "succeeded", done
    await api.wait_mail(email, timeout=60)
    await api.wait_reported(admin, email, timeout=60)
    fence = random_email("fence")
    assert (await api.add_member(admin, fence)).status_code in (201, 202)
    await api.wait_mail(fence, timeout=60)
    assert len(await api.mails(email)) == 1
    assert len([u for u in await api.report_users(admin) if u["email"] == email]) == 1


async def test_broker_killed_mid_flight_loses_nothing_and_repeats_nothing(
    api: Api, controllable: Any
) -> None:
    admin = await api.create_department()
    emails = [random_email(f"reset{i}") for i in range(12)]

    adds = [asyncio.create_task(api.add_member(admin, e)) for e in emails]
    await asyncio.sleep(0)  # let the requests leave before the broker dies
    await controllable.kill_broker()  # the supervisor starts a fresh, empty broker
    responses = await asyncio.gather(*adds)
    assert all(r.status_code in (201, 202) for r in responses), [r.text for r in responses]

    # The fresh broker is refilled from the outboxes; consumers go on from their resume
    # points (or from the start where a send in flight moved the offsets).
    for email in emails:
        await api.wait_mail(email, timeout=180)
    rows = await wait_for(
        lambda: _all_reported(api, admin, emails), timeout=180, what="every person reported"
    )
    assert sorted(rows) == sorted(emails)
    fence = random_email("fence")
    assert (await api.add_member(admin, fence)).status_code == 201
    await api.wait_mail(fence, timeout=60)
    for email in emails:
        assert len(await api.mails(email)) == 1, email
    # The fresh broker was refilled from every outbox, old events included: still no
    # email went out twice (each delivery-log entry has its own Message-ID).
    sent = Counter(m["message_id"] for m in await api.mails())
    assert None not in sent
    assert max(sent.values()) == 1, [k for k, v in sent.items() if v > 1]


async def _all_reported(api: Api, admin: Any, emails: list[str]) -> list[str] | None:
    reported = [u["email"] for u in await api.report_users(admin) if u["email"] in emails]
    return reported if len(reported) == len(emails) else None


SERVICES = ("identity", "membership", "notifications", "reporting")


async def _consumed(api: Api) -> int:
    """Records the four consumers have read since they started (every outcome)."""
    total = 0.0
    for service in SERVICES:
        text = (await api.http.get(api.url(service, "/metrics"))).text
        for line in text.splitlines():
            if line.startswith("prodigy_events_consumed_total{"):
                total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def _retained(controllable: Any) -> int:
    total = 0
    for service in SERVICES:
        url = make_url(controllable.database_url(service)).set(drivername="postgresql")
        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            total += await conn.fetchval("SELECT count(*) FROM outbox")
        finally:
            await conn.close()
    return total


async def _reset_and_recover(api: Api, controllable: Any, admin: Any) -> None:
    old = controllable.broker_epoch()
    await controllable.kill_broker()
    epoch = await controllable.wait_for_broker_epoch(old, within=60)
    fence = random_email("fence")
    r = await api.add_member(admin, fence)
    assert r.status_code in (201, 202), r.text
    await api.wait_mail(fence, timeout=120)
    await api.wait_reported(admin, fence, timeout=120)

    async def refilled() -> bool:
        # Every relay has republished its outbox to the new broker.
        epoch_file = controllable.epoch_path
        refills = [read_republished(epoch_file, s) for s in SERVICES]
        return all(done is not None and done.epoch == epoch for done in refills)

    await wait_for(refilled, timeout=60, what="every outbox republished")


async def test_after_a_reset_consumers_go_on_from_where_they_were(
    api: Api, controllable: Any
) -> None:
    admin = await api.create_department()
    # History of our own (on top of the session's): 60 invitations, their emails.
    emails = [random_email(f"history{i}") for i in range(60)]
    await invite_ok(api, admin, emails)
    for email in emails:
        await api.wait_mail(email, timeout=120)
    # A first reset: records that no outbox holds (tests write some straight to the
    # topics) are gone after it, which moves offsets; partitions where they were are
    # read again from the beginning, once. The refilled broker holds only our events.
    await _reset_and_recover(api, controllable, admin)

    history = await _retained(controllable)
    before = await _consumed(api)
    await _reset_and_recover(api, controllable, admin)
    read = await _consumed(api) - before
    # The relays refilled the broker with the whole history; the consumers read only
    # what came after their resume points: the fence's few events, not the history.
    assert history > 150
    assert read < 60, f"{read} records read after a reset ({history} retained)"
