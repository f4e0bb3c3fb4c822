"""Batches of account requests (bulk uploads): many accounts in one transaction.

The rule is the one ``CreateAccount`` follows (one account per email, decided by
the unique index), applied with one multi-row insert instead of one per person.
Every new account is announced as a single one is; their credentials emails go to
notifications in one ``PasswordLinksIssued`` and are sent as a single one's are.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import (
    AccountBatchAnswered,
    AccountCreated,
    AccountRequest,
    BatchAccount,
    CreateAccounts,
    PasswordLink,
    PasswordLinksIssued,
)
from prodigy_users.runtime.uow import UnitOfWork

from . import store
from .confirmations import Confirmations
from .domain import new_token, normalise_email, token_hash
from .links import Links


def distinct(requests: list[AccountRequest]) -> dict[str, AccountRequest]:
    """The first request per normalised address, in order."""
    out: dict[str, AccountRequest] = {}
    for request in requests:
        out.setdefault(normalise_email(str(request.email)), request)
    return out


class AccountBatches:
    """Handles ``CreateAccounts``; one per process, built by ``app.spec``."""

    def __init__(self, links: Links, confirmations: Confirmations) -> None:
        self.links = links
        self.confirmations = confirmations

    async def create_accounts(self, uow: UnitOfWork, env: RawEnvelope, cmd: CreateAccounts) -> None:
        """Create an account for every address no account has; answer the whole batch.

        An address whose account was never confirmed (someone registered it and did not
        prove they own it) counts as free: the batch takes that account over, as a new
        account with a set-password link, and the registration waiting for it lapses.
        """
        wanted = distinct(list(cmd.accounts))
        now = datetime.now(UTC)
        unconfirmed = await store.unconfirmed_by_email(uow.conn, list(wanted))
        for key, account in unconfirmed.items():
            await self.confirmations.lapse(uow, account, "superseded")
            await store.take_over(
                uow.conn,
                account.id,
                email=str(wanted[key].email),
                name=wanted[key].name,
                password_hash=None,
                confirmed_at=now,
                now=now,
            )
        inserted = {key: account.id for key, account in unconfirmed.items()}
        inserted |= await store.insert_accounts(
            uow.conn,
            [
                {
                    "id": uuid.uuid4(),
                    "email": str(r.email),
                    "email_normalised": key,
                    "name": r.name,
                    "email_confirmed_at": now,
                }
                for key, r in wanted.items()
                if key not in unconfirmed
            ],
        )
        taken = [key for key in wanted if key not in inserted]
        existing = await store.account_ids_by_email(uow.conn, taken)
        if len(existing) != len(taken):
            # Cannot happen with a committed unique index; retrying the message is safe.
            raise RuntimeError("an address was neither inserted nor found")
        expires_at = now + self.links.ttl("welcome")
        tokens = {key: new_token() for key in inserted}
        await store.insert_tokens(
            uow.conn,
            [
                {
                    "token_hash": token_hash(tokens[key]),
                    "account_id": account_id,
                    "purpose": "welcome",
                    "expires_at": expires_at,
                }
                for key, account_id in inserted.items()
            ],
        )
        # Written in the order they are most waited for (the relay publishes in that
        # order): the answer, which makes the members; the credentials emails; then the
        # announcements. The addresses were validated with the command: the events are
        # built without validating thousands of them again (``model_construct``).
        uow.emit(
            AccountBatchAnswered.model_construct(
                request_id=cmd.request_id,
                department_id=cmd.department_id,
                created=[
                    BatchAccount.model_construct(email=wanted[k].email, account_id=a)
                    for k, a in inserted.items()
                ],
                existing=[
                    BatchAccount.model_construct(email=wanted[k].email, account_id=a)
                    for k, a in existing.items()
                ],
            ),
            key=cmd.request_id,
        )
        if inserted:
            # One message for the batch's credentials emails, not one per person.
            sealed = self.links.sealed_many([tokens[key] for key in inserted])
            uow.emit(
                PasswordLinksIssued.model_construct(
                    request_id=cmd.request_id,
                    department_id=cmd.department_id,
                    purpose="welcome",
                    expires_at=expires_at,
                    links=[
                        PasswordLink.model_construct(
                            account_id=account_id,
                            email=wanted[key].email,
                            name=wanted[key].name,
                            sealed_token=sealed_token,
                        )
                        for (key, account_id), sealed_token in zip(
                            inserted.items(), sealed, strict=True
                        )
                    ],
                ),
                key=cmd.request_id,
            )
        for key, account_id in inserted.items():
            request = wanted[key]
            uow.emit(
                AccountCreated.model_construct(
                    account_id=account_id,
                    email=request.email,
                    name=request.name,
                    department_id=cmd.department_id,
                    batch_id=cmd.request_id,
                ),
                key=account_id,
            )
