"""What membership consumes: identity's answers to its account requests (single or batched,
and the registrations that wait for their address to be confirmed), accounts' changed
names and login emails, the addresses linked to them, merged accounts, and the
access-token cut-offs its verifier checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prodigy_users.contracts.envelope import Payload
from prodigy_users.contracts.identity import (
    AccountAddressChanged,
    AccountAwaitingConfirmation,
    AccountBatchAnswered,
    AccountCreated,
    AccountCreationRejected,
    AccountMerged,
    AccountRequestLapsed,
    AccountUpdated,
    TokensRevoked,
)
from prodigy_users.runtime import revocation_store
from prodigy_users.runtime.consumer import Handler

from .imports.answers import ImportAnswers
from .members.accounts import on_account_address_changed, on_account_updated
from .members.merges import on_account_merged
from .members.requests import IdentityAnswers


def handlers(requests: IdentityAnswers, imports: ImportAnswers) -> Mapping[type[Payload], Handler]:
    """Payload type -> handler."""
    return {
        AccountCreated: requests.on_account_created,
        AccountCreationRejected: requests.on_account_rejected,
        AccountAwaitingConfirmation: requests.on_awaiting_confirmation,
        AccountRequestLapsed: requests.on_request_lapsed,
        AccountBatchAnswered: imports.on_batch_answered,
        AccountUpdated: on_account_updated,
        AccountAddressChanged: on_account_address_changed,
        # An operator merged two accounts: the merged one's memberships are the kept one's.
        AccountMerged: on_account_merged,
        TokensRevoked: revocation_store.record,
    }


# An import's accounts are recorded from their batch's answer: their AccountCreated
# would change nothing, so they are not even written to the inbox (ten thousand
# rows for a big upload).
IGNORED: Mapping[type[Payload], Callable[[Any], bool]] = {
    AccountCreated: lambda event: event.batch_id is not None,
}
