"""Benchmark reporting's projection: events applied per second when replaying 100,000
membership events (``prodigy-users replay reporting``'s code path).

Starts embedded PostgreSQL and Tansu only (no services: nothing else competes for
the 2 cores), produces ``-n`` membership events to ``membership.events.v1`` with a
realistic mix (departments, groups, members added, role/status/employee-ID changes,
group joins, removals), then runs the rebuild: a fresh schema, every topic read
from the beginning through reporting's handlers and fold, and the switch-over.

Prints the events applied per second while reading (target: at least 5,000/s on
2 cores), and the whole rebuild's wall time (migrations and switch included).

Run:  python bench/replay_reporting.py            (about a minute on 2 cores)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaProducer

from prodigy_users.contracts.envelope import Payload, wrap
from prodigy_users.contracts.membership import (
    DepartmentCreated,
    EmployeeIdSet,
    GroupCreated,
    MemberAdded,
    MemberJoinedGroup,
    MemberRemoved,
    MemberRoleChanged,
    MemberStatusChanged,
)
from prodigy_users.contracts.topics import MEMBERSHIP_EVENTS
from prodigy_users.reporting.replay import rebuild
from prodigy_users.reporting.settings import Settings
from prodigy_users.runtime.db import ensure_database
from prodigy_users.stack.supervisor import Ports, Stack, StackConfig


def events(total: int, departments: int, seed: int) -> Iterator[tuple[str, Payload, datetime]]:
    """``total`` membership events: per department, its creation, groups, then people."""
    rng = random.Random(seed)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    made = 0
    depts = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(departments)]
    members: dict[uuid.UUID, list[uuid.UUID]] = {d: [] for d in depts}
    groups: dict[uuid.UUID, list[uuid.UUID]] = {}
    for d in depts:
        yield str(d), DepartmentCreated(department_id=d, name=f"Dept {d.hex[:6]}"), at
        groups[d] = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(5)]
        for i, g in enumerate(groups[d]):
            yield str(d), GroupCreated(department_id=d, group_id=g, name=f"Shift {i}"), at
        made += 6
    while made < total:
        at += timedelta(milliseconds=10)
        d = rng.choice(depts)
        people = members[d]
        roll = rng.random()
        payload: Payload
        if roll < 0.5 or len(people) < 10:
            a = uuid.UUID(int=rng.getrandbits(128))
            people.append(a)
            payload = MemberAdded(
                department_id=d,
                account_id=a,
                name=f"Person {a.hex[:8]}",
                email=f"p{a.hex[:12]}@example.org",
                role=rng.choice(["member", "member", "member", "officer", "admin"]),
                status="active",
                joined_at=at,
                via="import",
            )
        elif roll < 0.62:
            payload = MemberRoleChanged(
                department_id=d,
                account_id=rng.choice(people),
                role="officer",
                previous_role="member",
            )
        elif roll < 0.72:
            payload = MemberStatusChanged(
                department_id=d, account_id=rng.choice(people), status="inactive"
            )
        elif roll < 0.80:
            payload = EmployeeIdSet(
                department_id=d, account_id=rng.choice(people), employee_id=f"E-{made}"
            )
        elif roll < 0.97:
            payload = MemberJoinedGroup(
                department_id=d, account_id=rng.choice(people), group_id=rng.choice(groups[d])
            )
        else:
            payload = MemberRemoved(department_id=d, account_id=rng.choice(people))
        made += 1
        yield str(d), payload, at


async def produce(bootstrap: str, total: int, departments: int) -> float:
    """Send the events; seconds it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", linger_ms=5
    )
    await producer.start()
    started = time.monotonic()
    try:
        pending = []
        for key, payload, at in events(total, departments, seed=7):
            envelope = wrap(payload, producer="membership", key=key)
            envelope = envelope.model_copy(update={"occurred_at": at})
            pending.append(
                await producer.send(MEMBERSHIP_EVENTS.name, envelope.encode(), key=key.encode())
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="membership events (100,000)")
    parser.add_argument("--departments", type=int, default=20)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="prodigy-bench-replay-"))
    stack = Stack(
        StackConfig(data_dir=data, ports=Ports.free(), fresh=True, services=(), console=False)
    )
    try:
        print("starting PostgreSQL and Tansu ...", flush=True)
        await stack.start()
        url = stack.database_url("reporting")
        await ensure_database(url)
        took = await produce(stack.kafka_bootstrap, args.n, args.departments)
        print(f"produced {args.n:,} membership events in {took:.1f} s", flush=True)
        settings = Settings(
            database_url=url,
            kafka_bootstrap_servers=stack.kafka_bootstrap,
            log_json=False,
            log_level="WARNING",
        )
        started = time.monotonic()
        done = await rebuild(settings, idle_s=1.0)
        wall = time.monotonic() - started
        print()
        print("| events applied | reading s | events/s | whole rebuild s (with migrate, switch) |")
        print("|---|---|---|---|")
        print(f"| {done.events:,} | {done.seconds:.2f} | {done.per_second:,.0f} | {wall:.2f} |")
        target = "met" if done.per_second >= 5000 else "MISSED"
        print(f"\ntarget >= 5,000 events/s: {target}")
    finally:
        await stack.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
