"""Revoking an account's access tokens: identity keeps the cut-off in its own database,
in the transaction that decides it (its verifier needs no event), and announces it
(``TokensRevoked``) for the other services' verifiers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from prodigy_users.contracts.identity import TokensRevoked
from prodigy_users.runtime.revocation_store import cut_off
from prodigy_users.runtime.uow import UnitOfWork

Reason = Literal["password_set", "email_confirmed", "signed_out_everywhere", "account_merged"]


async def revoke_tokens(
    uow: UnitOfWork, account_id: uuid.UUID, not_before: datetime, reason: Reason
) -> None:
    """Refuse the account's tokens issued before ``not_before``, here and everywhere."""
    await cut_off(uow.conn, account_id, not_before)
    uow.emit(
        TokensRevoked(account_id=account_id, not_before=not_before, reason=reason),
        key=account_id,
    )
