"""How a registration at a door ends, once identity has answered (in the consumer's unit
of work): the person is let in, or the request ends and lets go of what it held.

- Identity made the account (for a registration that had to prove its address: the
  person used the confirmation link): the door is checked again as it stands now (a
  link switched off meanwhile lets nobody in) and the person joins.
- The address has an account: the invitation's claim is released (it stays usable by
  signing in) and the address's owner is emailed the link, to sign in and join
  (``SignInToJoinRequested``); the person who registered was answered exactly as if
  the address were new.
- The confirmation lapsed, or the join was refused: the claim is released.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.membership import SignInToJoinRequested
from prodigy_users.runtime.errors import DomainError
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.uow import UnitOfWork

from ..departments import store as department_store
from ..members import store as member_store
from ..members.joining import Joined
from ..members.requests import Ending
from . import store
from .entry import InvitationDoor, LinkDoor, find_door
from .tokens import LinkTokens

log = get_logger(__name__)

# "Someone tried to register with your address" emails per address per window: anyone
# with a link can make the system write to any address that has an account.
MAX_SIGN_IN_NOTICES = 3
SIGN_IN_NOTICE_WINDOW = timedelta(hours=1)


class Registrations:
    """Completes and ends registrations; built once by ``app.spec`` for the consumer."""

    def __init__(self, tokens: LinkTokens) -> None:
        self.tokens = tokens

    async def complete(self, uow: UnitOfWork, operation: Any, account_id: uuid.UUID) -> Joined:
        """Identity made (or the person confirmed) the account: let them in."""
        request = operation.request
        door = await find_door(uow.conn, request["via"], request["token_hash"])
        door.check(request["email"], datetime.now(UTC))
        joined = await door.let_in(uow, account_id, request["name"], request["email"])
        department = await department_store.department(uow.conn, door.department_id)
        name = str(department.name) if department is not None else None
        return Joined(joined.department_id, joined.account_id, joined.role, joined.status, name)

    async def ended(self, uow: UnitOfWork, operation: Any, ending: Ending) -> None:
        """The registration ends without a member: let go of the invitation, and tell an
        address's owner how to join."""
        await store.release_claim(uow.conn, operation.id)
        if ending == "account_exists":
            await self._tell_owner(uow, operation)

    async def _tell_owner(self, uow: UnitOfWork, operation: Any) -> None:
        request = operation.request
        email = str(request["email"])
        recent = await member_store.recent_refused_registrations(
            uow.conn, email_key(email), "account-exists", SIGN_IN_NOTICE_WINDOW
        )
        if recent >= MAX_SIGN_IN_NOTICES:
            log.info("sign-in-to-join email dropped: too many", operation_id=str(operation.id))
            return
        try:
            door = await find_door(uow.conn, request["via"], request["token_hash"])
            door.check(email, datetime.now(UTC))
        except DomainError as refused:
            # The link is gone or no longer usable: it would lead the owner nowhere.
            log.info("sign-in-to-join email skipped", reason=type(refused).__name__)
            return
        if isinstance(door, InvitationDoor):
            token = self.tokens.token("invitation", door.row.id)
            expires_at = door.row.expires_at
        else:
            assert isinstance(door, LinkDoor)
            token = self.tokens.token("link", door.row.link_id)
            expires_at = door.row.expires_at
        uow.emit(
            SignInToJoinRequested(
                department_id=door.department_id,
                email=email,
                via=request["via"],
                sealed_token=self.tokens.sealed(token),
                expires_at=expires_at,
            ),
            key=door.department_id,
        )
