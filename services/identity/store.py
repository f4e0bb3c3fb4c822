"""Identity's queries (the tables are in ``tables``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .domain import TokenState
from .tables import account_addresses, accounts, credential_tokens


@dataclass(frozen=True)
class Account:
    """A global account."""

    id: uuid.UUID
    email: str
    name: str
    password_hash: str | None
    # None: registered, the address not proved yet (see ``tables.accounts``).
    email_confirmed_at: datetime | None = None
    password_changed_at: datetime | None = None
    # Set once an operator merged this account into another (``merges``).
    merged_into: uuid.UUID | None = None
    merged_at: datetime | None = None

    @property
    def confirmed(self) -> bool:
        """Whether the owner of the address stands behind the account."""
        return self.email_confirmed_at is not None


def _account(row: sa.Row[tuple[object, ...]] | None) -> Account | None:
    if row is None:
        return None
    return Account(
        row.id,
        row.email,
        row.name,
        row.password_hash,
        row.email_confirmed_at,
        row.password_changed_at,
        row.merged_into,
        row.merged_at,
    )


async def insert_account(
    conn: AsyncConnection,
    account_id: uuid.UUID,
    email: str,
    normalised: str,
    name: str,
    *,
    password_hash: str | None = None,
    password_set_at: datetime | None = None,
    confirmed_at: datetime | None = None,
) -> bool:
    """Insert unless the normalised email is taken; True if inserted.

    ``password_hash``: the account starts with this password (chosen while registering).
    ``confirmed_at`` None: an unconfirmed account (someone registered with the address).
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
            email_confirmed_at=confirmed_at,
        )
        .on_conflict_do_nothing(index_elements=["email_normalised"])
        .returning(accounts.c.id)
    )
    # In a savepoint: an address linked to another account refuses the new account
    # too (the addresses' unique index decides), and the caller's transaction goes on.
    async with conn.begin_nested() as savepoint:
        if (await conn.execute(stmt)).first() is None:
            return False
        if not await _insert_address(conn, account_id, email, normalised, login=True):
            await savepoint.rollback()
            return False
    return True


async def _insert_address(
    conn: AsyncConnection,
    account_id: uuid.UUID,
    email: str,
    normalised: str,
    *,
    login: bool,
    address_id: uuid.UUID | None = None,
) -> bool:
    """Give the account the address unless an account holds it; True if given."""
    stmt = (
        pg_insert(account_addresses)
        .values(
            id=address_id or uuid.uuid4(),
            account_id=account_id,
            email=email,
            email_normalised=normalised,
            login=login,
        )
        .on_conflict_do_nothing(index_elements=["email_normalised"])
        .returning(account_addresses.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def account_by_email(
    conn: AsyncConnection, normalised: str, *, lock: bool = False
) -> Account | None:
    """The account with this normalised email, if any (``lock``: row-locked)."""
    stmt = sa.select(accounts).where(accounts.c.email_normalised == normalised)
    if lock:
        stmt = stmt.with_for_update()
    return _account((await conn.execute(stmt)).first())


async def account_holding(
    conn: AsyncConnection, normalised: str, *, lock: bool = False
) -> Account | None:
    """The account holding this normalised address, as its login email or a linked one.

    Every lookup "whose is this address?" asks this (making an account, password
    reset requests); signing in asks ``account_by_email`` (login emails only).
    """
    holder = sa.select(account_addresses.c.account_id).where(
        account_addresses.c.email_normalised == normalised
    )
    stmt = sa.select(accounts).where(accounts.c.id.in_(holder.scalar_subquery()))
    if lock:
        stmt = stmt.with_for_update()
    return _account((await conn.execute(stmt)).first())


@dataclass(frozen=True)
class Address:
    """One address of an account: its login email, or one linked to it."""

    id: uuid.UUID
    account_id: uuid.UUID
    email: str
    login: bool
    linked_at: datetime


async def addresses_of(conn: AsyncConnection, account_id: uuid.UUID) -> list[Address]:
    """The account's addresses: the login email first, then by when they were linked."""
    rows = await conn.execute(
        sa.select(account_addresses)
        .where(account_addresses.c.account_id == account_id)
        .order_by(account_addresses.c.login.desc(), account_addresses.c.linked_at)
    )
    return [Address(r.id, r.account_id, r.email, r.login, r.linked_at) for r in rows]


async def link_address(
    conn: AsyncConnection, account_id: uuid.UUID, email: str, normalised: str
) -> Address | None:
    """Link the address to the account unless an account holds it already (this one
    too); the new address, or None. The unique index decides between concurrent
    links, and between a link and a new account or login email."""
    address_id = uuid.uuid4()
    if not await _insert_address(
        conn, account_id, email, normalised, login=False, address_id=address_id
    ):
        return None
    row = (
        await conn.execute(sa.select(account_addresses).where(account_addresses.c.id == address_id))
    ).one()
    return Address(row.id, row.account_id, row.email, row.login, row.linked_at)


async def unlink_address(
    conn: AsyncConnection, account_id: uuid.UUID, address_id: uuid.UUID
) -> Address | None:
    """Unlink one of the account's linked addresses (never its login email); the
    address unlinked, or None if the account has no such linked address."""
    row = (
        await conn.execute(
            sa.delete(account_addresses)
            .where(
                account_addresses.c.id == address_id,
                account_addresses.c.account_id == account_id,
                account_addresses.c.login.is_(False),
            )
            .returning(account_addresses)
        )
    ).first()
    if row is None:
        return None
    return Address(row.id, row.account_id, row.email, row.login, row.linked_at)


async def account_by_id(
    conn: AsyncConnection, account_id: uuid.UUID, *, lock: bool = False
) -> Account | None:
    """The account with this id, if any (``lock``: row-locked until the transaction ends)."""
    stmt = sa.select(accounts).where(accounts.c.id == account_id)
    if lock:
        stmt = stmt.with_for_update()
    return _account((await conn.execute(stmt)).first())


async def move_addresses(
    conn: AsyncConnection, from_account: uuid.UUID, to_account: uuid.UUID
) -> list[Address]:
    """Every address of ``from_account`` (its login email too) becomes a linked address
    of ``to_account``; the addresses moved. Rows change owner in place, so the unique
    index on the address holds at every instant."""
    rows = await conn.execute(
        sa.update(account_addresses)
        .where(account_addresses.c.account_id == from_account)
        .values(account_id=to_account, login=False)
        .returning(account_addresses)
    )
    return [Address(r.id, r.account_id, r.email, r.login, r.linked_at) for r in rows]


async def mark_merged(
    conn: AsyncConnection, account_id: uuid.UUID, into: uuid.UUID, at: datetime
) -> None:
    """The account is merged into ``into``: it keeps no login email (so nobody signs in
    as it, and the address is free of it in ``accounts``' unique index)."""
    await conn.execute(
        sa.update(accounts)
        .where(accounts.c.id == account_id)
        .values(merged_into=into, merged_at=at, email_normalised=None)
    )


async def set_name(conn: AsyncConnection, account_id: uuid.UUID, name: str) -> None:
    """The account's full name becomes ``name``."""
    await conn.execute(sa.update(accounts).where(accounts.c.id == account_id).values(name=name))


async def address_taken(
    conn: AsyncConnection, normalised: str, *, by_other_than: uuid.UUID | None = None
) -> bool:
    """Whether an account (other than ``by_other_than``) holds this normalised address.

    The one question "is this address taken?" for rules that give an existing account
    an address (a new login email, a linked address): login emails and linked
    addresses alike, as ``account_addresses`` holds both.
    Making an account relies on the unique index alone (``insert_account``), which
    stays the last word under concurrency for every rule.
    """
    stmt = sa.select(account_addresses.c.account_id).where(
        account_addresses.c.email_normalised == normalised
    )
    if by_other_than is not None:
        stmt = stmt.where(account_addresses.c.account_id != by_other_than)
    return (await conn.execute(stmt.limit(1))).first() is not None


async def set_login_email(
    conn: AsyncConnection, account_id: uuid.UUID, email: str, normalised: str
) -> bool:
    """The account's login email becomes ``email``; False if another account took the
    address first (the unique index decides, in a savepoint so the caller's
    transaction goes on)."""
    try:
        async with conn.begin_nested():
            # The account's own linked address may become its login email.
            await conn.execute(
                sa.delete(account_addresses).where(
                    account_addresses.c.account_id == account_id,
                    account_addresses.c.email_normalised == normalised,
                    account_addresses.c.login.is_(False),
                )
            )
            await conn.execute(
                sa.update(accounts)
                .where(accounts.c.id == account_id)
                .values(email=email, email_normalised=normalised)
            )
            await _set_login_address(conn, account_id, email, normalised)
    except sa.exc.IntegrityError:
        return False
    return True


async def _set_login_address(
    conn: AsyncConnection, account_id: uuid.UUID, email: str, normalised: str
) -> None:
    """Keep the account's login row of ``account_addresses`` in step with ``accounts``."""
    await conn.execute(
        sa.update(account_addresses)
        .where(account_addresses.c.account_id == account_id, account_addresses.c.login.is_(True))
        .values(email=email, email_normalised=normalised)
    )


async def email_change_of(conn: AsyncConnection, token_hash: str) -> str | None:
    """The new address an email-change token was issued for."""
    return await conn.scalar(
        sa.select(credential_tokens.c.new_email).where(credential_tokens.c.token_hash == token_hash)
    )


async def insert_token(
    conn: AsyncConnection,
    account_id: uuid.UUID,
    token_hash: str,
    purpose: str,
    expires_at: datetime,
    *,
    request_id: uuid.UUID | None = None,
    department_id: uuid.UUID | None = None,
    new_email: str | None = None,
) -> None:
    """Store a token's hash (``request_id``, ``department_id``: what it completes;
    ``new_email``: the address an email-change token moves the account to)."""
    await conn.execute(
        sa.insert(credential_tokens).values(
            token_hash=token_hash,
            account_id=account_id,
            purpose=purpose,
            expires_at=expires_at,
            request_id=request_id,
            department_id=department_id,
            new_email=new_email,
        )
    )


@dataclass(frozen=True)
class StoredToken:
    """A token's row: whose it is, what for, and whether it can still be used."""

    account_id: uuid.UUID
    state: TokenState
    request_id: uuid.UUID | None
    department_id: uuid.UUID | None


async def lock_token(conn: AsyncConnection, token_hash: str) -> StoredToken | None:
    """The token's account and state, row-locked so two uses cannot both succeed."""
    row = (
        await conn.execute(
            sa.select(credential_tokens)
            .where(credential_tokens.c.token_hash == token_hash)
            .with_for_update()
        )
    ).first()
    if row is None:
        return None
    return StoredToken(
        row.account_id,
        TokenState(row.expires_at, row.used_at, row.purpose),
        row.request_id,
        row.department_id,
    )


async def set_password(
    conn: AsyncConnection, account_id: uuid.UUID, password_hash: str, now: datetime
) -> None:
    """Set the password and retire every outstanding token of the account."""
    await conn.execute(
        sa.update(accounts)
        .where(accounts.c.id == account_id)
        .values(password_hash=password_hash, password_changed_at=now)
    )
    await retire_tokens(conn, account_id, now)


async def retire_tokens(
    conn: AsyncConnection, account_id: uuid.UUID, now: datetime, purpose: str | None = None
) -> None:
    """Every outstanding token of the account (of ``purpose``, if given) stops working."""
    stmt = sa.update(credential_tokens).where(
        credential_tokens.c.account_id == account_id, credential_tokens.c.used_at.is_(None)
    )
    if purpose is not None:
        stmt = stmt.where(credential_tokens.c.purpose == purpose)
    await conn.execute(stmt.values(used_at=now))


@dataclass(frozen=True)
class WaitingRequest:
    """A request whose account waits for its address to be confirmed."""

    request_id: uuid.UUID
    department_id: uuid.UUID | None
    expires_at: datetime


async def waiting_requests(
    conn: AsyncConnection, account_id: uuid.UUID, purpose: str
) -> list[WaitingRequest]:
    """The requests the account's unused tokens of ``purpose`` would complete (expired
    ones too), one per request, the latest expiry of each; oldest first."""
    rows = await conn.execute(
        sa.select(
            credential_tokens.c.request_id,
            credential_tokens.c.department_id,
            credential_tokens.c.expires_at,
        )
        .where(
            credential_tokens.c.account_id == account_id,
            credential_tokens.c.purpose == purpose,
            credential_tokens.c.used_at.is_(None),
            credential_tokens.c.request_id.is_not(None),
        )
        .ext(distinct_on(credential_tokens.c.request_id))
        .order_by(credential_tokens.c.request_id, credential_tokens.c.expires_at.desc())
    )
    found = [WaitingRequest(r.request_id, r.department_id, r.expires_at) for r in rows]
    return sorted(found, key=lambda w: w.expires_at)


async def take_over(
    conn: AsyncConnection,
    account_id: uuid.UUID,
    *,
    email: str,
    name: str,
    password_hash: str | None,
    confirmed_at: datetime | None,
    now: datetime,
) -> None:
    """An unconfirmed account becomes the new request's: its address as now typed, the
    new name and password (None: none, a set-password link follows), confirmed or not,
    and every token it had retired."""
    await conn.execute(
        sa.update(accounts)
        .where(accounts.c.id == account_id)
        .values(
            email=email,
            name=name,
            password_hash=password_hash,
            password_changed_at=now if password_hash else None,
            email_confirmed_at=confirmed_at,
        )
    )
    await conn.execute(
        sa.update(account_addresses)
        .where(account_addresses.c.account_id == account_id, account_addresses.c.login.is_(True))
        .values(email=email)
    )
    await retire_tokens(conn, account_id, now)


async def confirm(conn: AsyncConnection, account_id: uuid.UUID, now: datetime) -> None:
    """The owner of the address stands behind the account from ``now``."""
    await conn.execute(
        sa.update(accounts).where(accounts.c.id == account_id).values(email_confirmed_at=now)
    )


async def lapsed_unconfirmed(conn: AsyncConnection, purpose: str, limit: int) -> list[Account]:
    """Unconfirmed accounts none of whose ``purpose`` tokens can still be used, locked
    (skipping those another transaction holds): the sweep deletes them."""
    live = (
        sa.select(credential_tokens.c.token_hash)
        .where(
            credential_tokens.c.account_id == accounts.c.id,
            credential_tokens.c.purpose == purpose,
            credential_tokens.c.used_at.is_(None),
            credential_tokens.c.expires_at > sa.func.now(),
        )
        .exists()
    )
    rows = await conn.execute(
        sa.select(accounts)
        .where(accounts.c.email_confirmed_at.is_(None), ~live)
        .order_by(accounts.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [a for a in (_account(r) for r in rows) if a is not None]


async def delete_accounts(conn: AsyncConnection, account_ids: list[uuid.UUID]) -> None:
    """Delete accounts and their tokens."""
    if not account_ids:
        return
    await conn.execute(
        sa.delete(credential_tokens).where(credential_tokens.c.account_id.in_(account_ids))
    )
    await conn.execute(
        sa.delete(account_addresses).where(account_addresses.c.account_id.in_(account_ids))
    )
    await conn.execute(sa.delete(accounts).where(accounts.c.id.in_(account_ids)))


async def unconfirmed_by_email(conn: AsyncConnection, normalised: list[str]) -> dict[str, Account]:
    """The unconfirmed accounts with these normalised emails, locked, by that email."""
    if not normalised:
        return {}
    rows = await conn.execute(
        sa.select(accounts)
        .where(accounts.c.email_normalised.in_(normalised), accounts.c.email_confirmed_at.is_(None))
        .order_by(accounts.c.email_normalised)
        .with_for_update()
    )
    return {r.email_normalised: a for r in rows if (a := _account(r)) is not None}


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
    inserted = {r.email_normalised: r.id for r in await conn.execute(stmt, rows)}
    if not inserted:
        return {}
    by_key = {str(r["email_normalised"]): r for r in rows}
    given = {
        r.email_normalised
        for r in await conn.execute(
            pg_insert(account_addresses)
            .on_conflict_do_nothing(index_elements=["email_normalised"])
            .returning(account_addresses.c.email_normalised),
            [
                {
                    "id": uuid.uuid4(),
                    "account_id": account_id,
                    "email": by_key[key]["email"],
                    "email_normalised": key,
                    "login": True,
                }
                for key, account_id in inserted.items()
            ],
        )
    }
    # An address linked to another account: that account has it, not a new one (made
    # a moment ago in this transaction, so nobody has heard of it).
    lost = [account_id for key, account_id in inserted.items() if key not in given]
    if lost:
        await conn.execute(sa.delete(accounts).where(accounts.c.id.in_(lost)))
    return {key: account_id for key, account_id in inserted.items() if key in given}


async def account_ids_by_email(
    conn: AsyncConnection, normalised: list[str]
) -> dict[str, uuid.UUID]:
    """``{email_normalised: id}`` of the accounts holding these normalised addresses
    (as login emails or linked ones)."""
    if not normalised:
        return {}
    rows = await conn.execute(
        sa.select(account_addresses.c.email_normalised, account_addresses.c.account_id).where(
            account_addresses.c.email_normalised.in_(normalised)
        )
    )
    return {r.email_normalised: r.account_id for r in rows}


async def insert_tokens(conn: AsyncConnection, rows: list[dict[str, object]]) -> None:
    """Store many tokens' hashes at once (``token_hash, account_id, purpose, expires_at``)."""
    if rows:
        await conn.execute(sa.insert(credential_tokens), rows)
