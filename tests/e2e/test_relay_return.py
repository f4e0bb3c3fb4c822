"""The mail relay away long enough for every email to be waiting out a long backoff,
on the real stack (its own: PostgreSQL, the broker, the SMTP capture, two
notifications processes, a backoff of 60 s).

Once the relay answers again, the emails go out within seconds (a probe notices it,
and what waited is due at once), not when each one's backoff runs out; and each once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.notifications.tables import emails
from prodigy_users.stack.supervisor import Stack
from tests.e2e.notifications_support import captured, notifications_pair, queue_emails
from tests.support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BURST = 40
BACKOFF_S = 60.0
PROBE_S = 1.0


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Stack]:
    """Two notifications processes with a long backoff and a quick relay probe."""
    env = {
        "PRODIGY_SEND_BACKOFF_BASE_S": str(BACKOFF_S),
        "PRODIGY_SEND_BACKOFF_MAX_S": str(BACKOFF_S * 4),
        "PRODIGY_SEND_RELAY_PROBE_S": str(PROBE_S),
    }
    async with notifications_pair(tmp_path, env) as stack:
        yield stack


async def test_emails_waiting_out_their_backoff_go_once_the_relay_is_back(
    pair: Stack, notifications_db: AsyncEngine
) -> None:
    await pair.stop_mail()
    wanted = await queue_emails(notifications_db, BURST, "back")
    ids = list(wanted.values())

    async def all_waiting() -> datetime | None:
        async with notifications_db.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(emails.c.status, emails.c.next_attempt_at).where(emails.c.id.in_(ids))
                )
            ).all()
        if any(r.status != "retrying" for r in rows):
            return None
        earliest: datetime = min(r.next_attempt_at for r in rows)
        return earliest

    earliest = await wait_for(all_waiting, timeout=60, interval=0.2, what="every email retrying")
    # Their backoff says "not before a minute from the failure".
    assert earliest - datetime.now(UTC) > timedelta(seconds=BACKOFF_S / 2)

    back_at = time.monotonic()
    await pair.start_mail()

    async def all_sent() -> bool:
        async with notifications_db.connect() as conn:
            statuses = (
                await conn.execute(sa.select(emails.c.status).where(emails.c.id.in_(ids)))
            ).scalars()
            return all(s == "sent" for s in statuses)

    await wait_for(all_sent, timeout=BACKOFF_S, interval=0.2, what="every email sent")
    took = time.monotonic() - back_at
    print(f"\n{BURST} emails sent {took:.1f} s after the relay came back (backoff {BACKOFF_S} s)")
    assert took < BACKOFF_S / 3, "sent once the relay answered, not when the backoff ran out"

    mails = await captured(pair, wanted)
    assert Counter(m["to"][0] for m in mails) == Counter(list(wanted)), "each email exactly once"
