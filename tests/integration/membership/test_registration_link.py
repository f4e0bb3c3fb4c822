"""The department's registration link: joining with it signed in or registering, and the
link rotated, switched off, expired or limited to some email domains."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from prodigy_users.contracts.identity import AccountCreated, CreateAccount
from prodigy_users.contracts.membership import (
    MemberAdded,
    RegistrationLinkChanged,
    SignInToJoinRequested,
    WelcomeRequested,
)
from prodigy_users.membership import errors
from prodigy_users.membership.invitations.entry import Registered, Registration
from prodigy_users.membership.members.joining import Joined
from prodigy_users.membership.tables import operations
from prodigy_users.runtime.auth import Principal
from prodigy_users.runtime.errors import InvalidInput, WeakPassword
from prodigy_users.runtime.keys import unseal
from tests.support import PASSWORD, random_email

from .conftest import Department, Membership, awaiting, created, rejected

pytestmark = pytest.mark.timeout(60)


async def rotate(
    m: Membership,
    dept: Department,
    *,
    expires_at: datetime | None = None,
    allowed_domains: list[str] | None = None,
) -> str:
    """A new link for the department (role officer); its token, as its URL carries it."""
    row = await m.use_cases.links.rotate(dept.id, "officer", expires_at, allowed_domains or [])
    url = m.use_cases.links.url(row.link_id)
    prefix = f"{m.settings.app_base_url}/join/"
    assert url.startswith(prefix)
    return url.removeprefix(prefix)


async def test_rotating_the_link_makes_the_old_one_invalid(membership: Membership) -> None:
    m = membership
    dept = await m.department()
    old = await rotate(m, dept)
    person = Principal(account_id=await m.announce(random_email("linked"), "Lin Linked"))

    joined = await m.use_cases.entry.join_link(old, person, None)

    assert isinstance(joined, Joined)
    assert (joined.account_id, joined.role, joined.status) == (
        person.account_id,
        "officer",
        "joined",
    )
    [added] = [e for e in await m.events(dept.id, MemberAdded) if e.via == "registration_link"]
    assert (added.account_id, added.added_by) == (person.account_id, None)
    [welcome] = await m.events(dept.id, WelcomeRequested)
    assert welcome.account_id == person.account_id
    [changed] = await m.events(dept.id, RegistrationLinkChanged)
    assert (changed.enabled, changed.role, changed.allowed_domains) == (True, "officer", [])

    new = await rotate(m, dept)
    assert new != old
    latecomer = Principal(account_id=await m.announce(random_email("late")))
    with pytest.raises(errors.RegistrationLinkInvalid):
        await m.use_cases.entry.join_link(old, latecomer, None)
    with pytest.raises(errors.RegistrationLinkInvalid):
        await m.use_cases.entry.join_link(
            old, None, Registration("Old Link", random_email(), PASSWORD)
        )
    assert isinstance(await m.use_cases.entry.join_link(new, latecomer, None), Joined)
    with pytest.raises(errors.AlreadyMember):
        await m.use_cases.entry.join_link(new, person, None)


async def test_a_link_switched_off_refuses_everyone(membership: Membership) -> None:
    m = membership
    dept = await m.department()
    token = await rotate(m, dept)
    await m.use_cases.links.disable(dept.id)
    await m.use_cases.links.disable(dept.id)  # off already: nothing more to say

    changes = await m.events(dept.id, RegistrationLinkChanged)
    assert [c.enabled for c in changes] == [True, False]
    assert (await m.use_cases.links.link(dept.id)).enabled is False
    person = Principal(account_id=await m.announce(random_email()))
    with pytest.raises(errors.RegistrationLinkInvalid):
        await m.use_cases.entry.join_link(token, person, None)
    with pytest.raises(errors.RegistrationLinkInvalid):
        await m.use_cases.entry.join_link(
            token, None, Registration("Off Link", random_email(), PASSWORD)
        )
    assert await m.use_cases.members.current(dept.id, person.account_id) is None

    # A department that never made a link has nothing to switch off.
    other = await m.department()
    await m.use_cases.links.disable(other.id)
    assert await m.events(other.id, RegistrationLinkChanged) == []


async def test_allowed_domains_refuse_other_domains_and_expired_links_refuse_all(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    token = await rotate(m, dept, allowed_domains=["@Example.org"])
    outsider = Principal(account_id=await m.announce(f"out-{uuid.uuid4().hex[:8]}@elsewhere.org"))

    with pytest.raises(errors.EmailDomainNotAllowed) as refused:
        await m.use_cases.entry.join_link(token, outsider, None)
    assert refused.value.errors == [
        {"field": "email", "message": "domain not allowed for this department"}
    ]
    outside_email = f"reg-{uuid.uuid4().hex[:8]}@elsewhere.org"
    with pytest.raises(errors.EmailDomainNotAllowed):
        await m.use_cases.entry.join_link(
            token, None, Registration("Out Sider", outside_email, PASSWORD)
        )
    assert await m.commands(CreateAccount, email=outside_email) == [], "identity never asked"
    assert await m.use_cases.members.current(dept.id, outsider.account_id) is None
    insider = Principal(account_id=await m.announce(random_email("in")))  # @example.org
    assert isinstance(await m.use_cases.entry.join_link(token, insider, None), Joined)

    expired = await rotate(m, dept, expires_at=datetime.now(UTC) - timedelta(minutes=1))
    late = Principal(account_id=await m.announce(random_email("late")))
    with pytest.raises(errors.RegistrationLinkExpired):
        await m.use_cases.entry.join_link(expired, late, None)
    with pytest.raises(errors.RegistrationLinkExpired):
        await m.use_cases.entry.join_link(
            expired, None, Registration("Too Late", random_email(), PASSWORD)
        )


async def test_registering_asks_identity_for_an_unconfirmed_account_and_joins_on_confirmation(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department("Link Station")
    token = await rotate(m, dept)
    email = random_email("self")

    registered = await m.use_cases.entry.join_link(
        token, None, Registration("Sel Fregister", email, PASSWORD)
    )

    # Whoever registers through the link proves their address first.
    assert isinstance(registered, Registered) and registered.confirm_email
    op = await m.use_cases.operations.get(registered.operation_id)
    assert op is not None
    assert (op.status, op.kind, op.requested_by, op.department_id) == (
        "pending",
        "register",
        None,
        dept.id,
    )
    [command] = await m.commands(CreateAccount, email=email)
    assert (command.request_id, command.name, command.confirm_email) == (
        op.id,
        "Sel Fregister",
        True,
    )
    assert command.password_hash is None, "the hash travels sealed to identity, never in the clear"
    assert command.sealed_password_hash is not None
    assert m.unsealed_hash(command.sealed_password_hash).startswith("$argon2id$")
    assert PASSWORD not in await m.outbox_text(dept.id), "the hash travels, never the password"
    [stored] = await m.rows(sa.select(operations).where(operations.c.id == op.id))
    assert PASSWORD not in str(stored.request) and stored.request["via"] == "registration_link"

    await m.deliver(awaiting(command))
    waiting = await m.use_cases.operations.get(op.id)
    assert waiting is not None and waiting.status == "awaiting_confirmation"
    assert [e for e in await m.events(dept.id, MemberAdded) if e.via == "registration_link"] == []

    account_id = uuid.uuid4()
    await m.deliver(created(command, account_id))

    done = await m.use_cases.operations.get(op.id)
    assert done is not None and done.status == "succeeded"
    assert done.result == {
        "account_id": str(account_id),
        "status": "joined",
        "role": "officer",
        "department_name": "Link Station",
    }
    [added] = [e for e in await m.events(dept.id, MemberAdded) if e.via == "registration_link"]
    assert (added.account_id, str(added.email), added.name) == (account_id, email, "Sel Fregister")
    [welcome] = await m.events(dept.id, WelcomeRequested)
    assert welcome.account_id == account_id


async def test_a_link_switched_off_while_identity_makes_the_account_lets_nobody_in(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    token = await rotate(m, dept)
    email = random_email("midway")
    registered = await m.use_cases.entry.join_link(
        token, None, Registration("Mid Way", email, PASSWORD)
    )
    assert isinstance(registered, Registered)
    [command] = await m.commands(CreateAccount, email=email)
    await m.deliver(awaiting(command))
    await m.use_cases.links.disable(dept.id)

    await m.deliver(created(command))

    failed = await m.use_cases.operations.get(registered.operation_id)
    assert failed is not None and failed.status == "failed"
    assert failed.problem is not None and failed.problem["type"].endswith(
        "/registration-link-invalid"
    )
    assert [e for e in await m.events(dept.id, MemberAdded) if e.via == "registration_link"] == []


async def test_registering_an_address_that_has_an_account_emails_its_owner_the_join_link(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    token = await rotate(m, dept)
    email = random_email("known")
    new_email = random_email("unknown")

    known = await m.use_cases.entry.join_link(token, None, Registration("K", email, PASSWORD))
    unknown = await m.use_cases.entry.join_link(
        token, None, Registration("U", new_email, PASSWORD)
    )

    # The same answer either way: nothing tells the caller which address has an account.
    assert isinstance(known, Registered) and isinstance(unknown, Registered)
    assert (known.confirm_email, unknown.confirm_email) == (True, True)
    [command] = await m.commands(CreateAccount, email=email)
    await m.deliver(rejected(command, existing_account_id=uuid.uuid4()))
    [notice] = await m.events(dept.id, SignInToJoinRequested)
    assert (str(notice.email), notice.via, notice.expires_at) == (email, "registration_link", None)
    assert unseal(m.seal_key, notice.sealed_token) == token
    failed = await m.use_cases.operations.get(known.operation_id)
    assert failed is not None and failed.problem is not None
    assert failed.problem["type"].endswith("/account-exists")


async def test_a_signed_in_account_membership_has_not_heard_of_is_asked_to_try_again(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    token = await rotate(m, dept, allowed_domains=["example.org"])
    early = Principal(account_id=uuid.uuid4())  # its AccountCreated is still on its way

    with pytest.raises(errors.AccountNotReady) as refused:
        await m.use_cases.entry.join_link(token, early, None)

    assert refused.value.retry_after == 2
    assert await m.use_cases.members.current(dept.id, early.account_id) is None
    # Once known, its address is checked against the domains: never skipped.
    await m.deliver(
        AccountCreated(account_id=early.account_id, email="early@elsewhere.org", name="Early")
    )
    with pytest.raises(errors.EmailDomainNotAllowed):
        await m.use_cases.entry.join_link(token, early, None)
    assert await m.use_cases.members.current(dept.id, early.account_id) is None


async def test_registering_needs_a_strong_password_and_the_whole_form(
    membership: Membership,
) -> None:
    m = membership
    dept = await m.department()
    token = await rotate(m, dept)
    email = random_email("weak")
    with pytest.raises(WeakPassword):
        await m.use_cases.entry.join_link(token, None, Registration("Weak One", email, "password"))
    with pytest.raises(InvalidInput):
        await m.use_cases.entry.join_link(token, None, None)
    assert await m.commands(CreateAccount, email=email) == []
