"""What identity consumes: account requests (single or in batches), admins' password
resets and name corrections, addresses proved by accepting an invitation, and the
public reset requests it recorded itself."""

from __future__ import annotations

from collections.abc import Mapping

from prodigy_users.contracts.envelope import Payload
from prodigy_users.contracts.identity import (
    CreateAccount,
    CreateAccounts,
    IssuePasswordReset,
    LinkAddress,
    PasswordResetRequested,
    RenameAccount,
)
from prodigy_users.runtime.consumer import Handler

from .addresses import AddressLinks
from .batch import AccountBatches
from .commands import Commands
from .confirmations import Confirmations
from .links import Links
from .passwords import SealedPasswords
from .profile import rename_account


def handlers(
    links: Links, confirmations: Confirmations, passwords: SealedPasswords
) -> Mapping[type[Payload], Handler]:
    """Payload type -> handler."""
    commands = Commands(links, confirmations, passwords)
    return {
        CreateAccount: commands.create_account,
        CreateAccounts: AccountBatches(links, confirmations).create_accounts,
        IssuePasswordReset: commands.issue_password_reset,
        PasswordResetRequested: commands.reset_requested,
        RenameAccount: rename_account,
        LinkAddress: AddressLinks(confirmations).link_address,
    }
