"""What identity consumes: account and password-reset requests from membership."""

from __future__ import annotations

from collections.abc import Mapping

from prodigy_users.contracts.envelope import Payload
from prodigy_users.contracts.identity import CreateAccount, IssuePasswordReset
from prodigy_users.runtime.consumer import Handler

from .service import Identity


def handlers(identity: Identity) -> Mapping[type[Payload], Handler]:
    """Payload type -> handler."""
    return {
        CreateAccount: identity.create_account,
        IssuePasswordReset: identity.issue_password_reset,
    }
