"""Merging two accounts of one person, for an operator (``prodigy-users accounts merge``).

Identity owns accounts, so a merge starts here, in one transaction: every address of
the merged account (its login email too) becomes a linked address of the kept one,
the merged account is marked as merged (it holds no login email, so nobody signs in
as it) and its tokens are revoked, and ``AccountMerged`` goes out for membership and
reporting to move what they keep per account. Membership also hears each moved
address on its private answers topic (``AccountAddressChanged``), as for any link.

Asking for the same merge again answers the same and changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.identity import AccountAddressChanged, AccountMerged
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import merge_step
from .errors import (
    AccountAlreadyMerged,
    AccountNotFound,
    AccountUnconfirmed,
    KeptAccountMerged,
    MergeIntoItself,
)
from .revocations import revoke_tokens

log = get_logger(__name__)


@dataclass(frozen=True)
class Merge:
    """A merge as done: the same answer however often it is asked for."""

    kept_account_id: uuid.UUID
    merged_account_id: uuid.UUID
    merged_at: datetime
    # Whether this call did it (False: it had been done before, nothing changed).
    changed: bool


class Merges:
    """Merges accounts; built once the runtime's engine exists."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def merge(self, keep_id: uuid.UUID, drop_id: uuid.UUID) -> Merge:
        """Merge ``drop_id`` into ``keep_id`` (see the module).

        ``MergeIntoItself``, ``AccountNotFound`` (either), ``AccountAlreadyMerged``
        (into another account), ``KeptAccountMerged``, ``AccountUnconfirmed`` (either).
        """
        if keep_id == drop_id:
            raise MergeIntoItself()
        async with UnitOfWork(self.engine, "identity") as uow:
            # Both rows locked, in one order whoever asks, so two merges of the same
            # pair (or crossed) wait for each other instead of deadlocking.
            found: dict[uuid.UUID, store.Account] = {}
            for account_id in sorted((keep_id, drop_id)):
                account = await store.account_by_id(uow.conn, account_id, lock=True)
                if account is None:
                    raise AccountNotFound(f"There is no account {account_id}.")
                found[account_id] = account
            keep, drop = found[keep_id], found[drop_id]
            step = merge_step(
                keep.id,
                drop.id,
                keep.merged_into,
                drop.merged_into,
                confirmed=keep.confirmed and drop.confirmed,
            )
            if step == "done":
                assert drop.merged_at is not None
                return Merge(keep.id, drop.id, drop.merged_at, changed=False)
            if step == "self":
                raise MergeIntoItself()
            if step == "drop_merged_elsewhere":
                raise AccountAlreadyMerged(
                    f"Account {drop.id} was merged into account {drop.merged_into} already."
                )
            if step == "keep_merged":
                raise KeptAccountMerged(
                    f"Account {keep.id} was itself merged into account {keep.merged_into}: "
                    "merge into that one."
                )
            if step == "unconfirmed":
                unconfirmed = keep if not keep.confirmed else drop
                raise AccountUnconfirmed(
                    f"Account {unconfirmed.id} has never confirmed its address: it is a "
                    "registration that may still lapse. Merge it once it is confirmed."
                )
            now = datetime.now(UTC)
            moved = await store.move_addresses(uow.conn, drop.id, keep.id)
            await store.mark_merged(uow.conn, drop.id, keep.id, now)
            # Its unused set-password and confirmation links die with it, and every
            # service refuses its access tokens from now on.
            await store.retire_tokens(uow.conn, drop.id, now)
            await revoke_tokens(uow, drop.id, now, "account_merged")
            for address in moved:
                uow.emit(
                    AccountAddressChanged(
                        account_id=keep.id, email=address.email, change="linked", occurred_at=now
                    ),
                    key=keep.id,
                )
            # Keyed by the merged account: after every earlier event about it.
            uow.emit(
                AccountMerged(kept_account_id=keep.id, merged_account_id=drop.id, merged_at=now),
                key=drop.id,
            )
            await uow.commit()
        log.info(
            "accounts merged",
            kept_account_id=str(keep.id),
            merged_account_id=str(drop.id),
            addresses=len(moved),
        )
        return Merge(keep.id, drop.id, now, changed=True)
