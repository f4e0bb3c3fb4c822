"""A stack of notifications processes only, and emails queued straight into its
database: for the tests of sending itself (a crash mid-burst, the relay coming back).
The engine on that database is ``tests/e2e/conftest.py``'s ``notifications_db``."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.notifications.store import EMAILS_CHANNEL
from prodigy_users.notifications.tables import emails
from prodigy_users.stack.supervisor import Stack
from tests.e2e.own_stack import two_of_each


@contextlib.asynccontextmanager
async def notifications_pair(tmp_path: Path, service_env: dict[str, str]) -> AsyncIterator[Stack]:
    """Two notifications processes (and what they need), nothing else."""
    async with two_of_each(
        tmp_path, services=("notifications",), console=False, service_env=service_env
    ) as stack:
        yield stack


async def queue_emails(db: AsyncEngine, n: int, prefix: str) -> dict[str, uuid.UUID]:
    """Queue ``n`` emails at once, as a bulk import does, to ``prefix``NNNN-tag addresses;
    {recipient: email id}."""
    tag = uuid.uuid4().hex[:6]
    rows: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "source_event_id": uuid.uuid4(),
            "template": "welcome_joined",
            "recipient": f"{prefix}{i:04d}-{tag}@example.org",
            "recipient_name": f"{prefix.title()} Person {i}",
        }
        for i in range(n)
    ]
    async with db.begin() as conn:
        await conn.execute(sa.insert(emails), rows)
        await conn.execute(sa.text(f"NOTIFY {EMAILS_CHANNEL}"))
    return {str(r["recipient"]): uuid.UUID(str(r["id"])) for r in rows}


async def captured(stack: Stack, wanted: dict[str, uuid.UUID]) -> list[dict[str, Any]]:
    """The messages the stack's mail capture holds for the ``wanted`` recipients."""
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(stack.url("mail") + "/messages")
        r.raise_for_status()
        return [m for m in r.json() if m["to"][0] in wanted]
