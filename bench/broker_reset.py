"""Benchmark recovery after a reset of the embedded (memory-only) broker, with 1,000
and with 100,000 retained events.

Starts its own embedded stack (``harness.target_stack``), makes history by writing
membership events (a realistic mix, see ``replay_reporting.events``) to membership's
outbox, and waits until they are published and applied everywhere. Then, for each
size, it kills the broker and measures until

  (a) a new add-member, sent right after the kill, has completed end to end (its
      operation succeeded, its welcome email is captured, the person is in
      reporting's users table), and
  (b) every consumer is caught up: for every partition it reads, nothing is left
      after the position it has recorded (checked by fetching from there).

Recovery is the later of (a) and (b). The goal: flat as history grows; the run fails
(exit code 1) if the 100,000-event recovery takes more than twice the 1,000-event one.

Run:  python bench/broker_reset.py        (about 3 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from harness import target_stack
from replay_reporting import events
from sqlalchemy.engine import make_url

from prodigy_users.contracts.topics import consumed_by
from prodigy_users.runtime.db import make_engine
from prodigy_users.runtime.uow import UnitOfWork
from prodigy_users.stack import SERVICES
from tests.support import Admin, Api, random_email, wait_for


def dsn(stack: Any, service: str) -> str:
    url = make_url(stack.database_url(service)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def retained(stack: Any) -> int:
    """Outbox rows kept in every service's database (what a reset republishes)."""
    total = 0
    for service in SERVICES:
        conn = await asyncpg.connect(dsn(stack, service))
        try:
            total += await conn.fetchval("SELECT count(*) FROM outbox")
        finally:
            await conn.close()
    return total


async def grow_history(stack: Any, wanted: int) -> None:
    """Write membership events to its outbox until ``wanted`` rows are retained."""
    missing = wanted - await retained(stack)
    if missing <= 0:
        return
    print(f"writing {missing:,} membership events to its outbox ...", flush=True)
    engine = make_engine(stack.database_url("membership"))
    try:
        chunk: list[tuple[str, Any]] = []
        for key, payload, _ in events(missing, departments=20, seed=wanted):
            chunk.append((key, payload))
            if len(chunk) == 5000:
                await _emit(engine, chunk)
                chunk = []
        await _emit(engine, chunk)
    finally:
        await engine.dispose()


async def _emit(engine: Any, chunk: Sequence[tuple[str, Any]]) -> None:
    if not chunk:
        return
    async with UnitOfWork(engine, "membership") as uow:
        for key, payload in chunk:
            uow.emit(payload, key=key)
        await uow.commit()


async def lagging(stack: Any) -> list[str]:
    """What is not caught up: outboxes with unpublished rows or a refill under way, and
    partitions with records after the position their consumer recorded."""
    behind: list[str] = []
    for service in SERVICES:
        conn = await asyncpg.connect(dsn(stack, service))
        try:
            unpublished = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            refilling = await conn.fetchval(
                "SELECT count(*) FROM relay_state WHERE resend_after IS NOT NULL"
            )
            rows = await conn.fetch(
                "SELECT topic, partition, next_offset FROM consumer_positions WHERE consumer = $1",
                service,
            )
        finally:
            await conn.close()
        if unpublished or refilling:
            behind.append(f"{service} outbox")
        stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        partitions = [
            TopicPartition(t.name, p) for t in consumed_by(service) for p in range(t.partitions)
        ]
        if partitions:
            behind += await _unread(stack.kafka_bootstrap, service, partitions, stored)
    return behind


async def _unread(
    bootstrap: str,
    service: str,
    partitions: list[TopicPartition],
    stored: dict[tuple[str, int], int],
) -> list[str]:
    probe = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=16 * 1024,
    )
    await probe.start()
    try:
        probe.assign(partitions)
        for tp in partitions:
            probe.seek(tp, stored.get((tp.topic, tp.partition), 0))
        seen: set[TopicPartition] = set()
        for _ in range(3):
            fetched = await probe.getmany(timeout_ms=200)
            seen |= {tp for tp, records in fetched.items() if records}
        return [f"{service} {tp.topic}[{tp.partition}]" for tp in sorted(seen)]
    finally:
        await probe.stop()


VERBOSE = False


async def caught_up(stack: Any, timeout: float) -> None:
    began = time.monotonic()

    async def probe() -> bool:
        behind = await lagging(stack)
        if VERBOSE and behind:
            print(f"    {time.monotonic() - began:5.1f} s, behind: {', '.join(behind)}")
        return not behind

    await wait_for(probe, timeout=timeout, interval=0.2, what="every consumer caught up")


async def added_end_to_end(api: Api, admin: Admin, email: str, timeout: float) -> None:
    r = await api.add_member(admin, email)
    assert r.status_code in (201, 202), r.text
    if r.status_code == 202:
        done = await api.wait_operation(r.json()["operation_url"], admin.headers, timeout)
        assert done["status"] == "succeeded", done
    await api.wait_mail(email, timeout=timeout)
    await api.wait_reported(admin, email, timeout=timeout)


async def recovery(stack: Any, api: Api, admin: Admin, timeout: float) -> dict[str, float]:
    """Kill the broker; seconds until it is back, the add-member is done, all caught up."""
    old = stack.broker_epoch()
    began = time.monotonic()
    await stack.kill_broker()
    email = random_email("after-reset")
    adding = asyncio.create_task(added_end_to_end(api, admin, email, timeout))
    await stack.wait_for_broker_epoch(old, within=timeout)
    back = time.monotonic() - began
    await adding
    added = time.monotonic() - began
    await caught_up(stack, timeout)
    return {"broker back": back, "add-member done": added, "recovered": time.monotonic() - began}


async def measure(stack: Any, api: Api, admin: Admin, size: int, rounds: int) -> float:
    await grow_history(stack, size)
    await caught_up(stack, timeout=1800)
    kept = await retained(stack)
    times = []
    for i in range(rounds):
        t = await recovery(stack, api, admin, timeout=600)
        times.append(t["recovered"])
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in t.items())
        print(f"  {kept:>9,} retained events, reset {i + 1}: {parts}", flush=True)
    return statistics.median(times)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1_000, help="retained events (1,000)")
    parser.add_argument("--large", type=int, default=100_000, help="retained events (100,000)")
    parser.add_argument("--rounds", type=int, default=3, help="resets per size (median kept)")
    parser.add_argument("--verbose", action="store_true", help="say what is behind meanwhile")
    parser.add_argument("--keys-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    async with target_stack(args) as (api, stack):
        admin = await api.create_department()
        small = await measure(stack, api, admin, args.small, args.rounds)
        large = await measure(stack, api, admin, args.large, args.rounds)
    ratio = large / small
    print()
    print("| retained events | recovery (median) |")
    print("|---|---|")
    print(f"| {args.small:,} | {small:.1f} s |")
    print(f"| {args.large:,} | {large:.1f} s |")
    print(f"\n{args.large:,} vs {args.small:,}: {ratio:.2f}x (target: at most 2x): ", end="")
    print("met" if ratio <= 2 else "MISSED")
    return 0 if ratio <= 2 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
