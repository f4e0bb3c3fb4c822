"""Benchmark notifications' email throughput: a burst of N emails into the mail capture.

Starts its own stack (temporary data directory, free ports) unless ``--keys-dir`` and
the URLs of a running one are given (its ``env/notifications.env`` next to the keys
directory says where its database and broker are). Then, in a new department:

  ``--mode events`` (default): publishes N ``identity.password_link_issued`` events
      (credentials emails, each with its own sealed token, as identity writes them
      for a bulk import) to ``identity.credentials.v1``. Measures notifications'
      consumer, queue, delivery worker and the capture together.
  ``--mode queue``: inserts N credentials emails straight into notifications'
      queue (one transaction, then one NOTIFY). Measures the delivery worker and
      the capture alone.

and prints the time until the last of them is in the capture (the capture's own
``received_at`` stamps, not poll times) and the rate in emails/s. It also checks
that each email arrived exactly once (by Message-ID) and that the delivery log says
``sent`` for every one. A warm-up burst of 50 runs first.

Run:  python bench/email_throughput.py -n 10000            (about a minute on 2 cores)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from harness import add_target_arguments, target
from sqlalchemy.ext.asyncio import create_async_engine

from prodigy_users.contracts.envelope import wrap
from prodigy_users.contracts.identity import PasswordLinkIssued
from prodigy_users.contracts.topics import IDENTITY_CREDENTIALS
from prodigy_users.notifications.tables import emails
from prodigy_users.runtime.keys import seal
from tests.support import Admin, Api


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) of this process and of each of its children, by name
    (Linux /proc; empty elsewhere): which part of the stack the burst kept busy."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid = int(stat.parent.name)
            if pid != me and int(fields[1]) != me:
                continue
            cmd = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        words = [w.decode(errors="replace") for w in cmd if w]
        name = "bench (mail capture)" if pid == me else " ".join(Path(w).name for w in words[-2:])
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def stack_env(api: Api) -> dict[str, str]:
    """The notifications service's settings of the stack the keys belong to."""
    path = api.keys.directory.parent / "env" / "notifications.env"
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        if name:
            env[name] = shlex.split(value)[0] if value else ""
    return env


def addresses(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"mail{i:05d}-{tag}@example.org" for i in range(n)]


def sealed_tokens(api: Api, n: int) -> list[str]:
    public = (api.keys.directory / "seal.pub.pem").read_bytes()
    return [seal(public, f"bench-token-{uuid.uuid4().hex}") for _ in range(n)]


def credentials_events(api: Api, admin: Admin, to: list[str]) -> list[Any]:
    """N credentials events, as identity writes them for a bulk import."""
    expires = datetime.now(UTC) + timedelta(days=7)
    return [
        wrap(
            PasswordLinkIssued(
                account_id=uuid.uuid4(),
                email=address,
                name=f"Bench Person {i}",
                purpose="welcome",
                sealed_token=token,
                expires_at=expires,
                department_id=uuid.UUID(admin.department_id),
            ),
            producer="identity",
            key=address,
        )
        for i, (address, token) in enumerate(zip(to, sealed_tokens(api, len(to)), strict=True))
    ]


async def publish_events(env: dict[str, str], events: list[Any]) -> None:
    """Publish them to identity.credentials.v1 (keyed by account, as identity does)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=env["PRODIGY_KAFKA_BOOTSTRAP_SERVERS"],
        enable_idempotence=False,
        acks="all",
        linger_ms=5,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                IDENTITY_CREDENTIALS.name,
                event.encode(),
                key=str(event.data.account_id).encode(),
                headers=[("type", event.type.encode()), ("event_id", str(event.event_id).encode())],
            )
            for event in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def credentials_rows(api: Api, admin: Admin, to: list[str]) -> list[Any]:
    """N queued credentials emails, as notifications' consumer would queue them."""
    expires = datetime.now(UTC) + timedelta(days=7)
    return [
        {
            "id": uuid.uuid4(),
            "source_event_id": uuid.uuid4(),
            "template": "welcome",
            "recipient": address,
            "recipient_name": f"Bench Person {i}",
            "department_id": uuid.UUID(admin.department_id),
            "account_id": uuid.uuid4(),
            "sealed_token": token,
            "link_expires_at": expires,
        }
        for i, (address, token) in enumerate(zip(to, sealed_tokens(api, len(to)), strict=True))
    ]


async def insert_rows(env: dict[str, str], rows: list[Any]) -> None:
    """Put them in the queue in one transaction, and wake the workers once."""
    engine = create_async_engine(env["PRODIGY_DATABASE_URL"])
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(emails), rows)
            await conn.execute(sa.text("NOTIFY notifications_emails"))
    finally:
        await engine.dispose()


async def captured(
    api: Api, wanted: set[str], after: str | None, timeout: float
) -> list[dict[str, Any]]:
    """Read the capture on from ``after`` until a mail to every wanted address is in."""
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while not wanted <= seen:
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{len(wanted - seen)} of {len(wanted)} emails not captured in {timeout} s"
            )
        r = await api.http.get(
            api.url("mail", "/messages"), params={"after": after} if after else {}
        )
        r.raise_for_status()
        page: list[dict[str, Any]] = r.json()
        if page:
            after = page[-1]["id"]
        for mail in page:
            if any(a in wanted for a in mail["to"]):
                found.append(mail)
                seen.update(mail["to"])
        await asyncio.sleep(0.25)
    return found


async def last_mail_id(api: Api) -> str | None:
    r = await api.http.get(api.url("mail", "/messages"))
    r.raise_for_status()
    mails: list[dict[str, Any]] = r.json()
    return mails[-1]["id"] if mails else None


async def queued_by(env: dict[str, str], to: list[str]) -> float:
    """When the last of these emails was queued (epoch seconds, the database's clock)."""
    engine = create_async_engine(env["PRODIGY_DATABASE_URL"])
    try:
        async with engine.connect() as conn:
            last = await conn.scalar(
                sa.select(sa.func.max(emails.c.created_at)).where(emails.c.recipient.in_(to))
            )
    finally:
        await engine.dispose()
    return float(last.timestamp())


async def log_statuses(api: Api, admin: Admin, to: set[str]) -> Counter[str]:
    """Statuses of the emails to ``to`` in the department's delivery log (every page)."""
    counts: Counter[str] = Counter()
    cursor: str | None = None
    while True:
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        r = await api.http.get(
            api.url("notifications", f"/v1/notifications/departments/{admin.department_id}/emails"),
            params=params,
            headers=admin.headers,
        )
        r.raise_for_status()
        page = r.json()
        counts.update(e["status"] for e in page["items"] if e["to"] in to)
        cursor = page.get("next_cursor")
        if not cursor:
            return counts


async def burst(api: Api, env: dict[str, str], mode: str, n: int, timeout: float) -> dict[str, Any]:
    admin = await api.create_department()
    to = addresses(n)
    after = await last_mail_id(api)
    if mode == "events":
        events = credentials_events(api, admin, to)
        started = time.time()
        await publish_events(env, events)
    else:
        rows = credentials_rows(api, admin, to)
        started = time.time()
        await insert_rows(env, rows)
    queued = time.time() - started
    mails = await captured(api, set(to), after, timeout)
    stamps = [datetime.fromisoformat(m["received_at"]).timestamp() for m in mails]
    copies = Counter(m["message_id"] for m in mails)
    last_queued = await queued_by(env, to)
    return {
        "admin": admin,
        "to": to,
        "queued_s": queued,
        "first_s": min(stamps) - started,
        "last_queued_s": last_queued - started,
        "last_s": max(stamps) - started,
        "mails": len(mails),
        "duplicates": sum(c - 1 for c in copies.values()),
    }


async def main(args: argparse.Namespace) -> None:
    async with target(args) as api:
        env = stack_env(api)
        api.urls["notifications"] = (
            args.notifications if args.keys_dir else f"http://127.0.0.1:{env['PRODIGY_HTTP_PORT']}"
        )
        await burst(api, env, args.mode, 50, args.timeout)  # warm-up
        print(f"\n{args.n} credentials emails, mode {args.mode!r}:")
        cpu_before = cpu_seconds()
        result = await burst(api, env, args.mode, args.n, args.timeout)
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_seconds().items()}
        rate = args.n / result["last_s"]
        print(f"  queued (published/inserted) in  {result['queued_s']:7.2f} s")
        print(f"  last email queued after         {result['last_queued_s']:7.2f} s")
        print(f"  first email captured after      {result['first_s']:7.2f} s")
        print(f"  last email captured after       {result['last_s']:7.2f} s")
        print(f"  throughput                      {rate:7.0f} emails/s")
        print(f"  captured {result['mails']}, duplicates {result['duplicates']}")
        statuses = await log_statuses(api, result["admin"], set(result["to"]))
        print(f"  delivery log: {dict(statuses)}")
        busy = sorted(((v, k) for k, v in cpu.items() if v >= 0.05), reverse=True)
        print("  CPU seconds during the burst: " + ", ".join(f"{k} {v:.1f}" for v, k in busy))
        if result["duplicates"] or statuses != Counter({"sent": args.n}):
            raise SystemExit("not every email was sent exactly once")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="emails in the burst")
    parser.add_argument("--mode", choices=("events", "queue"), default="events")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    parser.add_argument("--notifications", default="http://127.0.0.1:8103")
    add_target_arguments(parser)
    asyncio.run(main(parser.parse_args()))
