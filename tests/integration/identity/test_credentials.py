"""Identity's credentials on a real PostgreSQL: accounts created with a registration's
password hash, admin-triggered resets, and the cap on public reset requests."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.identity import CreateAccount, IssuePasswordReset
from prodigy_users.identity.api import set_password_form
from prodigy_users.identity.errors import PROBLEMS, InvalidCredentials
from prodigy_users.identity.service import Accounts
from prodigy_users.identity.tables import credential_tokens
from prodigy_users.runtime.passwords import hash_password

from .conftest import PASSWORD, account_id_of, command, emitted, new_email

pytestmark = pytest.mark.timeout(120)


async def test_a_registered_password_is_kept_and_no_set_password_email_goes_out(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email = new_email()
    hashed = await asyncio.to_thread(hash_password, PASSWORD)
    cmd = CreateAccount(
        request_id=uuid.uuid4(),
        email=email,
        name="Reg Istered",
        department_id=uuid.uuid4(),
        password_hash=hashed,
    )
    await command(identity, engine, cmd, email)
    account_id = await account_id_of(identity, email)
    types = [e["type"] for e in await emitted(engine, account_id)]
    assert types == ["identity.account_created", "identity.password_changed"]
    token, _ = await identity.login(email, PASSWORD)
    assert token


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


async def test_public_reset_requests_send_at_most_three_emails_an_hour(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email = new_email()
    await command(
        identity,
        engine,
        CreateAccount(
            request_id=uuid.uuid4(), email=email, name="Flood Target", department_id=uuid.uuid4()
        ),
        email,
    )
    account_id = await account_id_of(identity, email)
    # Concurrent requests too: the account's row lock keeps the count honest.
    await asyncio.gather(*(identity.request_reset(email.upper()) for _ in range(6)))
    await identity.request_reset(email)
    resets = [
        e
        for e in await emitted(engine, account_id)
        if e["type"] == "identity.password_link_issued" and e["data"]["purpose"] == "reset"
    ]
    assert len(resets) == 3
    await identity.request_reset(new_email())  # unknown: nothing, no error


async def test_the_set_password_form_answers_every_outcome_with_a_page(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email = new_email()
    await command(
        identity,
        engine,
        CreateAccount(
            request_id=uuid.uuid4(), email=email, name="Form User", department_id=uuid.uuid4()
        ),
        email,
    )
    link = await identity.operator_link(await account_id_of(identity, email))

    weak = await set_password_form(identity, token=link.token, password="short")
    assert (weak.status_code, weak.media_type) == (422, "text/html")
    assert "Password must be at least 10 characters long." in bytes(weak.body).decode()

    done = await set_password_form(identity, token=link.token, password=PASSWORD)
    assert done.status_code == 200
    assert "Your password is set." in bytes(done.body).decode()
    token, _ = await identity.login(email, PASSWORD)
    assert token

    used = await set_password_form(identity, token=link.token, password=PASSWORD)
    assert used.status_code == 400
    assert "This link has already been used." in bytes(used.body).decode()
    unknown = await set_password_form(identity, token="never-issued", password=PASSWORD)
    assert unknown.status_code == 400
    assert "This link is not valid." in bytes(unknown.body).decode()
