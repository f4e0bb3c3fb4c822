"""The single-use links that prove a person receives mail at a new address.

Changing the login email and linking another address both send a link to the new
address and act when it is opened. The token lives hashed in ``credential_tokens``
with the address it was sent to; issuing one retires the account's earlier links of
the same purpose, and opening it spends it whatever the outcome.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .domain import new_token, token_hash, token_refusal
from .errors import LinkExpired, LinkInvalid, LinkUsed

_REFUSALS = {"invalid": LinkInvalid, "used": LinkUsed, "expired": LinkExpired}


async def issue(
    uow: UnitOfWork,
    account_id: uuid.UUID,
    purpose: str,
    address: str,
    now: datetime,
    ttl: timedelta,
) -> tuple[str, datetime]:
    """A new link token for ``address`` and when it expires (earlier ones stop working)."""
    await store.retire_tokens(uow.conn, account_id, now, purpose)
    token = new_token()
    expires_at = now + ttl
    await store.insert_token(
        uow.conn, account_id, token_hash(token), purpose, expires_at, new_email=address
    )
    return token, expires_at


async def spend(uow: UnitOfWork, token: str, purpose: str, now: datetime) -> tuple[uuid.UUID, str]:
    """The account and the address of an opened link, which is spent (and so are the
    account's other links of that purpose); ``LinkInvalid``, ``LinkUsed``,
    ``LinkExpired`` if it cannot be used."""
    hashed = token_hash(token)
    found = await store.lock_token(uow.conn, hashed)
    refusal = token_refusal(found.state if found else None, now, frozenset({purpose}))
    if refusal is not None or found is None:
        raise _REFUSALS[refusal or "invalid"]()
    address = await store.email_change_of(uow.conn, hashed)
    assert address is not None, "address links are issued with their address"
    await store.retire_tokens(uow.conn, found.account_id, now, purpose)
    return found.account_id, address
