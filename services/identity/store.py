"""Identity's queries (the tables are in ``tables``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .domain import TokenState
from .tables import accounts, credential_tokens


@dataclass(frozen=True)
class Account:
    """A global account."""

    id: uuid.UUID
    email: str
    name: str
    password_hash: str | None


def _account(row: sa.Row[tuple[object, ...]] | None) -> Account | None:
    if row is None:
        return None
    return Account(row.id, row.email, row.name, row.password_hash)


async def insert_account(
    conn: AsyncConnection,
    account_id: uuid.UUID,
    email: str,
    normalised: str,
    name: str,
    *,
    password_hash: str | None = None,
    password_set_at: datetime | None = None,
) -> bool:
    """Insert unless the normalised email is taken; True if inserted.

    ``password_hash``: the account starts with this password (chosen while registering).
    """
    stmt = (
        pg_insert(accounts)
        .values(
            id=account_id,
            email=email,
            email_normalised=normalised,
            name=name,
            password_hash=password_hash,
            password_changed_at=password_set_at if password_hash else None,
        )
        .on_conflict_do_nothing(index_elements=["email_normalised"])
        .returning(accounts.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def account_by_email(conn: AsyncConnection, normalised: str) -> Account | None:
    """The account with this normalised email, if any."""
    row = (
        await conn.execute(sa.select(accounts).where(accounts.c.email_normalised == normalised))
    ).first()
    return _account(row)


async def account_by_id(
    conn: AsyncConnection, account_id: uuid.UUID, *, lock: bool = False
) -> Account | None:
    """The account with this id, if any (``lock``: row-locked until the transaction ends)."""
    stmt = sa.select(accounts).where(accounts.c.id == account_id)
    if lock:
        stmt = stmt.with_for_update()
    return _account((await conn.execute(stmt)).first())


async def insert_token(
    conn: AsyncConnection,
    account_id: uuid.UUID,
    token_hash: str,
    purpose: str,
    expires_at: datetime,
) -> None:
    """Store a token's hash."""
    await conn.execute(
        sa.insert(credential_tokens).values(
            token_hash=token_hash, account_id=account_id, purpose=purpose, expires_at=expires_at
        )
    )


async def lock_token(conn: AsyncConnection, token_hash: str) -> tuple[uuid.UUID, TokenState] | None:
    """The token's account and state, row-locked so two uses cannot both succeed."""
    row = (
        await conn.execute(
            sa.select(
                credential_tokens.c.account_id,
                credential_tokens.c.expires_at,
                credential_tokens.c.used_at,
            )
            .where(credential_tokens.c.token_hash == token_hash)
            .with_for_update()
        )
    ).first()
    if row is None:
        return None
    return row.account_id, TokenState(row.expires_at, row.used_at)


async def set_password(
    conn: AsyncConnection, account_id: uuid.UUID, password_hash: str, now: datetime
) -> None:
    """Set the password and retire every outstanding token of the account."""
    await conn.execute(
        sa.update(accounts)
        .where(accounts.c.id == account_id)
        .values(password_hash=password_hash, password_changed_at=now)
    )
    await conn.execute(
        sa.update(credential_tokens)
        .where(credential_tokens.c.account_id == account_id, credential_tokens.c.used_at.is_(None))
        .values(used_at=now)
    )


async def count_recent_tokens(
    conn: AsyncConnection, account_id: uuid.UUID, purpose: str, window: timedelta
) -> int:
    """How many tokens of ``purpose`` the account was issued within ``window`` (used or not).

    Measured on the database's clock, the one that stamped ``created_at``.
    """
    count = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(credential_tokens)
        .where(
            credential_tokens.c.account_id == account_id,
            credential_tokens.c.purpose == purpose,
            credential_tokens.c.created_at >= sa.func.now() - window,
        )
    )
    return int(count or 0)


async def insert_accounts(
    conn: AsyncConnection, rows: list[dict[str, object]]
) -> dict[str, uuid.UUID]:
    """Insert the accounts whose normalised email is free, in one statement.

    ``rows``: ``id``, ``email``, ``email_normalised``, ``name`` each. Returns the
    inserted ones as ``{email_normalised: id}``; the others lost to an existing account.
    """
    if not rows:
        return {}
    # executemany ("insertmanyvalues"): one cached statement, not one compiled per batch.
    stmt = (
        pg_insert(accounts)
        .on_conflict_do_nothing(index_elements=["email_normalised"])
        .returning(accounts.c.id, accounts.c.email_normalised)
    )
    return {r.email_normalised: r.id for r in await conn.execute(stmt, rows)}


async def account_ids_by_email(
    conn: AsyncConnection, normalised: list[str]
) -> dict[str, uuid.UUID]:
    """``{email_normalised: id}`` of the accounts with these normalised emails."""
    if not normalised:
        return {}
    rows = await conn.execute(
        sa.select(accounts.c.email_normalised, accounts.c.id).where(
            accounts.c.email_normalised.in_(normalised)
        )
    )
    return {r.email_normalised: r.id for r in rows}


async def insert_tokens(conn: AsyncConnection, rows: list[dict[str, object]]) -> None:
    """Store many tokens' hashes at once (``token_hash, account_id, purpose, expires_at``)."""
    if rows:
        await conn.execute(sa.insert(credential_tokens), rows)
