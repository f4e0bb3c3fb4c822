"""Identity on a real migrated PostgreSQL, without HTTP and without a broker: its use
cases, and its consumer's handlers driven with the commands membership would send.
What identity emitted is read back from its outbox. One PostgreSQL serves the
directory; every test uses addresses of its own."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import Payload, wrap
from prodigy_users.contracts.topics import IDENTITY_COMMANDS
from prodigy_users.identity import store
from prodigy_users.identity.confirmations import Confirmations
from prodigy_users.identity.consumers import handlers
from prodigy_users.identity.links import Links
from prodigy_users.identity.passwords import SealedPasswords
from prodigy_users.identity.service import Accounts
from prodigy_users.identity.settings import Settings
from prodigy_users.runtime.auth import TokenIssuer
from prodigy_users.runtime.consumer import Consumer
from prodigy_users.runtime.keys import (
    PASSWORD_HASH,
    generate_keys,
    load_private_key,
    load_seal_key,
    seal,
)
from prodigy_users.runtime.messaging_tables import outbox
from prodigy_users.runtime.passwords import hash_password
from tests.integration.databases import own_database

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="package")
def keys() -> Iterator[dict[str, Path]]:
    """Key files as ``prodigy-users`` makes them (signing, sealing)."""
    with tempfile.TemporaryDirectory(prefix="identity-keys-") as tmp:
        yield generate_keys(Path(tmp))


@pytest.fixture(scope="package")
async def engine() -> AsyncIterator[AsyncEngine]:
    """A migrated identity database on a PostgreSQL of its own."""
    async with own_database("identity") as eng:
        yield eng


@pytest.fixture(scope="package")
def identity(engine: AsyncEngine, keys: dict[str, Path]) -> Accounts:
    """Identity's use cases, wired as ``app.spec`` wires them."""
    settings = Settings(
        jwks_path=keys["jwks"],
        seal_public_key_path=keys["seal_public"],
        identity_seal_private_key_path=keys["identity_seal_private"],
    )
    issuer = TokenIssuer(
        load_private_key(keys["signing_key"]),
        kid=json.loads(keys["jwks"].read_text())["keys"][0]["kid"],
        issuer=settings.token_issuer,
        audience=settings.token_audience,
    )
    links = Links(settings)
    confirmations = Confirmations(links, timedelta(seconds=settings.email_confirmation_ttl_s))
    return Accounts(engine, settings, issuer, links, confirmations)


async def command(identity: Accounts, engine: AsyncEngine, payload: Payload, key: str) -> None:
    """Deliver a command as identity's consumer would (the broker is never used)."""
    passwords = SealedPasswords(identity.settings.identity_seal_private_key_path)
    table = handlers(identity.links, identity.confirmations, passwords)
    consumer = Consumer("identity", engine, KafkaBroker("127.0.0.1:1"), identity.settings, table)
    body = wrap(payload, producer="membership", key=key).encode()
    await consumer.process(
        IDENTITY_COMMANDS, body, None, {p.TYPE: (p, h) for p, h in table.items()}
    )


async def emitted(engine: AsyncEngine, account_id: uuid.UUID) -> list[dict[str, Any]]:
    """The outbox envelopes about one account, oldest first."""
    return await emitted_where(engine, "account_id", str(account_id))


async def emitted_where(engine: AsyncEngine, field: str, value: str) -> list[dict[str, Any]]:
    """The outbox envelopes whose payload has ``field`` = ``value``, oldest first."""
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(outbox.c.envelope)
            .where(outbox.c.envelope["data"][field].astext == value)
            .order_by(outbox.c.id)
        )
        return [row.envelope for row in result]


async def account_id_of(identity: Accounts, email: str) -> uuid.UUID:
    """The id of the account with this address (it must exist)."""
    async with identity.engine.connect() as conn:
        account = await store.account_by_email(conn, email.lower())
    assert account is not None
    return account.id


def new_email() -> str:
    """An address no test has used."""
    return f"reg-{uuid.uuid4().hex[:10]}@example.org"


async def sealed_hash(identity: Accounts, password: str) -> str:
    """``password``'s Argon2id hash sealed to identity's key, as membership sends it."""
    path = identity.settings.identity_seal_private_key_path
    assert path is not None
    public = load_seal_key(path).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return seal(public, await asyncio.to_thread(hash_password, password), PASSWORD_HASH)
