"""Identity's credentials on a real PostgreSQL: accounts created with a registration's
password hash, admin-triggered resets, public reset requests recorded and worked
after the answer, and the one cap on reset emails per account whoever asked."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import wrap
from prodigy_users.contracts.identity import (
    CreateAccount,
    IssuePasswordReset,
    PasswordResetRequested,
)
from prodigy_users.contracts.topics import IDENTITY_RESET_REQUESTS
from prodigy_users.identity.consumers import handlers
from prodigy_users.identity.errors import PROBLEMS, InvalidCredentials, LinkInvalid, LinkUsed
from prodigy_users.identity.passwords import SealedPasswords
from prodigy_users.identity.service import Accounts
from prodigy_users.identity.tables import credential_tokens
from prodigy_users.runtime.consumer import Consumer
from prodigy_users.runtime.errors import WeakPassword
from prodigy_users.runtime.keys import LINK_TOKEN, PASSWORD_HASH, seal
from prodigy_users.runtime.messaging_tables import outbox
from prodigy_users.runtime.passwords import hash_password
from tests.integration.identity.conftest import (
    PASSWORD,
    account_id_of,
    command,
    emitted,
    new_email,
    sealed_hash,
)

pytestmark = pytest.mark.timeout(120)

async def test_a_registered_password_is_kept_and_no_set_password_email_goes_out(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email = new_email()
    cmd = CreateAccount(
        request_id=uuid.uuid4(),
        email=email,
        name="Reg Istered",
        department_id=uuid.uuid4(),
        sealed_password_hash=await sealed_hash(identity, PASSWORD),
    )
    await command(identity, engine, cmd, email)
    account_id = await account_id_of(identity, email)
    types = [e["type"] for e in await emitted(engine, account_id)]
    assert types == ["identity.account_created", "identity.password_changed"]
    token, _ = await identity.login(email, PASSWORD)
    assert token


async def test_a_hash_in_the_clear_from_before_the_change_is_still_honoured(
    identity: Accounts, engine: AsyncEngine
) -> None:
    # A version-2 command still on the topic when identity is upgraded.
    email = new_email()
    hashed = await asyncio.to_thread(hash_password, PASSWORD)
    cmd = CreateAccount(
        request_id=uuid.uuid4(),
        email=email,
        name="Old Command",
        department_id=uuid.uuid4(),
        password_hash=hashed,
    )
    await command(identity, engine, cmd, email)
    token, _ = await identity.login(email, PASSWORD)
    assert token


@pytest.mark.parametrize("how", ["notifications' key", "another purpose", "garbage"])
async def test_a_sealed_hash_that_does_not_open_is_never_used(
    identity: Accounts, engine: AsyncEngine, keys: dict[str, Path], how: str
) -> None:
    hashed = await asyncio.to_thread(hash_password, PASSWORD)
    identity_public = (keys["identity_seal_public"]).read_bytes()
    sealed = {
        "notifications' key": seal(keys["seal_public"].read_bytes(), hashed, PASSWORD_HASH),
        # Sealed to identity, but as a link token: the purpose binds it, so it fails.
        "another purpose": seal(identity_public, hashed, LINK_TOKEN),
        "garbage": "hpke1.bm90IGEgc2VhbGVkIHZhbHVl",
    }[how]
    email = new_email()
    cmd = CreateAccount(
        request_id=uuid.uuid4(),
        email=email,
        name="Bad Seal",
        department_id=uuid.uuid4(),
        sealed_password_hash=sealed,
    )
    await command(identity, engine, cmd, email)
    account_id = await account_id_of(identity, email)
    account = await identity.account(account_id)
    assert account is not None and account.password_hash is None
    types = [e["type"] for e in await emitted(engine, account_id)]
    assert types == ["identity.account_created", "identity.password_link_issued"]


async def test_without_a_hash_the_person_gets_a_set_password_link(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email = new_email()
    cmd = CreateAccount(
        request_id=uuid.uuid4(), email=email, name="Added Person", department_id=uuid.uuid4()
    )
    await command(identity, engine, cmd, email)
    account_id = await account_id_of(identity, email)
    types = [e["type"] for e in await emitted(engine, account_id)]
    assert types == ["identity.account_created", "identity.password_link_issued"]
    with pytest.raises(InvalidCredentials):
        await identity.login(email, PASSWORD)
    assert PROBLEMS[InvalidCredentials].status == 401


async def test_something_that_is_not_a_hash_is_never_stored(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email = new_email()
    cmd = CreateAccount(
        request_id=uuid.uuid4(),
        email=email,
        name="Odd Hash",
        department_id=uuid.uuid4(),
        password_hash=PASSWORD,
    )
    await command(identity, engine, cmd, email)
    account_id = await account_id_of(identity, email)
    account = await identity.account(account_id)
    assert account is not None and account.password_hash is None
    types = [e["type"] for e in await emitted(engine, account_id)]
    assert "identity.password_link_issued" in types


async def test_an_admin_reset_issues_a_one_hour_reset_link_for_the_department(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email = new_email()
    dept = uuid.uuid4()
    await command(
        identity,
        engine,
        CreateAccount(request_id=uuid.uuid4(), email=email, name="Ana Lima", department_id=dept),
        email,
    )
    account_id = await account_id_of(identity, email)
    await command(
        identity, engine, IssuePasswordReset(account_id=account_id, department_id=dept), str(dept)
    )
    link = (await emitted(engine, account_id))[-1]
    assert link["type"] == "identity.password_link_issued"
    assert link["data"]["purpose"] == "reset"
    assert link["data"]["department_id"] == str(dept)
    expires = datetime.fromisoformat(link["data"]["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    async with engine.connect() as conn:
        purposes = (
            await conn.execute(
                sa.select(credential_tokens.c.purpose).where(
                    credential_tokens.c.account_id == account_id
                )
            )
        ).scalars()
        assert sorted(purposes) == ["reset", "welcome"]


async def test_a_reset_for_an_unknown_account_does_nothing(
    identity: Accounts, engine: AsyncEngine
) -> None:
    nobody = uuid.uuid4()
    await command(
        identity, engine, IssuePasswordReset(account_id=nobody, department_id=None), str(nobody)
    )
    assert await emitted(engine, nobody) == []


async def work_reset_requests(identity: Accounts, engine: AsyncEngine) -> int:
    """Deliver the reset requests identity recorded to its own consumer, as the relay and
    the broker would (each once: the inbox would skip a repeat anyway); how many."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(outbox.c.envelope)
                .where(outbox.c.type == PasswordResetRequested.TYPE)
                .order_by(outbox.c.id)
            )
        ).all()
    table = handlers(identity.links, identity.confirmations, SealedPasswords(None))
    consumer = Consumer("identity", engine, KafkaBroker("127.0.0.1:1"), identity.settings, table)
    by_type = {p.TYPE: (p, h) for p, h in table.items()}
    for row in rows:
        body = json.dumps(row.envelope).encode()
        await consumer.process(IDENTITY_RESET_REQUESTS, body, None, by_type)
    return len(rows)


async def resets_of(engine: AsyncEngine, account_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        e
        for e in await emitted(engine, account_id)
        if e["type"] == "identity.password_link_issued" and e["data"]["purpose"] == "reset"
    ]


async def new_account(identity: Accounts, engine: AsyncEngine, name: str) -> tuple[str, uuid.UUID]:
    email = new_email()
    cmd = CreateAccount(request_id=uuid.uuid4(), email=email, name=name, department_id=uuid.uuid4())
    await command(identity, engine, cmd, email)
    return email, await account_id_of(identity, email)


async def test_a_public_reset_request_is_only_recorded_then_worked_by_the_consumer(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email, account_id = await new_account(identity, engine, "Queue Person")
    await identity.request_reset(email.upper())
    # Answered: the request is recorded, and nothing else has happened yet.
    assert await resets_of(engine, account_id) == []
    async with engine.connect() as conn:
        recorded = (
            await conn.execute(
                sa.select(outbox.c.envelope).where(outbox.c.type == PasswordResetRequested.TYPE)
            )
        ).all()
    assert email in [r.envelope["data"]["email"].lower() for r in recorded]
    await work_reset_requests(identity, engine)
    [link] = await resets_of(engine, account_id)
    assert link["data"]["email"] == email and link["data"]["department_id"] is None


async def test_public_reset_requests_send_at_most_three_emails_an_hour(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email, account_id = await new_account(identity, engine, "Flood Target")
    for _ in range(6):
        await identity.request_reset(email.upper())
    await identity.request_reset(email)
    await identity.request_reset(new_email())  # unknown: nothing, no error
    await work_reset_requests(identity, engine)
    assert len(await resets_of(engine, account_id)) == 3


async def test_admin_resets_share_the_cap_of_three_emails_an_hour(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email, account_id = await new_account(identity, engine, "Admin Flood")
    dept = uuid.uuid4()
    # Concurrent too: the account's row lock keeps the count honest.
    await asyncio.gather(
        *(
            command(
                identity,
                engine,
                IssuePasswordReset(account_id=account_id, department_id=dept),
                str(dept),
            )
            for _ in range(20)
        )
    )
    assert len(await resets_of(engine, account_id)) == 3
    # The public request finds the cap reached by the admin's: no fourth email.
    await identity.request_reset(email)
    await work_reset_requests(identity, engine)
    assert len(await resets_of(engine, account_id)) == 3


async def test_a_reset_request_that_waited_over_an_hour_is_dropped(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email, account_id = await new_account(identity, engine, "Late Request")
    table = handlers(identity.links, identity.confirmations, SealedPasswords(None))
    consumer = Consumer("identity", engine, KafkaBroker("127.0.0.1:1"), identity.settings, table)
    envelope = wrap(PasswordResetRequested(email=email), producer="identity", key=email)
    envelope = envelope.model_copy(
        update={"occurred_at": datetime.now(UTC) - timedelta(hours=1, minutes=1)}
    )
    by_type = {p.TYPE: (p, h) for p, h in table.items()}
    await consumer.process(IDENTITY_RESET_REQUESTS, envelope.encode(), None, by_type)
    assert await resets_of(engine, account_id) == []
    fresh = wrap(PasswordResetRequested(email=email), producer="identity", key=email)
    await consumer.process(IDENTITY_RESET_REQUESTS, fresh.encode(), None, by_type)
    assert len(await resets_of(engine, account_id)) == 1


async def test_set_password_refuses_weak_passwords_and_used_or_unknown_links(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email, account_id = await new_account(identity, engine, "Link User")
    link = await identity.operator_link(account_id)
    with pytest.raises(WeakPassword) as weak:
        await identity.set_password(link.token, "short")
    assert weak.value.errors == [
        {"field": "password", "message": "Password must be at least 10 characters long."}
    ]
    await identity.set_password(link.token, PASSWORD)
    token, _ = await identity.login(email, PASSWORD)
    assert token
    with pytest.raises(LinkUsed):
        await identity.set_password(link.token, PASSWORD)
    with pytest.raises(LinkInvalid):
        await identity.set_password("never-issued", PASSWORD)
