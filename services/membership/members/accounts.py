"""The name and login email of the people membership keeps, which belong to their
accounts (identity's): an admin corrects a member's name here (identity is asked to
change it, ``RenameAccount``), and every ``AccountUpdated`` from identity, whoever made
the change, is copied onto the account and all of its memberships, in every
department."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import AccountAddressChanged, AccountUpdated, RenameAccount
from prodigy_users.runtime.uow import UnitOfWork

from ..errors import MemberNotFound
from ..units import unit_of_work
from . import store


class AccountNames:
    """An admin's correction of a member's name; built once the engine exists."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def rename(
        self, department_id: uuid.UUID, account_id: uuid.UUID, name: str, by: uuid.UUID
    ) -> bool:
        """Ask identity to set a current member's name (``MemberNotFound`` otherwise);
        False if it is their name already (nothing asked).

        Membership's copies change at once, so the admin's answer shows the new name;
        identity's ``AccountUpdated`` then reaches every read model (and confirms
        these copies: the latest change of the account wins everywhere).
        """
        async with unit_of_work(self.engine) as uow:
            row = await store.any_membership(uow.conn, department_id, account_id, lock=True)
            if row is None or row.removed_at is not None:
                raise MemberNotFound()
            account = await store.account(uow.conn, account_id)
            # A membership made before names were the account's may show another name
            # than the account: either differing is a change.
            if row.name == name and (account is None or account.name == name):
                return False
            await store.rename_account(uow.conn, account_id, name)
            uow.emit(
                RenameAccount(
                    account_id=account_id, name=name, changed_by=by, department_id=department_id
                ),
                key=account_id,
            )
            await uow.commit()
        return True


async def on_account_updated(uow: UnitOfWork, env: RawEnvelope, event: AccountUpdated) -> None:
    """Copy a changed name or login email onto the account and all its memberships."""
    if event.name is not None:
        await store.rename_account(uow.conn, event.account_id, event.name.new)
    if event.email is not None:
        await store.change_account_email(uow.conn, event.account_id, event.email.new)


async def on_account_address_changed(
    uow: UnitOfWork, env: RawEnvelope, event: AccountAddressChanged
) -> None:
    """An address was linked to (or unlinked from) an account: it finds that account
    (or no longer does) wherever membership looks an address up."""
    await store.set_linked_address(
        uow.conn, event.account_id, email_key(event.email), linked=event.change == "linked"
    )
