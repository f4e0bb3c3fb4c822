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
"""

from __future__ import annotations

import uuid
from typing import Literal

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import AccountAddressChanged, AddressLinked, LinkAddress
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .confirmations import Confirmations
from .domain import normalise_email

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
