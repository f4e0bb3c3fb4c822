"""``prodigy-users replay reporting``: the rebuilt read model equals the live one, the
service switches over and keeps consuming, and a failed rebuild changes nothing."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.engine import make_url

from prodigy_users.contracts.envelope import wrap
from prodigy_users.contracts.topics import TRAINING_EVENTS
from prodigy_users.contracts.training import CourseAssigned, CourseCompleted
from prodigy_users.reporting.replay import rebuild
from prodigy_users.reporting.settings import Settings
from tests.support import (
    Admin,
    Api,
    added_person,
    patch_member,
    random_email,
    wait_for,
    wait_row,
)

pytestmark = pytest.mark.e2e

# Bookkeeping, not the model: when an event was applied differs by construction.
NOT_THE_MODEL = {"inbox", "outbox", "relay_state", "alembic_version", "read_model"}
PRODIGY = Path(sys.executable).with_name("prodigy-users")


def _dsn(stack: Any) -> str:
    url = make_url(stack.database_url("reporting")).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def _snapshot(dsn: str, departments: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table's rows of these departments, sorted.

    Only the test's own departments: other tests publish events straight to the
    topics (redelivery and dead-letter tests), and after a reset of the memory-only
    broker those are gone from the topics while their effects stay in the model.
    """
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            names = await conn.fetch(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name = 'department_id' ORDER BY 1"
            )
            out: dict[str, list[tuple[Any, ...]]] = {}
            for (name,) in names:
                if name in NOT_THE_MODEL:
                    continue
                # Table names come from the catalog, not from input.
                rows = await conn.fetch(
                    f'SELECT * FROM public."{name}" WHERE department_id = ANY($1::uuid[])',  # noqa: S608
                    departments,
                )
                out[name] = sorted((tuple(r.values()) for r in rows), key=repr)
            return out
    finally:
        await conn.close()


async def _schemas(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT nspname FROM pg_namespace")
        return {r["nspname"] for r in rows}
    finally:
        await conn.close()


async def _generation(dsn: str) -> str | None:
    conn = await asyncpg.connect(dsn)
    try:
        value: str | None = await conn.fetchval("SELECT generation FROM public.read_model")
        return value
    finally:
        await conn.close()


async def _unpublished(stack: Any) -> int:
    """Events still to go out of the producers' outboxes: unpublished, or a refill of a
    reset broker under way (a replay reads only what the topics hold)."""
    total = 0
    for name in ("identity", "membership"):
        url = make_url(stack.database_url(name)).set(drivername="postgresql")
        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            total += await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            total += await conn.fetchval(
                "SELECT count(*) FROM relay_state WHERE resend_after IS NOT NULL"
            )
        finally:
            await conn.close()
    return total


async def _settled(
    stack: Any, dsn: str, departments: list[str]
) -> dict[str, list[tuple[Any, ...]]]:
    """The live model once the topics are full and two snapshots in a row agree."""
    previous: list[dict[str, list[tuple[Any, ...]]]] = []

    async def probe() -> dict[str, list[tuple[Any, ...]]] | None:
        if await _unpublished(stack):
            return None
        now = await _snapshot(dsn, departments)
        if not any(table.startswith("training") and rows for table, rows in now.items()):
            return None  # the training platform's events are not applied yet
        same = bool(previous) and previous[-1] == now
        previous.append(now)
        return now if same else None

    return await wait_for(probe, timeout=120, interval=0.5, what="the read model to settle")


async def _lifecycle(api: Api, admin: Admin) -> list[str]:
    """A department with members in several roles and states, groups, a removal."""
    people = [await added_person(api, admin, role=r) for r in ("member", "officer", "member")]
    r = await patch_member(api, admin, people[0].account_id, {"status": "inactive"})
    assert r.status_code == 200, r.text
    r = await patch_member(api, admin, people[1].account_id, {"employee_id": "E-77"})
    assert r.status_code == 200, r.text
    # A name is the account's (identity.events.v1): the replay reads that topic and
    # membership's in no set order, and must still end with the new name.
    r = await patch_member(api, admin, people[0].account_id, {"name": "Renamed Person"})
    assert r.status_code == 200, r.text
    r = await api.http.post(
        api.url("membership", f"/v1/departments/{admin.department_id}/groups"),
        json={"name": "Night shift"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    group = r.json()["group_id"]
    for p in people[:2]:
        r = await api.http.put(
            api.url(
                "membership",
                f"/v1/departments/{admin.department_id}/groups/{group}/members/{p.account_id}",
            ),
            headers=admin.headers,
        )
        assert r.status_code == 204, r.text
    r = await api.http.delete(
        api.url(
            "membership", f"/v1/departments/{admin.department_id}/members/{people[2].account_id}"
        ),
        headers=admin.headers,
    )
    assert r.status_code == 204, r.text
    await wait_row(
        api,
        admin,
        people[1].account_id,
        lambda row: row is not None and len(row["groups"]) == 1,
        what="the group in the users table",
    )
    await wait_row(api, admin, people[2].account_id, lambda row: row is None, what="the removal")
    await wait_row(
        api,
        admin,
        people[0].account_id,
        lambda row: row is not None and row["name"] == "Renamed Person",
        what="the new name in the users table",
    )
    return [p.account_id for p in people]


async def _trained(bootstrap: str, admin: Admin, account_id: str) -> None:
    """A course assigned and completed, as the training platform publishes them."""
    department, account = uuid.UUID(admin.department_id), uuid.UUID(account_id)
    events = [
        CourseAssigned(
            department_id=department,
            account_id=account,
            course_id="cpr-2026",
            title="CPR refresher",
            assigned_at=datetime(2026, 1, 5, tzinfo=UTC),
        ),
        CourseCompleted(
            department_id=department,
            account_id=account,
            course_id="cpr-2026",
            title="CPR refresher",
            completed_on=date(2026, 2, 1),
            hours=4,
            credits=0.5,
            certificate_id=f"cert-{uuid.uuid4().hex[:8]}",
        ),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        for payload in events:
            body = wrap(payload, producer="training-platform", key=str(account)).encode()
            await producer.send_and_wait(TRAINING_EVENTS.name, body, key=str(account).encode())
    finally:
        await producer.stop()


async def _dead_letter(dsn: str, letter_id: int) -> tuple[int, bytes, str] | None:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT id, body, reason FROM public.dead_letters WHERE id = $1", letter_id
        )
        return (row["id"], row["body"], row["reason"]) if row else None
    finally:
        await conn.close()


async def _dead_lettered(bootstrap: str, dsn: str) -> tuple[int, bytes, str]:
    """Garbage on the training topic, as kept among reporting's dead letters."""
    garbage = b"not an event " + uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(TRAINING_EVENTS.name, garbage, key=b"k")
    finally:
        await producer.stop()

    async def kept() -> tuple[int, bytes, str] | None:
        conn = await asyncpg.connect(dsn)
        try:
            found = await conn.fetchval(
                "SELECT id FROM public.dead_letters WHERE body = $1", garbage
            )
        finally:
            await conn.close()
        return await _dead_letter(dsn, found) if found is not None else None

    return await wait_for(kept, timeout=60, what="the garbage kept as a dead letter")


async def test_replay_rebuilds_what_live_consumption_built_and_the_service_carries_on(
    api: Api, controllable: Any, bootstrap: str
) -> None:
    stack = controllable
    dsn = _dsn(stack)
    admin = await api.create_department()
    other = await api.create_department()
    people = await _lifecycle(api, admin)
    await _lifecycle(api, other)
    await _trained(bootstrap, admin, people[1])
    kept = await _dead_lettered(bootstrap, dsn)
    departments = [admin.department_id, other.department_id]
    before = await _settled(stack, dsn, departments)
    assert {"users", "groups", "departments", "member_history", "activity"} <= before.keys()
    assert before["activity"], "the activity log is rebuilt too"
    assert any(table.startswith("training") and rows for table, rows in before.items())
    generation = await _generation(dsn)

    env = {k: v for k, v in os.environ.items() if not k.startswith("PRODIGY_")}
    proc = await asyncio.create_subprocess_exec(
        str(PRODIGY),
        "replay",
        "reporting",
        "--data-dir",
        str(stack.config.data_dir),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert '"events"' in out.decode(), out.decode()

    after = await _snapshot(dsn, departments)
    assert after.keys() == before.keys()
    for table in before:
        assert after[table] == before[table], f"{table} differs after the replay"
    assert await _generation(dsn) not in (None, generation)
    leftovers = {s for s in await _schemas(dsn) if s.startswith(("rebuild_", "replaced_"))}
    assert not leftovers, f"the replay left schemas behind: {leftovers}"
    # The dead letters the live consumer kept are not the model: they stay, same ids.
    assert await _dead_letter(dsn, kept[0]) == kept

    # The running service follows the switch: a new member still reaches the table.
    late = await added_person(api, admin, role="member")
    await wait_row(
        api, admin, late.account_id, lambda row: row is not None, what="a member added after"
    )


async def test_a_failed_replay_leaves_the_live_model_alone(api: Api, controllable: Any) -> None:
    stack = controllable
    dsn = _dsn(stack)
    generation = await _generation(dsn)
    before = await _schemas(dsn)
    # A broker that is not there: the rebuild fails after creating its schema.
    settings = Settings(
        database_url=stack.database_url("reporting"),
        kafka_bootstrap_servers="127.0.0.1:9",
    )
    with pytest.raises(Exception):  # noqa: B017 - whatever aiokafka raises for "no broker"
        await asyncio.wait_for(rebuild(settings, idle_s=0.5), 120)
    assert await _schemas(dsn) == before
    assert await _generation(dsn) == generation
    admin = await api.create_department()
    person = await added_person(api, admin, role="member")
    row = await wait_row(
        api, admin, person.account_id, lambda r: r is not None, what="the new member"
    )
    assert row is not None and row["email"] == person.email
    assert random_email()  # the helpers still work after the failed rebuild
