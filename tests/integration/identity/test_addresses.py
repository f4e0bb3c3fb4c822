"""One address, one account, across login emails and linked addresses: the store's
rules on a real PostgreSQL (``account_addresses`` under one unique index)."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.identity import store


def _email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"


async def _account(engine: AsyncEngine, email: str) -> uuid.UUID:
    account_id = uuid.uuid4()
    async with engine.begin() as conn:
        assert await store.insert_account(conn, account_id, email, email.lower(), "Tina Cruz")
    return account_id


async def test_a_linked_address_cannot_become_another_accounts_login_email(
    engine: AsyncEngine,
) -> None:
    tina = await _account(engine, _email("tina.home"))
    work = _email("tina.work")
    async with engine.begin() as conn:
        linked = await store.link_address(conn, tina, work, work)
        assert linked is not None and not linked.login
        # A new account with it, one by one or in a batch: refused, nothing left behind.
        assert not await store.insert_account(conn, uuid.uuid4(), work, work, "Other")
        rows = [{"id": uuid.uuid4(), "email": work, "email_normalised": work, "name": "Other"}]
        assert await store.insert_accounts(conn, rows) == {}
        assert await store.account_ids_by_email(conn, [work]) == {work: tina}
        holder = await store.account_holding(conn, work)
        assert holder is not None and holder.id == tina
        assert await store.account_by_email(conn, work) is None  # signing in: login only
        other = await _insert_in(conn, _email("other"))
        assert not await store.set_login_email(conn, other, work, work)
        assert await store.address_taken(conn, work, by_other_than=other)
        assert not await store.address_taken(conn, work, by_other_than=tina)


async def _insert_in(conn: AsyncConnection, email: str) -> uuid.UUID:
    account_id = uuid.uuid4()
    assert await store.insert_account(conn, account_id, email, email, "Other")
    return account_id


async def test_two_accounts_linking_one_address_at_once_one_wins(engine: AsyncEngine) -> None:
    first, second = await _account(engine, _email("a")), await _account(engine, _email("b"))
    shared = _email("shared")

    async def link(account_id: uuid.UUID) -> bool:
        async with engine.begin() as conn:
            return await store.link_address(conn, account_id, shared, shared) is not None

    results = await asyncio.gather(link(first), link(second))
    assert sorted(results) == [False, True]
    async with engine.connect() as conn:
        holder = await store.account_holding(conn, shared)
    assert holder is not None and holder.id == (first if results[0] else second)


async def test_the_login_email_moves_onto_an_own_linked_address_and_unlinking_frees_it(
    engine: AsyncEngine,
) -> None:
    home, work = _email("home"), _email("work")
    tina = await _account(engine, home)
    async with engine.begin() as conn:
        linked = await store.link_address(conn, tina, work, work)
        assert linked is not None
        assert await store.set_login_email(conn, tina, work, work)
        addresses = await store.addresses_of(conn, tina)
        assert [(a.email, a.login) for a in addresses] == [(work, True)]
        # The login email is never unlinked; a linked one is, and is free again.
        assert await store.unlink_address(conn, tina, addresses[0].id) is None
        again = await store.link_address(conn, tina, home, home)
        assert again is not None
        assert (await store.unlink_address(conn, tina, again.id)) is not None
        assert not await store.address_taken(conn, home)
