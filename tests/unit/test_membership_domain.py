"""Membership's rules and the request waiter."""

from __future__ import annotations

import asyncio
import uuid

from prodigy_users.membership.domain import (
    ROLES,
    account_exists_problem,
    can_manage_members,
    normalise_email,
)
from prodigy_users.membership.waiters import Waiters


def test_only_admins_manage_members() -> None:
    assert ROLES == ("admin", "officer", "member")
    assert can_manage_members("admin")
    assert not can_manage_members("officer")
    assert not can_manage_members("member")
    assert not can_manage_members(None)


def test_account_exists_problem_tells_the_admin_what_to_do() -> None:
    problem = account_exists_problem()
    assert problem["status"] == 409
    assert problem["type"].endswith("/account-exists")
    assert "invite" in problem["detail"]


def test_email_normalisation_matches_identity() -> None:
    from prodigy_users.identity.domain import normalise_email as identity_rule

    for email in ("A@B.org", " x.Y@z.COM "):
        assert normalise_email(email) == identity_rule(email)


async def test_waiter_wakes_on_notify_before_the_timeout() -> None:
    waiters = Waiters()
    op = uuid.uuid4()
    finished = False

    async def done() -> bool:
        return finished

    async def finish() -> None:
        nonlocal finished
        await asyncio.sleep(0.05)
        finished = True
        waiters.notify(op)

    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.create_task(finish())
    assert await waiters.wait(op, done, timeout=5.0, poll=10.0)
    await task
    assert loop.time() - started < 1.0


async def test_waiter_gives_up_at_the_timeout() -> None:
    async def never() -> bool:
        return False

    assert not await Waiters().wait(uuid.uuid4(), never, timeout=0.05, poll=0.01)
