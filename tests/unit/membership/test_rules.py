"""Membership's rules, its problem table and the request waiter."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from prodigy_users.contracts.email import email_key
from prodigy_users.membership import errors
from prodigy_users.membership.errors import PROBLEMS, AccountExists
from prodigy_users.membership.invitations.rules import (
    NAME_MAX,
    derive_token,
    domain_allowed,
    invitation_refusal,
    link_refusal,
    must_confirm,
    parse_pasted,
    token_hash,
)
from prodigy_users.membership.members.waiters import Waiters
from prodigy_users.membership.rules import (
    ROLES,
    acting_admin,
    can_manage_members,
    is_last_admin,
)
from prodigy_users.runtime.auth import OPERATOR_SUBJECT
from prodigy_users.runtime.errors import DomainError
from prodigy_users.runtime.problems import problem_of


def test_only_admins_manage_members() -> None:
    assert ROLES == ("admin", "officer", "member")
    assert can_manage_members("admin")
    assert not can_manage_members("officer")
    assert not can_manage_members("member")
    assert not can_manage_members(None)


def test_account_exists_problem_tells_the_admin_what_to_do() -> None:
    problem = problem_of(AccountExists(), PROBLEMS).body()
    assert problem["status"] == 409
    assert problem["type"].endswith("/account-exists")
    assert "invite" in problem["detail"]


def test_every_membership_error_has_a_problem_type() -> None:
    defined = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, DomainError) and cls.__module__ == errors.__name__
    ]
    assert len(defined) > 20
    # Abstract families (several subclasses, each with its own row) need no row of their own.
    families = {errors.InvitationUnusable, errors.FileRefused}
    missing = [cls.__name__ for cls in defined if cls not in PROBLEMS and cls not in families]
    assert missing == []


def test_events_name_the_admin_who_acted_and_nobody_for_operators_or_registrations() -> None:
    admin = uuid.uuid4()
    assert acting_admin(admin) == admin
    assert acting_admin(OPERATOR_SUBJECT) is None
    assert acting_admin(None) is None


def test_email_key_matches_identity() -> None:
    from prodigy_users.identity.domain import normalise_email as identity_rule

    for email in ("A@B.org", " x.Y@z.COM "):
        assert email_key(email) == identity_rule(email)


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


def test_pasted_addresses_from_spreadsheets_and_mail_clients() -> None:
    pasted = (
        "Ana Lima <ana@Example.org>, bo@x.org; BO@X.ORG\ncarl@y.org dan@z.org\t"
        '"Lee, Eve" <eve@e.org>, not-an-address,,  ;\r\n'
    )
    parsed = parse_pasted(pasted)
    assert [p.email for p in parsed if p.error is None] == [
        "ana@example.org",
        "bo@x.org",
        "carl@y.org",
        "dan@z.org",
        "eve@e.org",
    ]
    [bad] = [p for p in parsed if p.error is not None]
    assert bad.email == "not-an-address"
    assert bad.error is not None and "@" in bad.error
    assert [p.email for p in parse_pasted(["a@b.org", "A@B.org c@d.org"])] == ["a@b.org", "c@d.org"]
    assert parse_pasted("  ,; \n") == []


def test_link_tokens_are_derived_secret_and_distinct() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    secret = b"s" * 32
    token = derive_token(secret, "invitation", one)
    assert token == derive_token(secret, "invitation", one)
    assert token != derive_token(secret, "invitation", two)
    assert token != derive_token(secret, "link", one)
    assert token != derive_token(b"t" * 32, "invitation", one)
    assert len(token) >= 43  # 256 bits
    assert token_hash(token) != token


def test_invitation_refusals_and_domains_and_last_admin() -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    later, earlier = now + timedelta(days=1), now - timedelta(seconds=1)
    assert invitation_refusal("pending", later, now) is None
    assert invitation_refusal("pending", earlier, now) == "expired"
    assert invitation_refusal("expired", later, now) == "expired"
    assert invitation_refusal("accepted", later, now) == "used"
    assert invitation_refusal("revoked", later, now) == "revoked"
    assert domain_allowed("a@x.org", [])
    assert domain_allowed("a@X.org", ["x.org"])
    assert domain_allowed("a@x.org", ["@x.org"])
    assert not domain_allowed("a@evil.org", ["x.org"])
    assert is_last_admin("admin", 1)
    assert not is_last_admin("admin", 2)
    assert not is_last_admin("member", 1)


def test_registration_link_refusals() -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)

    def refusal(email: str | None, *, enabled: bool = True, expires: datetime | None = None) -> Any:
        return link_refusal(
            enabled=enabled, expires_at=expires, allowed_domains=["x.org"], email=email, now=now
        )

    assert refusal("a@x.org") is None
    assert refusal(None) is None  # the address is not known yet: the domain is checked later
    assert refusal("a@evil.org") == "domain"
    assert refusal("a@x.org", expires=now) == "expired"
    assert refusal("a@x.org", enabled=False) == "invalid"


def test_registrants_confirm_their_address_unless_it_is_the_invited_one() -> None:
    invited = email_key("Ana.Lima@Example.org")
    assert not must_confirm("ana.lima@example.org", invited)
    assert not must_confirm(" ANA.LIMA@EXAMPLE.ORG ", invited)
    assert must_confirm("ana.lima@elsewhere.org", invited)
    # A registration link invites no address: everyone proves theirs.
    assert must_confirm("ana.lima@example.org", None)


def test_a_pasted_name_is_kept_with_its_address() -> None:
    parsed = parse_pasted(
        'Sam Two <sam@x.org>, bo@x.org; "Lee, Eve"  <eve@e.org>\n'
        "  Ana   Lima   <ana@x.org> <dan@z.org> BO@X.ORG"
    )
    assert [(p.email, p.name) for p in parsed] == [
        ("sam@x.org", "Sam Two"),
        ("bo@x.org", None),
        ("eve@e.org", "Lee, Eve"),
        ("ana@x.org", "Ana Lima"),  # spaces folded
        ("dan@z.org", None),  # angle brackets alone: no name
    ]
    # The first appearance of an address wins, named or not.
    [first] = parse_pasted("bo@x.org, Bo Later <BO@x.org>")
    assert (first.email, first.name) == ("bo@x.org", None)
    # A very long name is cut, never refused.
    [long] = parse_pasted("x" * 500 + " <long@x.org>")
    assert long.name is not None and len(long.name) == NAME_MAX


async def test_a_move_that_is_not_the_end_wakes_the_waiter_once() -> None:
    # Awaiting confirmation moves the operation without finishing it: the waiter looks
    # once more, then waits again (not a busy loop of reads until the timeout).
    waiters = Waiters()
    op = uuid.uuid4()
    looks = 0

    async def done() -> bool:
        nonlocal looks
        looks += 1
        if looks == 1:
            waiters.notify(op)
        return False

    assert not await waiters.wait(op, done, timeout=0.3, poll=10.0)
    assert looks == 3  # at first, when woken, at the timeout
