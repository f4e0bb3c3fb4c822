"""Invitations: a pasted list, the sealed link, reminders, revoking, the expiry sweep,
and accepting (signed in, registering, or two people at once)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.identity import AccountCreated, CreateAccount
from prodigy_users.contracts.membership import (
    InvitationAccepted,
    InvitationExpired,
    InvitationLinkIssued,
    InvitationReminded,
    InvitationRevoked,
    MemberAdded,
    MemberInvited,
    SignInToJoinRequested,
    WelcomeRequested,
)
from prodigy_users.membership import errors
from prodigy_users.membership.invitations.entry import Registered, Registration
from prodigy_users.membership.invitations.registrations import (
    MAX_SIGN_IN_NOTICES,
    SIGN_IN_NOTICE_WINDOW,
)
from prodigy_users.membership.invitations.rules import token_hash
from prodigy_users.membership.members.joining import Joined
from prodigy_users.membership.members.store import refused_registrations
from prodigy_users.membership.tables import invitations, memberships
from prodigy_users.runtime.auth import Principal
from prodigy_users.runtime.errors import InvalidInput
from prodigy_users.runtime.keys import unseal
from prodigy_users.runtime.problems import PROBLEM_BASE
from tests.support import PASSWORD, random_email

from .conftest import Membership, awaiting, created, lapsed, rejected

pytestmark = pytest.mark.timeout(60)


async def invitation(m: Membership, invitation_id: uuid.UUID) -> sa.Row[object]:
    [row] = await m.rows(sa.select(invitations).where(invitations.c.id == invitation_id))
    return row


async def backdate(m: Membership, invitation_id: uuid.UUID, **columns: timedelta) -> None:
    """Move the invitation's times into the past (``last_sent_at=timedelta(hours=2)``)."""
    async with m.engine.begin() as conn:
        await conn.execute(
            sa.update(invitations)
            .where(invitations.c.id == invitation_id)
            .values({c: datetime.now(UTC) - ago for c, ago in columns.items()})
        )


async def signed_in(m: Membership, email: str, name: str = "Sam Signed") -> Principal:
    """Someone with an account (identity told membership of it), signed in."""
    return Principal(account_id=await m.announce(email, name))


async def test_a_pasted_list_gives_each_distinct_address_one_outcome(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    member_email = await m.email_of(dept, await m.member(dept))
    earlier = random_email("earlier")
    earlier_id, _ = await m.invite(dept, earlier)
    new = random_email("new")
    pasted = (
        f"Nia New <{new}>, not-an-email; {new.upper()}\n"
        f"{member_email.capitalize()}\t{earlier}, {new}"
    )

    results = await m.use_cases.invitations.invite(dept.id, pasted, "officer", dept.admin)

    assert [(r.email, r.outcome) for r in results] == [
        (new, "invited"),
        ("not-an-email", "invalid"),
        (member_email.capitalize(), "already_member"),  # as pasted: case is kept
        (earlier, "already_invited"),
    ]
    invited, invalid, _, again = results
    assert invalid.reason and invalid.invitation_id is None
    assert again.invitation_id == earlier_id

    # One invitation for the new address, none more for the earlier one (sent just now).
    invited_events = await m.events(dept.id, MemberInvited)
    assert [(str(e.email), e.invitation_id) for e in invited_events] == [
        (earlier, earlier_id),
        (new, invited.invitation_id),
    ]
    assert (invited_events[1].role, invited_events[1].invited_by) == ("officer", dept.admin_id)
    # The name pasted with the address travels with it; the earlier one had none.
    assert [e.name for e in invited_events] == [None, "Nia New"]
    assert await m.events(dept.id, InvitationReminded) == []
    [link] = [
        e
        for e in await m.events(dept.id, InvitationLinkIssued)
        if e.invitation_id == invited.invitation_id
    ]
    assert (link.role, link.reminder, link.invited_by_name) == ("officer", False, "Ada Admin")
    assert link.name == "Nia New"
    [listed] = [
        r
        for r in await m.use_cases.invitations.listing(dept.id, "pending")
        if r.id == link.invitation_id
    ]
    assert listed.name == "Nia New"

    # The token travels sealed; it opens to the token whose hash is all the database keeps.
    assert invited.invitation_id is not None
    token = await m.token_of(dept, invited.invitation_id)
    assert token not in link.sealed_token and token not in await m.outbox_text(dept.id)
    row = await invitation(m, invited.invitation_id)
    assert row.token_hash == token_hash(token)
    assert (row.status, row.role, row.email, row.invited_by) == (
        "pending",
        "officer",
        new,
        dept.admin_id,
    )
    assert row.expires_at == link.expires_at
    assert row.expires_at - row.created_at == timedelta(seconds=m.settings.invitation_ttl_s)

    # Nothing to invite, or more than one request may hold: refused, nothing written.
    before = await m.event_types(dept.id)
    for refused in ("", " ;, ", [random_email() for _ in range(501)]):
        with pytest.raises(InvalidInput):
            await m.use_cases.invitations.invite(dept.id, refused, None, dept.admin)
    assert await m.event_types(dept.id) == before


async def test_a_department_sets_how_long_its_invitations_last(membership: Membership) -> None:
    m = membership
    dept = await m.department()
    settings = await m.use_cases.departments.update(dept.id, invitation_ttl_s=3600)
    assert settings.invitation_ttl_s == 3600
    invitation_id, _ = await m.invite(dept, random_email())
    row = await invitation(m, invitation_id)
    assert row.expires_at - row.created_at == timedelta(hours=1)


async def test_a_reminder_resends_the_same_link_at_most_once_an_hour(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    email = random_email("remind")
    invitation_id, token = await m.invite(dept, email)
    reminders = m.use_cases.invitations

    with pytest.raises(errors.ReminderTooSoon) as soon:
        await reminders.remind(dept.id, invitation_id, dept.admin)
    assert soon.value.retry_after is not None
    assert m.settings.reminder_interval_s - 60 < soon.value.retry_after
    assert soon.value.retry_after <= m.settings.reminder_interval_s + 1
    assert await m.events(dept.id, InvitationReminded) == []

    await backdate(m, invitation_id, last_sent_at=timedelta(hours=2))
    await reminders.remind(dept.id, invitation_id, dept.admin)
    [reminded] = await m.events(dept.id, InvitationReminded)
    assert (reminded.invitation_id, reminded.reminded_by) == (invitation_id, dept.admin_id)
    issued = await m.events(dept.id, InvitationLinkIssued)
    assert [e.reminder for e in issued] == [False, True]
    assert await m.token_of(dept, invitation_id) == token, "the same link, sent again"
    assert (await invitation(m, invitation_id)).last_sent_at > datetime.now(UTC) - timedelta(
        minutes=1
    )

    with pytest.raises(errors.ReminderTooSoon):
        await reminders.remind(dept.id, invitation_id, dept.admin)
    # Pasting the address again an hour later reminds too (once).
    await backdate(m, invitation_id, last_sent_at=timedelta(hours=2))
    [again] = await reminders.invite(dept.id, email, None, dept.admin)
    assert (again.outcome, again.invitation_id) == ("already_invited", invitation_id)
    assert len(await m.events(dept.id, InvitationReminded)) == 2

    with pytest.raises(errors.InvitationNotFound):
        await reminders.remind(dept.id, uuid.uuid4(), dept.admin)
    other = await m.department()
    with pytest.raises(errors.InvitationNotFound):
        await reminders.remind(other.id, invitation_id, other.admin)


async def test_a_revoked_invitation_stops_working_and_never_blocks_a_new_one(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    email = random_email("revoked")
    invitation_id, token = await m.invite(dept, email)
    await m.use_cases.invitations.revoke(dept.id, invitation_id, dept.admin)

    row = await invitation(m, invitation_id)
    assert row.status == "revoked" and row.closed_at is not None
    [revoked] = await m.events(dept.id, InvitationRevoked)
    assert (revoked.invitation_id, revoked.revoked_by, str(revoked.email)) == (
        invitation_id,
        dept.admin_id,
        email,
    )
    person = await signed_in(m, random_email())
    with pytest.raises(errors.InvitationRevoked):
        await m.use_cases.entry.accept(token, person, None)
    with pytest.raises(errors.InvitationRevoked):
        await m.use_cases.entry.accept(
            token, None, Registration("Reg Revoked", random_email(), PASSWORD)
        )
    for again in (
        m.use_cases.invitations.revoke(dept.id, invitation_id, dept.admin),
        m.use_cases.invitations.remind(dept.id, invitation_id, dept.admin),
    ):
        with pytest.raises(errors.InvitationNotPending, match="This invitation is revoked"):
            await again
    assert len(await m.events(dept.id, InvitationRevoked)) == 1

    new_id, new_token = await m.invite(dept, email)
    assert new_id != invitation_id and new_token != token


async def test_the_sweep_expires_lapsed_invitations_and_says_so(membership: Membership) -> None:
    m = membership
    dept = await m.department()
    lapsed_id, token = await m.invite(dept, random_email("lapsed"))
    current_id, _ = await m.invite(dept, random_email("current"))
    await backdate(m, lapsed_id, expires_at=timedelta(minutes=1))

    # Lapsed before the sweep: already refused, and listed as expired.
    person = await signed_in(m, random_email())
    with pytest.raises(errors.InvitationExpired):
        await m.use_cases.entry.accept(token, person, None)
    listed = {
        r.id: r.effective_status for r in await m.use_cases.invitations.listing(dept.id, None)
    }
    assert listed == {lapsed_id: "expired", current_id: "pending"}
    assert [r.id for r in await m.use_cases.invitations.listing(dept.id, "expired")] == [lapsed_id]
    assert await m.events(dept.id, InvitationExpired) == []

    assert await m.use_cases.invitations.sweep() is True
    [expired] = await m.events(dept.id, InvitationExpired)
    assert expired.invitation_id == lapsed_id
    row = await invitation(m, lapsed_id)
    assert row.status == "expired" and row.closed_at is not None
    assert (await invitation(m, current_id)).status == "pending"
    with pytest.raises(errors.InvitationExpired):
        await m.use_cases.entry.accept(token, person, None)
    with pytest.raises(errors.InvitationNotPending, match="This invitation is expired"):
        await m.use_cases.invitations.revoke(dept.id, lapsed_id, dept.admin)

    assert await m.use_cases.invitations.sweep() is False, "nothing lapsed any more"
    assert len(await m.events(dept.id, InvitationExpired)) == 1


async def test_pasting_an_address_whose_invitation_lapsed_invites_it_anew(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    email = random_email("again")
    lapsed_id, _ = await m.invite(dept, email)
    await backdate(m, lapsed_id, expires_at=timedelta(minutes=1))

    [result] = await m.use_cases.invitations.invite(dept.id, email, None, dept.admin)

    assert result.outcome == "invited" and result.invitation_id != lapsed_id
    assert (await invitation(m, lapsed_id)).status == "expired"
    assert [e.invitation_id for e in await m.events(dept.id, InvitationExpired)] == [lapsed_id]


async def test_accepting_signed_in_joins_that_account_and_marks_the_invitation_accepted(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department(name="Ogdenville Rescue")
    invited_email = random_email("invited")
    invitation_id, token = await m.invite(dept, invited_email, "officer")
    # The account goes by another address than the invited one: it joins all the same.
    account_email = random_email("account")
    person = await signed_in(m, account_email, "Ivy Invited")

    joined = await m.use_cases.entry.accept(token, person, None)

    assert isinstance(joined, Joined)
    assert (joined.department_id, joined.account_id, joined.role, joined.status) == (
        dept.id,
        person.account_id,
        "officer",
        "joined",
    )
    row = await invitation(m, invitation_id)
    assert (row.status, row.account_id) == ("accepted", person.account_id)
    assert row.accepted_at is not None and row.closed_at is not None
    member = await m.use_cases.members.current(dept.id, person.account_id)
    assert (member.name, member.email, member.role) == ("Ivy Invited", account_email, "officer")
    assert member.invited_email == invited_email

    [added] = [e for e in await m.events(dept.id, MemberAdded) if e.via == "invitation"]
    assert (added.account_id, added.added_by, str(added.email)) == (
        person.account_id,
        dept.admin_id,
        account_email,
    )
    [accepted] = await m.events(dept.id, InvitationAccepted)
    assert (accepted.invitation_id, accepted.account_id, str(accepted.email)) == (
        invitation_id,
        person.account_id,
        invited_email,
    )
    [welcome] = await m.events(dept.id, WelcomeRequested)
    assert (welcome.account_id, str(welcome.email)) == (person.account_id, account_email)

    # Used: by anyone, signed in or registering.
    with pytest.raises(errors.InvitationUsed):
        await m.use_cases.entry.accept(token, person, None)
    with pytest.raises(errors.InvitationUsed):
        await m.use_cases.entry.accept(token, await signed_in(m, random_email()), None)
    with pytest.raises(errors.InvitationUsed):
        await m.use_cases.entry.accept(
            token, None, Registration("Late Comer", random_email(), PASSWORD)
        )
    with pytest.raises(errors.InvitationNotPending, match="This invitation is accepted"):
        await m.use_cases.invitations.revoke(dept.id, invitation_id, dept.admin)

    # A member with another valid link is told so, and the link stays usable.
    second_id, second_token = await m.invite(dept, random_email())
    with pytest.raises(errors.AlreadyMember, match="already a member of Ogdenville Rescue"):
        await m.use_cases.entry.accept(second_token, person, None)
    assert (await invitation(m, second_id)).status == "pending"


async def test_an_account_membership_has_not_heard_of_yet_is_asked_to_try_again(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    invitation_id, token = await m.invite(dept, random_email("early"))
    newcomer = Principal(account_id=uuid.uuid4())  # identity's event is still on its way

    with pytest.raises(errors.AccountNotReady) as refused:
        await m.use_cases.entry.accept(token, newcomer, None)

    assert refused.value.retry_after == 2
    assert await m.use_cases.members.current(dept.id, newcomer.account_id) is None
    assert (await invitation(m, invitation_id)).status == "pending"
    joins = [e for e in await m.events(dept.id, MemberAdded) if e.via == "invitation"]
    assert joins == [], "no stand-in joined"
    # Once identity's event is in, the same account accepts with its own address.
    email = random_email("arrived")
    await m.deliver(AccountCreated(account_id=newcomer.account_id, email=email, name="Ari Ved"))
    joined = await m.use_cases.entry.accept(token, newcomer, None)
    assert isinstance(joined, Joined) and joined.status == "joined"
    [added] = [e for e in await m.events(dept.id, MemberAdded) if e.via == "invitation"]
    assert (str(added.email), added.name) == (email, "Ari Ved")


async def test_unknown_tokens_are_not_valid(membership: Membership) -> None:
    m = membership
    person = await signed_in(m, random_email())
    for token in ("", "not-a-token", token_hash("nothing")):
        with pytest.raises(errors.InvitationInvalid):
            await m.use_cases.entry.accept(token, person, None)
        with pytest.raises(errors.InvitationInvalid):
            await m.use_cases.entry.accept(
                token, None, Registration("No One", random_email(), PASSWORD)
            )


async def test_two_accounts_accepting_one_invitation_at_once_one_joins(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    invitation_id, token = await m.invite(dept, random_email("contested"))
    first = await signed_in(m, random_email("first"))
    second = await signed_in(m, random_email("second"))

    outcomes = await asyncio.gather(
        m.use_cases.entry.accept(token, first, None),
        m.use_cases.entry.accept(token, second, None),
        return_exceptions=True,
    )

    used = [o for o in outcomes if isinstance(o, errors.InvitationUsed)]
    joined = [o for o in outcomes if isinstance(o, Joined)]
    assert len(used) == 1 and len(joined) == 1, outcomes
    winner = joined[0].account_id
    members = await m.rows(
        sa.select(memberships.c.account_id).where(
            memberships.c.department_id == dept.id,
            memberships.c.account_id.in_([first.account_id, second.account_id]),
        )
    )
    assert [r.account_id for r in members] == [winner]
    assert (await invitation(m, invitation_id)).account_id == winner
    assert [e.account_id for e in await m.events(dept.id, InvitationAccepted)] == [winner]


async def test_registering_with_the_invited_address_joins_once_identity_makes_the_account(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department("Invited Station")
    invited = random_email("inv")
    invitation_id, token = await m.invite(dept, invited, "officer")

    # Typed in another case: the same address, proved by opening the link emailed to it.
    registered = await m.use_cases.entry.accept(
        token, None, Registration("Reg Istered", invited.upper(), PASSWORD)
    )

    assert isinstance(registered, Registered) and not registered.confirm_email
    op = await m.use_cases.operations.get(registered.operation_id)
    assert op is not None
    assert (op.status, op.kind, op.requested_by) == ("pending", "register", None)
    [command] = await m.commands(CreateAccount, request_id=str(op.id))
    assert command.confirm_email is False and command.request_id == op.id
    assert command.password_hash is None, "the hash travels sealed to identity, never in the clear"
    assert command.sealed_password_hash is not None
    assert m.unsealed_hash(command.sealed_password_hash).startswith("$argon2id$")
    assert PASSWORD not in await m.outbox_text(dept.id), "never the password itself"
    row = await invitation(m, invitation_id)
    assert (row.status, row.claimed_by) == ("pending", op.id), "claimed, not yet accepted"

    account_id = uuid.uuid4()
    await m.deliver(created(command, account_id))

    done = await m.use_cases.operations.get(op.id)
    assert done is not None and done.status == "succeeded"
    assert done.result == {
        "account_id": str(account_id),
        "status": "joined",
        "role": "officer",
        "department_name": "Invited Station",
    }
    row = await invitation(m, invitation_id)
    assert (row.status, row.account_id, row.claimed_by) == ("accepted", account_id, None)
    [welcome] = await m.events(dept.id, WelcomeRequested)
    assert welcome.account_id == account_id


async def test_registering_with_another_address_waits_for_its_confirmation(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    invitation_id, token = await m.invite(dept, random_email("inv"), "officer")
    email = random_email("other-address")

    registered = await m.use_cases.entry.accept(
        token, None, Registration("Other Address", email, PASSWORD)
    )

    assert isinstance(registered, Registered) and registered.confirm_email
    [command] = await m.commands(CreateAccount, email=email)
    assert command.confirm_email is True
    assert (await invitation(m, invitation_id)).claimed_by == registered.operation_id
    # While it waits, nobody else registers through the invitation.
    with pytest.raises(errors.InvitationUsed):
        await m.use_cases.entry.accept(token, None, Registration("Too", random_email(), PASSWORD))

    await m.deliver(awaiting(command))

    op = await m.use_cases.operations.get(registered.operation_id)
    assert op is not None and op.status == "awaiting_confirmation"
    joins = [e for e in await m.events(dept.id, MemberAdded) if e.via == "invitation"]
    assert joins == [], "no membership before the address is confirmed"
    assert (await invitation(m, invitation_id)).status == "pending"

    # The person used the emailed link: identity announces the account, they join.
    account_id = uuid.uuid4()
    await m.deliver(created(command, account_id))
    done = await m.use_cases.operations.get(registered.operation_id)
    assert done is not None and done.status == "succeeded", done
    row = await invitation(m, invitation_id)
    assert (row.status, row.account_id, row.claimed_by) == ("accepted", account_id, None)
    member = await m.use_cases.members.current(dept.id, account_id)
    assert (member.email, member.role) == (email, "officer")
    # Identity's answers travel on different keys: a late "awaiting" changes nothing.
    await m.deliver(awaiting(command))
    again = await m.use_cases.operations.get(registered.operation_id)
    assert again is not None and again.status == "succeeded"


async def test_concurrent_registrations_through_one_invitation_ask_for_one_account(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    invitation_id, token = await m.invite(dept, random_email("contested"))
    emails = [random_email(f"racer{n}") for n in range(10)]

    outcomes = await asyncio.gather(
        *(
            m.use_cases.entry.accept(token, None, Registration("Racer", e, PASSWORD))
            for e in emails
        ),
        return_exceptions=True,
    )

    won = [o for o in outcomes if isinstance(o, Registered)]
    used = [o for o in outcomes if isinstance(o, errors.InvitationUsed)]
    assert len(won) == 1 and len(used) == 9, outcomes
    asked = [c for e in emails for c in await m.commands(CreateAccount, email=e)]
    assert [c.request_id for c in asked] == [won[0].operation_id], "the losers asked nothing"
    assert (await invitation(m, invitation_id)).claimed_by == won[0].operation_id


async def test_a_signed_in_accept_goes_before_a_pending_registration(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    invitation_id, token = await m.invite(dept, random_email("inv"))
    email = random_email("slow")
    registered = await m.use_cases.entry.accept(token, None, Registration("Slow", email, PASSWORD))
    assert isinstance(registered, Registered)
    [command] = await m.commands(CreateAccount, email=email)
    await m.deliver(awaiting(command))
    person = await signed_in(m, random_email("quick"))

    joined = await m.use_cases.entry.accept(token, person, None)

    assert isinstance(joined, Joined) and joined.account_id == person.account_id
    row = await invitation(m, invitation_id)
    assert (row.status, row.account_id, row.claimed_by) == ("accepted", person.account_id, None)
    # The registration's address is confirmed later: it finds the invitation used.
    late_account = uuid.uuid4()
    await m.deliver(created(command, late_account))
    op = await m.use_cases.operations.get(registered.operation_id)
    assert op is not None and op.status == "failed"
    assert op.problem is not None and op.problem["type"].endswith("/invitation-used")
    assert await m.use_cases.members.current(dept.id, late_account) is None


async def test_a_lapsed_confirmation_releases_the_invitation(membership: Membership) -> None:
    m = membership
    dept = await m.department()
    invitation_id, token = await m.invite(dept, random_email("inv"))
    email = random_email("never-confirms")
    first = await m.use_cases.entry.accept(token, None, Registration("Never", email, PASSWORD))
    assert isinstance(first, Registered)
    [command] = await m.commands(CreateAccount, email=email)
    await m.deliver(awaiting(command))

    await m.deliver(lapsed(command, "expired"))

    op = await m.use_cases.operations.get(first.operation_id)
    assert op is not None and op.status == "failed"
    assert op.problem is not None and op.problem["type"].endswith("/registration-lapsed")
    assert op.problem["status"] == 410
    row = await invitation(m, invitation_id)
    assert (row.status, row.claimed_by) == ("pending", None)
    # Free again: the next registration claims it.
    second = await m.use_cases.entry.accept(
        token, None, Registration("Next", random_email("next"), PASSWORD)
    )
    assert isinstance(second, Registered)
    assert (await invitation(m, invitation_id)).claimed_by == second.operation_id
    # A superseded registration says so.
    [next_command] = await m.commands(CreateAccount, request_id=str(second.operation_id))
    await m.deliver(lapsed(next_command, "superseded"))
    op = await m.use_cases.operations.get(second.operation_id)
    assert op is not None and op.problem is not None
    assert op.problem["detail"] == errors.REGISTRATION_SUPERSEDED


async def test_registering_with_an_address_that_has_an_account_tells_its_owner(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    invitation_id, token = await m.invite(dept, random_email())
    email = random_email("has-account")
    registered = await m.use_cases.entry.accept(
        token, None, Registration("Has Account", email, PASSWORD)
    )
    assert isinstance(registered, Registered) and registered.confirm_email
    [command] = await m.commands(CreateAccount, email=email)

    await m.deliver(rejected(command, existing_account_id=uuid.uuid4()))

    failed = await m.use_cases.operations.get(registered.operation_id)
    assert failed is not None and failed.status == "failed"
    assert failed.problem == {
        "type": PROBLEM_BASE + "account-exists",
        "title": "Account already exists",
        "status": 409,
        "detail": errors.ACCOUNT_EXISTS_REGISTERING,
    }
    row = await invitation(m, invitation_id)
    assert (row.status, row.claimed_by) == ("pending", None), "still theirs to accept"
    assert await m.events(dept.id, InvitationAccepted) == []
    # The owner of the address is told to sign in, with the invitation's own link.
    [notice] = await m.events(dept.id, SignInToJoinRequested)
    assert (str(notice.email), notice.via) == (email, "invitation")
    assert unseal(m.seal_key, notice.sealed_token) == token
    assert notice.expires_at == row.expires_at


async def test_sign_in_to_join_emails_to_one_address_are_capped(membership: Membership) -> None:
    m = membership
    dept = await m.department()
    email = random_email("pestered")
    for _ in range(MAX_SIGN_IN_NOTICES + 2):
        _, token = await m.invite(dept, random_email("inv"))
        registered = await m.use_cases.entry.accept(token, None, Registration("X", email, PASSWORD))
        assert isinstance(registered, Registered)
        [command] = await m.commands(CreateAccount, request_id=str(registered.operation_id))
        await m.deliver(rejected(command, existing_account_id=uuid.uuid4()))

    notices = [n for n in await m.events(dept.id, SignInToJoinRequested) if str(n.email) == email]
    assert len(notices) == MAX_SIGN_IN_NOTICES


async def test_the_cap_reads_the_address_s_refusals_through_their_index(
    membership: Membership,
) -> None:
    # Every refused registration counts its address's refusals: a scan of the whole
    # operations table (every request ever made) on each one would grow without end.
    email = email_key(random_email("capped"))
    query = refused_registrations(email, "account-exists", SIGN_IN_NOTICE_WINDOW)
    async with membership.engine.connect() as conn:
        await conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        compiled = query.compile(conn.engine, compile_kwargs={"literal_binds": True})
        plan = (await conn.execute(sa.text(f"EXPLAIN {compiled}"))).scalars().all()
    assert any("ix_operations_failed_registrations" in line for line in plan), plan
