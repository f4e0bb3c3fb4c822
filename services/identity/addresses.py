"""An account's addresses: its login email and any number of linked ones.

A linked address is one the person proved they receive mail at: they accepted an
invitation sent to it while signed in (membership's ``LinkAddress``). From then on
every lookup of an address (making an account, password reset requests) finds the
account through it, and no other account can take it: ``account_addresses`` holds
every address of every account, login emails included, under one unique index.
Signing in stays by the login email only.

A link is announced twice: ``AddressLinked`` on the public events topic, without the
address (which addresses a person holds is not for other teams), and
``AccountAddressChanged`` on identity's private answers topic, with it, for
membership's own lookups.

A person also links an address themselves (``Addresses``): asking sends a
single-use link to it, and opening the link links it; asking answers the same
whether or not another account holds the address (the link says so when opened, as
for a new login email), so nobody learns who has an account. They unlink any linked
address, never the login email.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import (
    AccountAddressChanged,
    AddressConfirmationIssued,
    AddressLinked,
    AddressUnlinked,
    LinkAddress,
)
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.uow import UnitOfWork

from . import address_tokens, store
from .confirmations import Confirmations
from .domain import LINK_ADDRESS, normalise_email
from .errors import (
    AccountNotFound,
    AddressAlreadyYours,
    AddressNotFound,
    EmailTaken,
    LoginEmailNotRemovable,
)
from .links import Links

log = get_logger(__name__)


class AddressLinks:
    """Links addresses to accounts; built once by ``app.spec``."""

    def __init__(self, confirmations: Confirmations) -> None:
        self.confirmations = confirmations

    async def link_address(self, uow: UnitOfWork, env: RawEnvelope, cmd: LinkAddress) -> None:
        """Handle ``LinkAddress``: the invited address joins the account that accepted.

        An address another (confirmed) account holds is not linked: logged, nothing
        else (the person has joined with the account they signed in with).
        """
        outcome = await self.link(uow, cmd.account_id, cmd.email, via="invitation")
        if outcome == "taken":
            log.info(
                "invited address not linked: another account holds it",
                account_id=str(cmd.account_id),
                invitation_id=str(cmd.invitation_id),
            )

    async def link(
        self,
        uow: UnitOfWork,
        account_id: uuid.UUID,
        email: str,
        *,
        via: Literal["invitation", "confirmation"],
    ) -> Literal["linked", "held", "taken", "no_account"]:
        """Link ``email`` to the account and announce it; what happened.

        ``held``: the account holds it already (nothing changes); ``taken``: another
        account does. An address held only by a registration nobody confirmed is free,
        as for every other request: that registration lapses and its account goes.
        """
        account = await store.account_by_id(uow.conn, account_id, lock=True)
        if account is not None and account.merged_into is not None:
            # Asked for (an invitation accepted) just before an operator merged the
            # account: the address is the kept account's, like every other of it.
            account = await store.account_by_id(uow.conn, account.merged_into, lock=True)
        if account is None:
            log.warning("address link for an unknown account", account_id=str(account_id))
            return "no_account"
        normalised = normalise_email(email)
        holder = await store.account_holding(uow.conn, normalised, lock=True)
        if holder is not None and holder.id == account.id:
            return "held"
        if holder is not None and not holder.confirmed:
            await self.confirmations.lapse(uow, holder, "superseded")
            await store.delete_accounts(uow.conn, [holder.id])
        elif holder is not None:
            return "taken"
        address = await store.link_address(uow.conn, account.id, email, normalised)
        if address is None:
            # Another account took it a moment ago (the unique index decided).
            return "taken"
        uow.emit(
            AddressLinked(
                account_id=account.id,
                address_id=address.id,
                via=via,
                linked_at=address.linked_at,
            ),
            key=account.id,
        )
        uow.emit(
            AccountAddressChanged(
                account_id=account.id,
                email=address.email,
                change="linked",
                occurred_at=address.linked_at,
            ),
            key=account.id,
        )
        return "linked"


class Addresses:
    """The person's own addresses; built once the runtime's engine exists."""

    def __init__(
        self, engine: AsyncEngine, links: Links, address_links: AddressLinks, ttl: timedelta
    ) -> None:
        self.engine = engine
        self.links = links
        self.address_links = address_links
        self.ttl = ttl

    def uow(self) -> UnitOfWork:
        """A unit of work on identity's database."""
        return UnitOfWork(self.engine, "identity")

    async def of(self, account_id: uuid.UUID) -> list[store.Address]:
        """The caller's addresses, the login email first (``AccountNotFound``)."""
        async with self.engine.connect() as conn:
            if await store.account_by_id(conn, account_id) is None:
                raise AccountNotFound("The token's account does not exist.")
            return await store.addresses_of(conn, account_id)

    async def request_link(self, account_id: uuid.UUID, email: str) -> None:
        """Send a link to ``email``; opening it links the address to the account.

        ``AddressAlreadyYours`` for an address of the caller's; whether another
        account holds it is not said (the link says so when opened). Earlier links
        of the account stop working.
        """
        async with self.uow() as uow:
            account = await store.account_by_id(uow.conn, account_id, lock=True)
            if account is None:
                raise AccountNotFound("The token's account does not exist.")
            mine = {
                normalise_email(a.email) for a in await store.addresses_of(uow.conn, account.id)
            }
            if normalise_email(email) in mine:
                raise AddressAlreadyYours()
            token, expires_at = await address_tokens.issue(
                uow, account.id, LINK_ADDRESS, email, datetime.now(UTC), self.ttl
            )
            uow.emit(
                AddressConfirmationIssued(
                    account_id=account.id,
                    email=email,
                    name=account.name,
                    sealed_token=self.links.sealed(token),
                    expires_at=expires_at,
                ),
                key=account.id,
            )
            await uow.commit()

    async def confirm_link(self, token: str) -> store.Address:
        """Use an address link once: the address it was sent to is linked.

        ``LinkInvalid``, ``LinkUsed``, ``LinkExpired``; ``EmailTaken`` if another
        account holds the address (checked, and decided by the unique index when two
        links race): the link is spent either way.
        """
        async with self.uow() as uow:
            account_id, email = await address_tokens.spend(
                uow, token, LINK_ADDRESS, datetime.now(UTC)
            )
            outcome = await self.address_links.link(uow, account_id, email, via="confirmation")
            if outcome in ("taken", "no_account"):
                # The link is spent: commit that, then say why nothing changed.
                await uow.commit()
                raise EmailTaken(
                    "This address belongs to another account, so it cannot be linked to "
                    "yours. Nothing has changed."
                )
            held = [
                a
                for a in await store.addresses_of(uow.conn, account_id)
                if normalise_email(a.email) == normalise_email(email)
            ]
            await uow.commit()
        return held[0]

    async def unlink(self, account_id: uuid.UUID, address_id: uuid.UUID) -> None:
        """Unlink one of the caller's linked addresses: it is free again.

        ``LoginEmailNotRemovable`` for the login email; ``AddressNotFound`` for an
        address that is not the caller's.
        """
        async with self.uow() as uow:
            gone = await store.unlink_address(uow.conn, account_id, address_id)
            if gone is None:
                mine = await store.addresses_of(uow.conn, account_id)
                if any(a.id == address_id and a.login for a in mine):
                    raise LoginEmailNotRemovable()
                raise AddressNotFound()
            now = datetime.now(UTC)
            uow.emit(
                AddressUnlinked(account_id=account_id, address_id=gone.id, unlinked_at=now),
                key=account_id,
            )
            uow.emit(
                AccountAddressChanged(
                    account_id=account_id, email=gone.email, change="unlinked", occurred_at=now
                ),
                key=account_id,
            )
            await uow.commit()
