"""Registrations that must prove their address: the account starts unconfirmed and
cannot sign in; the emailed link (with the password chosen) confirms it; any other
request for the address takes an unconfirmed account over; links can be sent again
(capped); and the sweep deletes what nobody confirmed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.identity import (
    AccountRequest,
    CreateAccount,
    CreateAccounts,
    EmailConfirmationIssued,
)
from prodigy_users.identity.domain import MAX_CONFIRMATIONS_PER_WINDOW
from prodigy_users.identity.errors import (
    PROBLEMS,
    EmailNotConfirmed,
    InvalidCredentials,
    LinkExpired,
    LinkInvalid,
    LinkUsed,
    WrongRegistrationPassword,
)
from prodigy_users.identity.service import Accounts
from prodigy_users.identity.tables import accounts, credential_tokens
from prodigy_users.runtime.keys import load_seal_key, unseal

from .conftest import (
    PASSWORD,
    account_id_of,
    command,
    emitted,
    emitted_where,
    new_email,
    sealed_hash,
)

pytestmark = pytest.mark.timeout(120)

OTHER_PASSWORD = "another long passphrase entirely"


async def register(
    identity: Accounts,
    engine: AsyncEngine,
    email: str,
    password: str = PASSWORD,
    *,
    confirm: bool = True,
    name: str = "Reg Istrant",
) -> CreateAccount:
    """Membership's command for someone registering with ``email``, delivered."""
    cmd = CreateAccount(
        request_id=uuid.uuid4(),
        email=email,
        name=name,
        department_id=uuid.uuid4(),
        sealed_password_hash=await sealed_hash(identity, password),
        confirm_email=confirm,
    )
    await command(identity, engine, cmd, email.lower())
    return cmd


def types(envelopes: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in envelopes]


async def answers(engine: AsyncEngine, cmd: CreateAccount) -> list[str]:
    """Identity's answers to one request (keyed by it), in order."""
    return types(await emitted_where(engine, "request_id", str(cmd.request_id)))


async def confirmation_token(
    engine: AsyncEngine, keys: dict[str, Path], account_id: uuid.UUID
) -> str:
    """The token of the account's last confirmation email, opened as notifications would."""
    issued = [
        e for e in await emitted(engine, account_id) if e["type"] == EmailConfirmationIssued.TYPE
    ]
    assert issued, "no confirmation link was emailed"
    return unseal(load_seal_key(keys["seal_private"]), issued[-1]["data"]["sealed_token"])


async def test_a_registration_is_unconfirmed_until_its_link_is_used_with_its_password(
    identity: Accounts, engine: AsyncEngine, keys: dict[str, Path]
) -> None:
    email = new_email()
    cmd = await register(identity, engine, email)
    account_id = await account_id_of(identity, email)

    # Answered "awaiting", the link emailed; nothing says the account exists yet.
    assert await answers(engine, cmd) == ["identity.account_awaiting_confirmation"]
    assert types(await emitted(engine, account_id)) == ["identity.email_confirmation_issued"]
    [issued] = await emitted(engine, account_id)
    assert issued["data"]["department_id"] == str(cmd.department_id)
    expires = datetime.fromisoformat(issued["data"]["expires_at"])
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=24)
    assert PASSWORD not in str(issued)
    # It cannot sign in: the right password is told why, a wrong one learns nothing.
    with pytest.raises(EmailNotConfirmed) as refused:
        await identity.login(email, PASSWORD)
    assert PROBLEMS[EmailNotConfirmed].status == 403
    assert email in refused.value.detail and refused.value.extra == {"email": email}
    with pytest.raises(InvalidCredentials):
        await identity.login(email, OTHER_PASSWORD)
    # A forgotten password of a registration in progress sends nothing.
    await identity.request_reset(email)
    assert types(await emitted(engine, account_id)) == ["identity.email_confirmation_issued"]

    token = await confirmation_token(engine, keys, account_id)
    # The link alone is not enough: it needs the password chosen when registering.
    with pytest.raises(WrongRegistrationPassword):
        await identity.confirm_email(token, OTHER_PASSWORD)
    # A confirmation link never sets a password.
    with pytest.raises(LinkInvalid):
        await identity.set_password(token, OTHER_PASSWORD)

    done = await identity.confirm_email(token, PASSWORD)

    assert (done.account_id, done.email) == (account_id, email)
    assert (done.department_id, done.request_id) == (cmd.department_id, cmd.request_id)
    emitted_after = await emitted(engine, account_id)
    # Setting the password also cuts off tokens issued before it (its own topic).
    assert types(emitted_after).count("identity.tokens_revoked") == 1
    after = [e for e in emitted_after if e["type"] != "identity.tokens_revoked"]
    assert types(after)[-3:] == [
        "identity.account_created",
        "identity.password_changed",
        "identity.account_email_confirmed",
    ]
    created, _, confirmed = after[-3:]
    assert created["data"]["request_id"] == str(cmd.request_id)
    assert created["data"]["department_id"] == str(cmd.department_id)
    assert confirmed["data"]["request_id"] == str(cmd.request_id)
    assert (await identity.login(email.upper(), PASSWORD))[0]
    with pytest.raises(LinkUsed):
        await identity.confirm_email(token, PASSWORD)


async def test_unknown_and_lapsed_confirmation_links_are_refused(
    identity: Accounts, engine: AsyncEngine, keys: dict[str, Path]
) -> None:
    with pytest.raises(LinkInvalid):
        await identity.confirm_email("never-issued", PASSWORD)
    email = new_email()
    await register(identity, engine, email)
    account_id = await account_id_of(identity, email)
    token = await confirmation_token(engine, keys, account_id)
    await _expire_links(engine, account_id)
    with pytest.raises(LinkExpired):
        await identity.confirm_email(token, PASSWORD)
    # A set-password link never confirms a registration.
    added = new_email()
    await command(
        identity,
        engine,
        CreateAccount(request_id=uuid.uuid4(), email=added, name="A", department_id=uuid.uuid4()),
        added,
    )
    link = await identity.operator_link(await account_id_of(identity, added))
    with pytest.raises(LinkInvalid):
        await identity.confirm_email(link.token, PASSWORD)


async def test_the_invited_address_itself_is_confirmed_at_once(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email = new_email()
    cmd = await register(identity, engine, email, confirm=False)
    account_id = await account_id_of(identity, email)
    assert types(await emitted(engine, account_id)) == [
        "identity.account_created",
        "identity.password_changed",
    ]
    assert await answers(engine, cmd) == ["identity.account_created"]
    assert (await identity.login(email, PASSWORD))[0]


async def test_registering_a_confirmed_address_is_rejected_and_changes_nothing(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email = new_email()
    await register(identity, engine, email, confirm=False)
    account_id = await account_id_of(identity, email)

    again = await register(identity, engine, email.upper(), OTHER_PASSWORD)

    assert await answers(engine, again) == ["identity.account_creation_rejected"]
    [rejection] = await emitted_where(engine, "request_id", str(again.request_id))
    assert rejection["data"]["existing_account_id"] == str(account_id)
    assert (await identity.login(email, PASSWORD))[0], "the owner's password stands"
    with pytest.raises(InvalidCredentials):
        await identity.login(email, OTHER_PASSWORD)


async def test_a_second_registration_takes_an_unconfirmed_address_over(
    identity: Accounts, engine: AsyncEngine, keys: dict[str, Path]
) -> None:
    email = new_email()
    squatter = await register(identity, engine, email, OTHER_PASSWORD, name="Squatter")
    account_id = await account_id_of(identity, email)
    squatter_token = await confirmation_token(engine, keys, account_id)

    owner = await register(identity, engine, email, PASSWORD, name="Real Owner")

    # The first request lapses; the second waits for its own link, with its password.
    assert await answers(engine, squatter) == [
        "identity.account_awaiting_confirmation",
        "identity.account_request_lapsed",
    ]
    [lapse] = (await emitted_where(engine, "request_id", str(squatter.request_id)))[1:]
    assert lapse["data"]["reason"] == "superseded"
    assert await answers(engine, owner) == ["identity.account_awaiting_confirmation"]
    assert await account_id_of(identity, email) == account_id
    with pytest.raises(LinkUsed):
        await identity.confirm_email(squatter_token, OTHER_PASSWORD)
    token = await confirmation_token(engine, keys, account_id)
    with pytest.raises(WrongRegistrationPassword):
        await identity.confirm_email(token, OTHER_PASSWORD)
    done = await identity.confirm_email(token, PASSWORD)
    assert done.request_id == owner.request_id
    account = await identity.account(account_id)
    assert account is not None and account.name == "Real Owner"


async def test_an_admin_adding_an_unconfirmed_address_makes_it_a_normal_account(
    identity: Accounts, engine: AsyncEngine
) -> None:
    email = new_email()
    squatter = await register(identity, engine, email, OTHER_PASSWORD, name="Squatter")
    account_id = await account_id_of(identity, email)
    add = CreateAccount(
        request_id=uuid.uuid4(), email=email, name="Added By Admin", department_id=uuid.uuid4()
    )

    await command(identity, engine, add, email)

    assert await answers(engine, add) == ["identity.account_created"]
    assert (await answers(engine, squatter))[-1] == "identity.account_request_lapsed"
    assert types(await emitted(engine, account_id))[-2:] == [
        "identity.account_created",
        "identity.password_link_issued",
    ]
    account = await identity.account(account_id)
    assert account is not None
    assert (account.name, account.password_hash, account.confirmed) == (
        "Added By Admin",
        None,
        True,
    )
    with pytest.raises(InvalidCredentials):
        await identity.login(email, OTHER_PASSWORD)  # the registrant's password is gone
    async with engine.connect() as conn:
        live = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(credential_tokens)
            .where(
                credential_tokens.c.account_id == account_id,
                credential_tokens.c.used_at.is_(None),
            )
        )
    assert live == 1, "only the welcome link works"


async def test_an_upload_takes_unconfirmed_addresses_over(
    identity: Accounts, engine: AsyncEngine
) -> None:
    squatted, fresh = new_email(), new_email()
    squatter = await register(identity, engine, squatted, OTHER_PASSWORD)
    account_id = await account_id_of(identity, squatted)
    batch = CreateAccounts(
        request_id=uuid.uuid4(),
        department_id=uuid.uuid4(),
        accounts=[
            AccountRequest(email=squatted, name="Up Loaded"),
            AccountRequest(email=fresh, name="F"),
        ],
    )

    await command(identity, engine, batch, str(batch.request_id))

    [answer] = [
        e
        for e in await emitted_where(engine, "request_id", str(batch.request_id))
        if e["type"] == "identity.account_batch_answered"
    ]
    created = {c["email"]: c["account_id"] for c in answer["data"]["created"]}
    assert created == {squatted: str(account_id), fresh: str(await account_id_of(identity, fresh))}
    assert answer["data"]["existing"] == []
    assert (await answers(engine, squatter))[-1] == "identity.account_request_lapsed"
    account = await identity.account(account_id)
    assert account is not None and account.confirmed and account.password_hash is None


async def test_the_link_can_be_sent_again_with_the_same_expiry_and_a_cap(
    identity: Accounts, engine: AsyncEngine, keys: dict[str, Path]
) -> None:
    email = new_email()
    await register(identity, engine, email)
    account_id = await account_id_of(identity, email)
    first = await confirmation_token(engine, keys, account_id)

    await identity.resend_confirmation(email.upper())

    issued = [
        e for e in await emitted(engine, account_id) if e["type"] == EmailConfirmationIssued.TYPE
    ]
    assert [e["data"]["resent"] for e in issued] == [False, True]
    assert issued[0]["data"]["expires_at"] == issued[1]["data"]["expires_at"]
    with pytest.raises(LinkUsed):
        await identity.confirm_email(first, PASSWORD)
    # Anyone can ask for any address: a few emails an hour, then nothing more.
    for _ in range(MAX_CONFIRMATIONS_PER_WINDOW + 2):
        await identity.resend_confirmation(email)
    issued = [
        e for e in await emitted(engine, account_id) if e["type"] == EmailConfirmationIssued.TYPE
    ]
    assert len(issued) == MAX_CONFIRMATIONS_PER_WINDOW
    # The latest link works, mailed or not.
    latest = await confirmation_token(engine, keys, account_id)
    assert latest != first
    # Nothing for an unknown or a confirmed address, and no error either.
    await identity.resend_confirmation(new_email())
    confirmed = new_email()
    await register(identity, engine, confirmed, confirm=False)
    await identity.resend_confirmation(confirmed)
    assert EmailConfirmationIssued.TYPE not in types(
        await emitted(engine, await account_id_of(identity, confirmed))
    )


async def test_the_sweep_deletes_lapsed_registrations_and_only_those(
    identity: Accounts, engine: AsyncEngine
) -> None:
    lapsing, waiting, confirmed = new_email(), new_email(), new_email()
    old = await register(identity, engine, lapsing)
    await register(identity, engine, waiting)
    await register(identity, engine, confirmed, confirm=False)
    lapsed_id = await account_id_of(identity, lapsing)
    await _expire_links(engine, lapsed_id)

    while await identity.sweep_unconfirmed():
        pass

    assert await identity.account(lapsed_id) is None
    async with engine.connect() as conn:
        tokens = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(credential_tokens)
            .where(credential_tokens.c.account_id == lapsed_id)
        )
    assert tokens == 0
    [lapse] = (await emitted_where(engine, "request_id", str(old.request_id)))[1:]
    assert lapse["type"] == "identity.account_request_lapsed"
    assert lapse["data"]["reason"] == "expired"
    assert await identity.account(await account_id_of(identity, waiting)) is not None
    assert await identity.account(await account_id_of(identity, confirmed)) is not None
    # The address is free again: registering starts over with a new account.
    again = await register(identity, engine, lapsing)
    assert await answers(engine, again) == ["identity.account_awaiting_confirmation"]
    assert await account_id_of(identity, lapsing) != lapsed_id
    async with engine.connect() as conn:
        unconfirmed_left = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(accounts)
            .where(accounts.c.email_confirmed_at.is_(None), accounts.c.id == lapsed_id)
        )
    assert unconfirmed_left == 0


async def _expire_links(engine: AsyncEngine, account_id: uuid.UUID) -> None:
    """Move the account's tokens past their expiry (the clock, not the system, waits)."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(credential_tokens)
            .where(credential_tokens.c.account_id == account_id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
