"""What identity consumes: account requests (single or in batches) and password resets."""

from __future__ import annotations

from collections.abc import Mapping

from prodigy_users.contracts.envelope import Payload
from prodigy_users.contracts.identity import CreateAccount, CreateAccounts, IssuePasswordReset
from prodigy_users.runtime.consumer import Handler

from .batch import AccountBatches
from .service import Identity


def handlers(identity: Identity) -> Mapping[type[Payload], Handler]:
    """Payload type -> handler."""
    return {
        CreateAccount: identity.create_account,
        CreateAccounts: AccountBatches(identity).create_accounts,
        IssuePasswordReset: identity.issue_password_reset,
    }
