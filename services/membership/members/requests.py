"""Requests that wait for identity: a new account is asked for, and what needed it
(a membership, a department's first admin, a registration) follows its answer.

The request is an ``operations`` row written with the ``CreateAccount`` command in
one unit of work; identity answers on its topic (``AccountCreated`` or
``AccountCreationRejected``), and the answer completes the row in the consumer's
transaction. The HTTP call that made the request waits for that briefly
(``sync_wait_s``), then answers 202 with the operation to poll.

A registration whose address must be proved first (``confirm_email``) is answered
``AccountAwaitingConfirmation``: the row waits (``awaiting_confirmation``) until
``AccountCreated`` (the person used the link) or ``AccountRequestLapsed`` (they did
not in time, or another request took the address over).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import (
    AccountAwaitingConfirmation,
    AccountCreated,
    AccountCreationRejected,
    AccountRequestLapsed,
    CreateAccount,
)
from prodigy_users.runtime.db import reading
from prodigy_users.runtime.errors import DomainError
from prodigy_users.runtime.idempotency_rules import KEY_TTL
from prodigy_users.runtime.problems import problem_of
from prodigy_users.runtime.uow import UnitOfWork

from ..errors import PROBLEMS, REGISTRATION_SUPERSEDED, AccountExists, RegistrationLapsed
from ..rules import OPEN_STATUSES
from . import store
from .joining import Joined
from .waiters import Waiters, announce

OperationKind = Literal["add_member", "create_department", "register"]


@dataclass(frozen=True)
class Operation:
    """A request whose outcome may take longer than the HTTP call.

    ``requested_by`` is None for a registration: nobody was signed in, and the
    operation's unguessable id is what lets its page be read.
    """

    id: uuid.UUID
    kind: str
    status: str
    department_id: uuid.UUID
    requested_by: uuid.UUID | None
    result: dict[str, Any] | None
    problem: dict[str, Any] | None


def _operation(row: Any) -> Operation:
    return Operation(
        row.id, row.kind, row.status, row.department_id, row.requested_by, row.result, row.problem
    )


async def request_account(
    uow: UnitOfWork,
    *,
    operation_id: uuid.UUID,
    kind: OperationKind,
    department_id: uuid.UUID,
    requested_by: uuid.UUID | None,
    name: str,
    email: str,
    role: str | None,
    sealed_password_hash: str | None = None,
    extra: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    confirm_email: bool = False,
) -> None:
    """Record the request and ask identity for the account, in the caller's unit of work.

    ``idempotency_key`` (``runtime.idempotency.current_key()``) is kept with the request,
    for ``earlier_request``. ``confirm_email``: the account waits for its address to be
    confirmed before the request completes.
    """
    if idempotency_key is not None:
        await store.forget_operation_key(uow.conn, idempotency_key, KEY_TTL)
    await store.insert_operation(
        uow.conn,
        operation_id=operation_id,
        kind=kind,
        department_id=department_id,
        requested_by=requested_by,
        request={
            "name": name,
            "email": email,
            "role": role,
            "confirm_email": confirm_email,
            **(extra or {}),
        },
        idempotency_key=idempotency_key,
    )
    uow.emit(
        CreateAccount(
            request_id=operation_id,
            email=email,
            name=name,
            department_id=department_id,
            sealed_password_hash=sealed_password_hash,
            confirm_email=confirm_email,
        ),
        key=email_key(email),
    )


async def earlier_request(conn: AsyncConnection, idempotency_key: str | None) -> Operation | None:
    """The request that an earlier attempt with this Idempotency-Key made, if any.

    The attempt committed its request and its process died before the answer was
    stored: the retry runs again, and must follow that request instead of asking for
    the account a second time (identity would say it exists).
    """
    if idempotency_key is None:
        return None
    row = await store.operation_by_key(conn, idempotency_key, KEY_TTL)
    return _operation(row) if row else None


class Operations:
    """Reading requests and waiting for their outcome."""

    def __init__(self, engine: AsyncEngine, waiters: Waiters, sync_wait_s: float) -> None:
        self.engine = engine
        self.waiters = waiters
        self.sync_wait_s = sync_wait_s

    async def wait_for(self, operation_id: uuid.UUID) -> Operation:
        """The operation once it completes, or as it stands after ``sync_wait_s``."""
        final: Operation | None = None

        async def done() -> bool:
            nonlocal final
            op = await self.get(operation_id)
            if op is not None and op.status not in OPEN_STATUSES:
                final = op  # kept: no need to read it again
            return final is not None

        await self.waiters.wait(operation_id, done, self.sync_wait_s)
        op = final or await self.get(operation_id)
        assert op is not None
        return op

    async def get(self, operation_id: uuid.UUID) -> Operation | None:
        """An operation by id."""
        async with reading(self.engine).connect() as conn:
            row = await store.operation(conn, operation_id)
        return _operation(row) if row else None


Join = Callable[[UnitOfWork, Any, uuid.UUID], Awaitable[Joined]]
# Why a request ended without a member: the address has an account (and that is a
# failure), its confirmation lapsed, or the join itself was refused.
Ending = Literal["account_exists", "lapsed", "refused"]
Ended = Callable[[UnitOfWork, Any, Ending], Awaitable[None]]


@dataclass(frozen=True)
class Completion:
    """What finishes a request of one kind once its account exists.

    ``join`` makes the account a member (it gets the operation row and the account);
    ``existing_joins``: an address that already has an account joins with it instead
    of failing (a department's first admin); ``exists_detail`` is what the person is
    told when the address has an account and that is a failure; ``ended`` runs, in
    the same transaction, when the request ends without a member (a registration
    lets go of its invitation, and tells an address's owner how to sign in).
    """

    join: Join
    existing_joins: bool = False
    exists_detail: str | None = None
    ended: Ended | None = None


class IdentityAnswers:
    """Applies identity's answers to account requests (in the consumer's transaction)."""

    def __init__(self, waiters: Waiters, completions: Mapping[str, Completion]) -> None:
        self.waiters = waiters
        self.completions = completions

    async def on_account_created(
        self, uow: UnitOfWork, env: RawEnvelope, event: AccountCreated
    ) -> None:
        """Identity made the account: remember it; a membership it was asked for follows."""
        if event.batch_id is not None:
            return  # an import's account: the batch's answer records it, with the rest
        await store.upsert_account(uow.conn, event.account_id, event.email, event.name)
        if event.request_id is None:
            return
        await self._complete(uow, event.request_id, event.account_id)

    async def on_account_rejected(
        self, uow: UnitOfWork, env: RawEnvelope, event: AccountCreationRejected
    ) -> None:
        """Identity refused: the request fails, unless an existing account may join."""
        row = await store.operation(uow.conn, event.request_id, lock=True)
        if row is None or row.status not in OPEN_STATUSES:
            return
        completion = self.completions[row.kind]
        if completion.existing_joins and event.existing_account_id is not None:
            await self._complete(uow, event.request_id, event.existing_account_id)
            return
        await self._end(uow, row, "account_exists", AccountExists(completion.exists_detail))

    async def on_awaiting_confirmation(
        self, uow: UnitOfWork, env: RawEnvelope, event: AccountAwaitingConfirmation
    ) -> None:
        """The account exists unconfirmed: the request waits for the address's owner.

        Only a pending request moves: the answers come on different keys, so the
        account's ``AccountCreated`` (the person was quick) may have completed it first.
        """
        row = await store.operation(uow.conn, event.request_id, lock=True)
        if row is None or row.status != "pending":
            return
        await store.set_operation_status(uow.conn, row.id, "awaiting_confirmation")
        await self._announce(uow, row.id)

    async def on_request_lapsed(
        self, uow: UnitOfWork, env: RawEnvelope, event: AccountRequestLapsed
    ) -> None:
        """The address was not confirmed (in time, or before another request took it):
        the request fails, and whatever it held is let go."""
        row = await store.operation(uow.conn, event.request_id, lock=True)
        if row is None or row.status not in OPEN_STATUSES:
            return
        detail = REGISTRATION_SUPERSEDED if event.reason == "superseded" else None
        await self._end(uow, row, "lapsed", RegistrationLapsed(detail))

    async def _complete(
        self, uow: UnitOfWork, operation_id: uuid.UUID, account_id: uuid.UUID
    ) -> None:
        row = await store.operation(uow.conn, operation_id, lock=True)
        if row is None or row.status not in OPEN_STATUSES:
            return
        try:
            joined = await self.completions[row.kind].join(uow, row, account_id)
        except DomainError as error:
            await self._end(uow, row, "refused", error)
            return
        result = {"account_id": str(account_id), "status": joined.status, "role": joined.role}
        if joined.department_name is not None:
            result["department_name"] = joined.department_name
        await self._finish(uow, row.id, result=result)

    async def _end(self, uow: UnitOfWork, row: Any, ending: Ending, error: DomainError) -> None:
        """The request fails with ``error``; its kind's ``ended`` runs first."""
        ended = self.completions[row.kind].ended
        if ended is not None:
            await ended(uow, row, ending)
        await self._finish(uow, row.id, failed=error)

    async def _finish(
        self,
        uow: UnitOfWork,
        operation_id: uuid.UUID,
        *,
        result: dict[str, Any] | None = None,
        failed: DomainError | None = None,
    ) -> None:
        await store.complete_operation(
            uow.conn,
            operation_id,
            status="failed" if failed is not None else "succeeded",
            result=result,
            problem=problem_of(failed, PROBLEMS).body() if failed is not None else None,
            now=datetime.now(UTC),
        )
        await self._announce(uow, operation_id)

    async def _announce(self, uow: UnitOfWork, operation_id: uuid.UUID) -> None:
        # This process's waiter at once; the others' through the channel.
        uow.after_commit(lambda: self.waiters.notify(operation_id))
        await announce(uow, operation_id)
