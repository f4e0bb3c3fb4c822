"""Notifications' use cases, each one unit of work (state change + its events)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import (
    AccountUpdated,
    AddressConfirmationIssued,
    EmailChangeConfirmationIssued,
    EmailConfirmationIssued,
    PasswordLink,
    PasswordLinkIssued,
    PasswordLinksIssued,
)
from prodigy_users.contracts.membership import (
    DepartmentCreated,
    InvitationLinkIssued,
    MemberAdded,
    MemberMerged,
    MemberRemoved,
    MemberRestored,
    MemberRoleChanged,
    SignInToJoinRequested,
    WelcomeRequested,
)
from prodigy_users.contracts.notifications import EmailDeadLettered, EmailFailed, EmailSent
from prodigy_users.runtime.tracing import carrier_for
from prodigy_users.runtime.uow import UnitOfWork

from . import store, store_delivery
from .domain import (
    ADMIN,
    TRACE_PREFIX,
    EmailLogEntry,
    EmailStatus,
    LogCursor,
    MemberKey,
    Outcome,
    OutgoingEmail,
    Purpose,
    RetryPolicy,
    department_hold,
    encode_cursor,
    event_key,
    invitation_template,
    last_roles,
    lease_orphaned,
    masked_email,
    short_error,
    template_for,
)

SERVICE = "notifications"


async def remember_department(uow: UnitOfWork, payload: DepartmentCreated) -> None:
    """Keep the department's name for the emails sent on its behalf.

    Emails that were waiting for the name go out now.
    """
    await store.upsert_department(uow.conn, payload.department_id, payload.name)
    await store.release_held(uow.conn, payload.department_id)


RoleEvent = MemberAdded | MemberRoleChanged | MemberRestored | MemberRemoved | MemberMerged


def role_change(payload: RoleEvent) -> tuple[MemberKey, str | None]:
    """Whose role an event sets, and to what (None: they were removed)."""
    key = (payload.department_id, payload.account_id)
    if isinstance(payload, MemberRemoved):
        return key, None
    if isinstance(payload, MemberMerged) and payload.removed:
        return key, None
    return key, payload.role


def role_changes(payload: RoleEvent) -> list[tuple[MemberKey, str | None]]:
    """Every role an event sets: a merge of two accounts also forgets the merged one."""
    if isinstance(payload, MemberMerged):
        return [((payload.department_id, payload.merged_account_id), None), role_change(payload)]
    return [role_change(payload)]


async def remember_roles(conn: AsyncConnection, events: Iterable[RoleEvent]) -> None:
    """Keep who administers which department: its admins may read its email log.

    Only admins are kept (a bulk upload's members cost nothing here); someone who
    stops being one, or is removed, is forgotten. Only the last change of each
    person counts, so a run of events is two statements at most.
    """
    roles = last_roles(change for p in events for change in role_changes(p))
    await store.upsert_memberships(conn, {k: r for k, r in roles.items() if r == ADMIN})
    await store.delete_memberships(conn, [k for k, r in roles.items() if r != ADMIN])


def is_not_admin(payload: MemberAdded | MemberRestored) -> bool:
    """A person joining, or coming back, as anything but an admin: nothing to keep
    (a removed person's role was forgotten, so there is nothing to forget either)."""
    return payload.role != ADMIN


def _link_row(
    envelope: RawEnvelope,
    purpose: Purpose,
    link: PasswordLinkIssued | PasswordLink,
    department_id: uuid.UUID | None,
    expires_at: datetime,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "source_event_id": envelope.event_id,
        "template": template_for(purpose),
        "recipient": str(link.email),
        "recipient_name": link.name,
        "department_id": department_id,
        "account_id": link.account_id,
        "sealed_token": link.sealed_token,
        "link_expires_at": expires_at,
        "correlation_id": envelope.correlation_id,
    }


def password_link_email(envelope: RawEnvelope, payload: PasswordLinkIssued) -> dict[str, Any]:
    """The queued row for a set-password link: the token still sealed."""
    return _link_row(envelope, payload.purpose, payload, payload.department_id, payload.expires_at)


def password_links_emails(
    envelope: RawEnvelope, payload: PasswordLinksIssued
) -> list[dict[str, Any]]:
    """The queued rows for a batch of set-password links, each as if it came alone; they
    all answer the batch's event (one email per recipient of it)."""
    return [
        _link_row(envelope, payload.purpose, link, payload.department_id, payload.expires_at)
        for link in payload.links
    ]


def invitation_email(envelope: RawEnvelope, payload: InvitationLinkIssued) -> dict[str, Any]:
    """The queued row for an invitation or a reminder: the token still sealed."""
    details: dict[str, str] = {"role": payload.role}
    if payload.invited_by_name:
        details["inviter"] = payload.invited_by_name
    return {
        "id": uuid.uuid4(),
        "source_event_id": envelope.event_id,
        "template": invitation_template(reminder=payload.reminder),
        "recipient": str(payload.email),
        # An invitation goes to an address, not yet to a person: greeted by the name the
        # admin pasted with it, if any.
        "recipient_name": payload.name or "",
        "department_id": payload.department_id,
        "account_id": None,
        "sealed_token": payload.sealed_token,
        "link_expires_at": payload.expires_at,
        "details": details,
        "correlation_id": envelope.correlation_id,
    }


def confirmation_email(envelope: RawEnvelope, payload: EmailConfirmationIssued) -> dict[str, Any]:
    """The queued row for a registration's confirmation link: the token still sealed."""
    return {
        "id": uuid.uuid4(),
        "source_event_id": envelope.event_id,
        "template": "confirm_email",
        "recipient": str(payload.email),
        "recipient_name": payload.name,
        "department_id": payload.department_id,
        "account_id": payload.account_id,
        "sealed_token": payload.sealed_token,
        "link_expires_at": payload.expires_at,
        "correlation_id": envelope.correlation_id,
    }


def address_confirmation_email(
    envelope: RawEnvelope,
    payload: EmailChangeConfirmationIssued | AddressConfirmationIssued,
    template: str,
) -> dict[str, Any]:
    """The queued row for a link sent to an address its account asked for (a new login
    email: ``change_email``; an address to link: ``link_address``), sent to that
    address: the token still sealed."""
    return {
        "id": uuid.uuid4(),
        "source_event_id": envelope.event_id,
        "template": template,
        "recipient": str(payload.email),
        "recipient_name": payload.name,
        "department_id": None,
        "account_id": payload.account_id,
        "sealed_token": payload.sealed_token,
        "link_expires_at": payload.expires_at,
        "correlation_id": envelope.correlation_id,
    }


def email_changed_emails(envelope: RawEnvelope, payload: AccountUpdated) -> list[dict[str, Any]]:
    """The queued row for the notice to the old address of a changed login email (none
    for a change of name alone). The new address shows masked."""
    if payload.email is None:
        return []
    return [
        {
            "id": uuid.uuid4(),
            "source_event_id": envelope.event_id,
            "template": "email_changed",
            "recipient": payload.email.old,
            "recipient_name": "",  # addressed to the old mailbox, whoever reads it now
            "department_id": None,
            "account_id": payload.account_id,
            "sealed_token": None,
            "link_expires_at": None,
            "details": {"new_email": masked_email(payload.email.new)},
            "correlation_id": envelope.correlation_id,
        }
    ]


def is_not_email_change(payload: AccountUpdated) -> bool:
    """An ``AccountUpdated`` that changed no login email: nothing to send or keep."""
    return payload.email is None


def sign_in_to_join_email(envelope: RawEnvelope, payload: SignInToJoinRequested) -> dict[str, Any]:
    """The queued row for "someone tried to register with your address": the link they
    used (sealed), which the owner opens to sign in and join."""
    return {
        "id": uuid.uuid4(),
        "source_event_id": envelope.event_id,
        "template": "sign_in_to_join",
        "recipient": str(payload.email),
        "recipient_name": "",  # addressed to whoever owns the address
        "department_id": payload.department_id,
        "account_id": None,
        "sealed_token": payload.sealed_token,
        "link_expires_at": payload.expires_at,
        "details": {"via": payload.via},
        "correlation_id": envelope.correlation_id,
    }


def welcome_email(envelope: RawEnvelope, payload: WelcomeRequested) -> dict[str, Any]:
    """The queued row for "you joined <department>": no link secret in it."""
    return {
        "id": uuid.uuid4(),
        "source_event_id": envelope.event_id,
        "template": "welcome_joined",
        "recipient": str(payload.email),
        "recipient_name": payload.name,
        "department_id": payload.department_id,
        "account_id": payload.account_id,
        "sealed_token": None,
        "link_expires_at": None,
        "correlation_id": envelope.correlation_id,
    }


async def queue_many(
    conn: AsyncConnection, rows: list[dict[str, Any]], *, name_wait: timedelta
) -> int:
    """Queue many emails at once (a consumer's batch); how many were new.

    Each is queued once per (source event, template, recipient); those for a department whose
    name has not arrived yet wait for it a little.
    """
    for row in rows:
        # One multi-row INSERT: every row names the same columns (details included).
        details = row.setdefault("details", {})
        # The event's trace goes with the email, so its sending joins the same trace.
        for key, value in (carrier_for(row["source_event_id"]) or {}).items():
            details[TRACE_PREFIX + key] = value
    wanted = {r["department_id"] for r in rows if r["department_id"] is not None}
    known = await store.known_departments(conn, wanted)
    at_once: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for row in rows:
        department_id: uuid.UUID | None = row["department_id"]
        hold = None
        if department_id is not None:
            hold = department_hold(department_id in known, name_wait)
        (at_once if hold is None else held).append(row)
    inserted = await store.insert_emails(conn, at_once)
    inserted += await store.insert_emails(conn, held, hold=name_wait)
    return inserted


async def claim_due(
    db: AsyncEngine | AsyncConnection,
    *,
    limit: int,
    lease: timedelta,
    holder: int | None = None,
    grace: timedelta = timedelta(0),
) -> list[OutgoingEmail]:
    """Claim the emails that are due, under a lease held by worker ``holder``
    (committed before anything is sent).

    The leases of dead workers come first (``lease_orphaned``): what a killed
    process had in flight goes out again within moments, not when its lease ends.
    A worker claims on the connection that holds its lock (``db``), so that no
    claim is ever made in the name of a worker whose lock is gone.
    """
    if isinstance(db, AsyncEngine):
        async with db.connect() as conn:
            return await claim_due(conn, limit=limit, lease=lease, holder=holder, grace=grace)
    async with db.begin():
        found, now, started = await store_delivery.leases(db)
        orphans = [
            (held.email_id, held.attempts)
            for held in found
            if held.ends_at > now  # an expired lease is simply due (below)
            and lease_orphaned(held, now=now, database_started_at=started, grace=grace)
        ]
        claimed = await store_delivery.take_over(db, orphans[:limit], lease=lease, holder=holder)
        if len(claimed) < limit:
            claimed += await store_delivery.claim_due(
                db, limit=limit - len(claimed), lease=lease, holder=holder
            )
    return claimed


def _about(uow: UnitOfWork, email: OutgoingEmail) -> UnitOfWork:
    # Events about an email carry the request that caused it and the event it answers.
    uow.correlation_id = email.correlation_id
    uow.causation_id = str(email.source_event_id)
    return uow


async def record(
    engine: AsyncEngine, outcomes: list[Outcome], policy: RetryPolicy
) -> dict[EmailStatus, list[Outcome]]:
    """Record what became of many attempts in one unit of work, with their events.

    Sent: ``sent`` and ``EmailSent``. Failed with attempts left: ``retrying`` after
    the policy's backoff. Failed for good (a permanent refusal, or the last
    attempt): ``failed``, ``EmailFailed``, and the dead letter ``EmailDeadLettered``.
    Released (never tried): due again, the attempt uncounted. Returns the outcomes
    by the status they led to; one whose lease was lost (another worker owns the
    email now) is in none.
    """
    sent = [o for o in outcomes if o.error is None and not o.released]
    released = [o for o in outcomes if o.released]
    retry: list[tuple[Outcome, timedelta]] = []
    give_up: list[Outcome] = []
    for o in outcomes:
        if o.error is not None and not o.released:
            delay = policy.after_failure(o.email.attempts, permanent=o.permanent)
            if delay is None:
                give_up.append(o)
            else:
                retry.append((o, delay))
    result: dict[EmailStatus, list[Outcome]] = {}
    async with UnitOfWork(engine, SERVICE) as uow:
        conn = uow.conn
        sent_at = await store_delivery.mark_sent(
            conn, [(o.email.id, o.email.attempts) for o in sent]
        )
        retrying = await store_delivery.mark_retrying(
            conn,
            [(o.email.id, o.email.attempts, d, short_error(o.error or "")) for o, d in retry],
        )
        failed = await store_delivery.mark_failed(
            conn, [(o.email.id, o.email.attempts, short_error(o.error or "")) for o in give_up]
        )
        await store_delivery.release(conn, [(o.email.id, o.email.attempts) for o in released])
        for o in sent:
            if o.email.id in sent_at:
                _emit_sent(_about(uow, o.email), o.email, sent_at[o.email.id])
        for o in give_up:
            if o.email.id in failed:
                _emit_failed(_about(uow, o.email), o, short_error(o.error or ""))
        await uow.commit()
    result["sent"] = [o for o in sent if o.email.id in sent_at]
    result["retrying"] = [o for o, _ in retry if o.email.id in retrying]
    result["failed"] = [o for o in give_up if o.email.id in failed]
    return result


def _emit_sent(uow: UnitOfWork, email: OutgoingEmail, sent_at: datetime) -> None:
    uow.emit(
        EmailSent(
            email_id=email.id,
            template=email.template,
            to=email.to,
            department_id=email.department_id,
            source_event_id=email.source_event_id,
            sent_at=sent_at,
            attempts=email.attempts,
        ),
        key=event_key(email.department_id, email.to),
    )


def _emit_failed(uow: UnitOfWork, outcome: Outcome, error: str) -> None:
    email = outcome.email
    key = event_key(email.department_id, email.to)
    uow.emit(
        EmailFailed(
            email_id=email.id,
            template=email.template,
            to=email.to,
            department_id=email.department_id,
            source_event_id=email.source_event_id,
            error=error,
            attempts=email.attempts,
        ),
        key=key,
    )
    # The dead letter goes through the outbox too: a broker that is away when we
    # give up delays it, never loses it.
    uow.emit(
        EmailDeadLettered(
            email_id=email.id,
            template=email.template,
            to=email.to,
            department_id=email.department_id,
            account_id=email.account_id,
            source_event_id=email.source_event_id,
            reason=error,
            permanent=outcome.permanent,
            attempts=email.attempts,
            queued_at=email.queued_at or datetime.now(UTC),
            last_attempt_at=datetime.now(UTC),
        ),
        key=key,
    )


async def seconds_until_next_due(engine: AsyncEngine) -> float | None:
    """How long the worker may sleep before an email falls due."""
    async with engine.connect() as conn:
        return await store_delivery.seconds_until_next_due(conn)


class EmailLog:
    """The department's email log, as its admins read it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def is_admin(self, department_id: uuid.UUID, account_id: uuid.UUID) -> bool:
        """Whether the caller administers the department, as far as notifications has heard."""
        async with self.engine.connect() as conn:
            return await store.role_of(conn, department_id, account_id) == ADMIN

    async def page(
        self,
        department_id: uuid.UUID,
        *,
        statuses: tuple[EmailStatus, ...] = (),
        after: LogCursor | None = None,
        limit: int,
    ) -> tuple[list[EmailLogEntry], str | None]:
        """A page of the department's email log, newest first, and the next page's cursor."""
        async with self.engine.connect() as conn:
            entries = await store.list_emails(
                conn, department_id, statuses=statuses, after=after, limit=limit + 1
            )
        if len(entries) <= limit:
            return entries, None
        last = entries[limit - 1]
        return entries[:limit], encode_cursor(LogCursor(last.created_at, last.id))
