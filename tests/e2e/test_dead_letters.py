"""Dead letters are kept in the consumer's database: they outlive a reset of the
memory-only broker, `prodigy-users dlq` lists and shows them, and a replay after the
cause is fixed applies the message once (a second replay changes nothing).

The cause here is one an operator meets: the database refuses the handler's write
(a trigger stands in for a constraint or a migration in progress), for one address.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from prodigy_users.contracts.identity import PasswordLinkIssued
from prodigy_users.contracts.topics import IDENTITY_CREDENTIALS
from tests.support import Api, dead_letters, link_token, random_email, wait_for

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "prodigy_users.stack.cli", "dlq"]
REFUSAL = "emails to this address are refused for now"


def _dsn(stack: Any, service: str) -> str:
    url = make_url(stack.database_url(service)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def dlq(stack: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``prodigy-users dlq ...`` against the stack's data dir, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRODIGY_")}
    return await asyncio.to_thread(
        subprocess.run,
        [*CLI, *args, "--data-dir", str(stack.data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def listed(stack: Any, *flags: str) -> list[dict[str, Any]]:
    done = await dlq(stack, "list", "notifications", "--json", *flags)
    assert done.returncode == 0, done.stderr
    letters: list[dict[str, Any]] = json.loads(done.stdout)
    return letters


async def unreplayed_gauge(api: Api) -> float:
    text = (await api.http.get(api.url("notifications", "/metrics"))).text
    for line in text.splitlines():
        if line.startswith('prodigy_dead_letters_unreplayed{service="notifications"}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("notifications exports no prodigy_dead_letters_unreplayed")


class Refusal:
    """Notifications' database refuses the emails to one address until ``lift``."""

    def __init__(self, email: str, conn: asyncpg.Connection) -> None:
        self.email = email
        self.conn = conn
        self.name = f"refuse_{email.split('@')[0].replace('-', '_')}"

    async def impose(self) -> None:
        # Our own generated names and address: DDL takes no parameters.
        await self.conn.execute(
            f"""
            CREATE FUNCTION {self.name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% ({REFUSAL})', NEW.recipient;
            END $$;
            CREATE TRIGGER {self.name} BEFORE INSERT ON emails FOR EACH ROW
                WHEN (lower(NEW.recipient) = '{self.email}') EXECUTE FUNCTION {self.name}();
            """
        )

    async def lift(self) -> None:
        await self.conn.execute(f"DROP TRIGGER IF EXISTS {self.name} ON emails")


@pytest.fixture
async def refusal(controllable: Any) -> AsyncIterator[Refusal]:
    conn = await asyncpg.connect(_dsn(controllable, "notifications"))
    refusal = Refusal(random_email("refused"), conn)
    await refusal.impose()
    try:
        yield refusal
    finally:
        await refusal.lift()
        await conn.execute(f"DROP FUNCTION {refusal.name}()")
        await conn.close()


async def test_a_dead_letter_outlives_a_broker_reset_and_a_replay_applies_it_once(
    api: Api, controllable: Any, bootstrap: str, refusal: Refusal
) -> None:
    email = refusal.email
    admin = await api.create_department()
    r = await api.add_member(admin, email)
    assert r.status_code == 201, r.text

    async def ours() -> dict[str, Any] | None:
        found = [d for d in await listed(controllable) if email in d["reason"]]
        return found[0] if found else None

    letter = await wait_for(ours, timeout=60, what="the welcome email's event dead-lettered")
    assert letter["type"] == PasswordLinkIssued.TYPE
    assert letter["topic"] == IDENTITY_CREDENTIALS.name
    assert letter["reason"].startswith("handler failed:") and REFUSAL in letter["reason"]
    assert (letter["replays"], letter["replay_outcome"]) == (0, None)
    assert letter in await listed(controllable, "--unreplayed")
    # Published to the dead-letter topic too, as before.
    assert await dead_letters(bootstrap, IDENTITY_CREDENTIALS.dlq, email.encode(), 1)

    old = controllable.broker_epoch()
    await controllable.kill_broker()
    await controllable.wait_for_broker_epoch(old, within=60)
    # The new broker's dead-letter topic is empty; the kept dead letter is not gone.
    assert not await dead_letters(bootstrap, IDENTITY_CREDENTIALS.dlq, email.encode(), 1, timeout=3)
    assert letter in await listed(controllable)
    shown = await dlq(controllable, "show", "notifications", str(letter["id"]))
    assert shown.returncode == 0, shown.stderr
    full = json.loads(shown.stdout)
    assert email in full["body"] and json.loads(full["body"])["event_id"] == letter["event_id"]
    assert {"name": "event_id", "value": letter["event_id"]} in full["headers"]
    assert full["partition"] is not None and full["offset"] is not None

    # Replayed before the cause is fixed: it fails again, and says so.
    before = await unreplayed_gauge(api)
    assert before >= 1
    again = await dlq(controllable, "replay", "notifications", "--id", str(letter["id"]))
    assert again.returncode == 1
    assert json.loads(again.stdout)[0]["outcome"] == "dead_lettered"
    assert "still failing" in again.stderr
    now = await listed(controllable)
    [still] = [d for d in now if d["id"] == letter["id"]]
    assert (still["replays"], still["replay_outcome"]) == (1, "dead_lettered")
    assert REFUSAL in still["replay_reason"]
    assert len([d for d in now if email in d["reason"]]) == 1  # not kept twice
    assert await api.mails(email) == []

    # The cause is fixed; the replay applies it: the email goes out, once.
    await refusal.lift()
    applied = await dlq(controllable, "replay", "notifications", "--id", str(letter["id"]))
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout) == [
        {"id": letter["id"], "outcome": "applied", "reason": None}
    ]
    [mail] = await api.wait_mail(email, timeout=60)
    assert link_token(mail)  # the welcome email, with its set-password link
    assert await unreplayed_gauge(api) == before - 1
    assert letter["id"] not in [d["id"] for d in await listed(controllable, "--unreplayed")]

    # Replaying again changes nothing: the inbox has it.
    twice = await dlq(controllable, "replay", "notifications", "--id", str(letter["id"]))
    assert twice.returncode == 0, twice.stderr
    assert json.loads(twice.stdout)[0]["outcome"] == "duplicate"
    count = "SELECT count(*) FROM emails WHERE lower(recipient) = $1"
    assert await refusal.conn.fetchval(count, email) == 1
    fence = random_email("fence")
    assert (await api.add_member(admin, fence)).status_code == 201
    await api.wait_mail(fence, timeout=60)
    assert len(await api.mails(email)) == 1
    [done] = [d for d in await listed(controllable) if d["id"] == letter["id"]]
    assert (done["replays"], done["replay_outcome"]) == (3, "duplicate")


async def test_unknown_dead_letters_are_refused_by_name(controllable: Any) -> None:
    shown = await dlq(controllable, "show", "notifications", "987654321")
    assert shown.returncode == 1
    assert "notifications has no dead letter 987654321" in shown.stderr
    replay = await dlq(controllable, "replay", "reporting", "--id", "987654321", "--id", "1")
    assert replay.returncode == 1
    assert "reporting has no dead letter" in replay.stderr and "987654321" in replay.stderr
    assert replay.stdout == ""
