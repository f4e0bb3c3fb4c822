"""The cut-off store on a real PostgreSQL: a consumer keeps the later cut-off whatever
order the events come in (and a redelivery changes nothing), and the verifier's
question reads it, also when it keeps its answers in memory while listening."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.runtime.revocation_store import CutOffs, cut_off, not_before
from tests.integration.databases import own_database
from tests.support import wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    # Reporting's migrations: a service that only learns cut-offs by event.
    async with own_database("reporting") as engine:
        yield engine


async def test_the_later_cut_off_is_kept_in_any_order(engine: AsyncEngine) -> None:
    account = uuid.uuid4()
    first = datetime(2026, 12, 5, 7, 0, 0, 123_456, tzinfo=UTC)
    later = first + timedelta(minutes=5)
    async with engine.begin() as conn:
        assert await not_before(conn, account) is None
        await cut_off(conn, account, later)
        await cut_off(conn, account, first)  # an older event read afterwards
        await cut_off(conn, account, later)  # a redelivery
        assert await not_before(conn, account) == later


async def test_the_verifier_refuses_only_tokens_issued_before_the_cut_off(
    engine: AsyncEngine,
) -> None:
    account, other = uuid.uuid4(), uuid.uuid4()
    cut = datetime(2026, 12, 5, 7, 30, 0, 500_000, tzinfo=UTC)
    async with engine.begin() as conn:
        await cut_off(conn, account, cut)
    cutoffs = CutOffs(engine)
    # Microseconds survive the round trip through the database.
    assert await cutoffs.revoked(account, cut.timestamp() - 0.000_001)
    assert not await cutoffs.revoked(account, cut.timestamp())
    assert await cutoffs.revoked(account, cut.replace(microsecond=0).timestamp() + 0.2)
    assert not await cutoffs.revoked(account, cut.replace(microsecond=0).timestamp() + 0.7)
    assert not await cutoffs.revoked(other, cut.timestamp() - 3600)


async def test_a_kept_answer_gives_way_to_a_new_cut_off_at_once(engine: AsyncEngine) -> None:
    account = uuid.uuid4()
    cutoffs = CutOffs(engine)
    listening = asyncio.create_task(cutoffs.listen())
    try:

        async def heard() -> bool:
            return cutoffs.is_listening

        await wait_for(heard, timeout=10, interval=0.02, what="the channel to be heard")
        issued = datetime.now(UTC).timestamp()
        assert not await cutoffs.revoked(account, issued)  # read, then kept
        async with engine.begin() as conn:  # not through this CutOffs: another process's
            await cut_off(conn, account, datetime.now(UTC) + timedelta(seconds=1))

        async def refused() -> bool:
            return await cutoffs.revoked(account, issued)

        # Kept for ever without the announcement: this would time out.
        await wait_for(refused, timeout=5, interval=0.02, what="the cut-off to be heard")
        assert not await cutoffs.revoked(uuid.uuid4(), issued)
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
    assert not cutoffs.is_listening
