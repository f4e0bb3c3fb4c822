"""Email confirmation of registrations: the account a person registers stays unconfirmed
until they use the link emailed to the address; until then any other request for the
address takes the account over, and the sweep deletes it once the link has lapsed.

Everything here runs in the caller's unit of work: the consumer's (a registration,
a takeover) or an HTTP use case's (confirming, sending the link again, the sweep).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from prodigy_users.contracts.identity import (
    AccountAwaitingConfirmation,
    AccountRequestLapsed,
    EmailConfirmationIssued,
)
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import (
    CONFIRM_EMAIL,
    CONFIRMATION_WINDOW,
    confirmation_email_allowed,
    new_token,
    token_hash,
)
from .links import Links

log = get_logger(__name__)

LapseReason = Literal["expired", "superseded"]


class Confirmations:
    """Issues confirmation links and ends the requests that wait for them; one per
    process, built by ``app.spec``."""

    def __init__(self, links: Links, ttl: timedelta) -> None:
        self.links = links
        self.ttl = ttl

    async def issue(
        self,
        uow: UnitOfWork,
        account: store.Account,
        *,
        request_id: uuid.UUID,
        department_id: uuid.UUID | None,
        expires_at: datetime,
        resent: bool = False,
    ) -> bool:
        """A new confirmation token for ``account`` (its earlier ones retired), emailed
        unless the address had its share of confirmation emails this hour; True if
        emailed. The link works until ``expires_at`` (a link sent again keeps the
        registration's expiry: the request lives 24 hours whatever is resent)."""
        now = datetime.now(UTC)
        await store.retire_tokens(uow.conn, account.id, now, CONFIRM_EMAIL)
        sent = await store.count_recent_tokens(
            uow.conn, account.id, CONFIRM_EMAIL, CONFIRMATION_WINDOW
        )
        token = new_token()
        await store.insert_token(
            uow.conn,
            account.id,
            token_hash(token),
            CONFIRM_EMAIL,
            expires_at,
            request_id=request_id,
            department_id=department_id,
        )
        if not confirmation_email_allowed(sent):
            log.info("confirmation email dropped: too many", account_id=str(account.id))
            return False
        uow.emit(
            EmailConfirmationIssued(
                account_id=account.id,
                email=account.email,
                name=account.name,
                sealed_token=self.links.sealed(token),
                expires_at=expires_at,
                department_id=department_id,
                resent=resent,
            ),
            key=account.id,
        )
        return True

    async def await_confirmation(
        self,
        uow: UnitOfWork,
        account: store.Account,
        *,
        request_id: uuid.UUID,
        department_id: uuid.UUID,
    ) -> None:
        """The request's account exists unconfirmed: email the link, answer the request."""
        expires_at = datetime.now(UTC) + self.ttl
        await self.issue(
            uow,
            account,
            request_id=request_id,
            department_id=department_id,
            expires_at=expires_at,
        )
        uow.emit(
            AccountAwaitingConfirmation(
                request_id=request_id,
                email=account.email,
                department_id=department_id,
                expires_at=expires_at,
            ),
            key=request_id,
        )

    async def lapse(
        self,
        uow: UnitOfWork,
        account: store.Account,
        reason: LapseReason,
        *,
        keep: uuid.UUID | None = None,
    ) -> None:
        """Every request still waiting for ``account``'s confirmation ends (``keep``
        excepted: a request delivered again must not end itself)."""
        for waiting in await store.waiting_requests(uow.conn, account.id, CONFIRM_EMAIL):
            if waiting.request_id == keep:
                continue
            uow.emit(
                AccountRequestLapsed(
                    request_id=waiting.request_id,
                    email=account.email,
                    department_id=waiting.department_id,
                    reason=reason,
                ),
                key=waiting.request_id,
            )
