"""Membership's features on a real migrated PostgreSQL, without HTTP and without a broker.

``Membership`` is one membership process as ``app.spec()`` wires it: the use cases
(``container.build_use_cases``) and the consumer's handler table share one ``Waiters``
and one ``Wakeup``, so an answer from identity wakes the request waiting for it and
the import worker. Identity is not running: the tests answer membership's commands
as identity would (``created``, ``rejected``, ``batch_answer``) and deliver the
answers through membership's own consumer, so the inbox and outbox behave as in
production. What membership emitted is read back from its outbox table.

One PostgreSQL serves the whole directory (starting one takes seconds on a busy
machine): every test works in departments and addresses of its own, and what works
across departments (the invitation sweep, the import worker) is asserted per
department.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.envelope import Payload, RawEnvelope, wrap
from prodigy_users.contracts.identity import (
    AccountAwaitingConfirmation,
    AccountBatchAnswered,
    AccountCreated,
    AccountCreationRejected,
    AccountRequestLapsed,
    BatchAccount,
    CreateAccount,
    CreateAccounts,
)
from prodigy_users.contracts.membership import InvitationLinkIssued, Role
from prodigy_users.contracts.topics import PAYLOADS, topic_of
from prodigy_users.membership.app import identity_answers, spec
from prodigy_users.membership.consumers import handlers
from prodigy_users.membership.container import UseCases, build_use_cases
from prodigy_users.membership.imports.answers import ImportAnswers
from prodigy_users.membership.imports.wakeup import Wakeup
from prodigy_users.membership.members.waiters import Waiters
from prodigy_users.membership.settings import Settings
from prodigy_users.runtime.auth import OPERATOR_SUBJECT, Principal
from prodigy_users.runtime.consumer import Consumer
from prodigy_users.runtime.keys import (
    PASSWORD_HASH,
    SealKey,
    generate_keys,
    load_seal_key,
    unseal,
)
from prodigy_users.runtime.messaging_tables import inbox, outbox
from tests.integration.consumers import Record, consumer_of
from tests.integration.databases import own_database
from tests.support import random_email, wait_for

P = TypeVar("P", bound=Payload)
T = TypeVar("T")

# Long enough for a test to deliver identity's answer while a call waits for it.
PATIENT_WAIT_S = 30.0


@dataclass(frozen=True)
class Department:
    """A department made for one test, with its first admin."""

    id: uuid.UUID
    admin_id: uuid.UUID

    @property
    def admin(self) -> Principal:
        """The first admin, signed in."""
        return Principal(account_id=self.admin_id)


def created(command: CreateAccount, account_id: uuid.UUID | None = None) -> AccountCreated:
    """Identity made the account ``command`` asked for."""
    return AccountCreated(
        account_id=account_id or uuid.uuid4(),
        email=command.email,
        name=command.name,
        request_id=command.request_id,
        department_id=command.department_id,
    )


def rejected(
    command: CreateAccount, existing_account_id: uuid.UUID | None = None
) -> AccountCreationRejected:
    """Identity refused: some account already has the address."""
    return AccountCreationRejected(
        request_id=command.request_id,
        email=command.email,
        reason="account_exists",
        department_id=command.department_id,
        existing_account_id=existing_account_id,
    )


def awaiting(command: CreateAccount) -> AccountAwaitingConfirmation:
    """Identity made the account unconfirmed and emailed the confirmation link."""
    assert command.confirm_email, "only a registration that must prove its address waits"
    return AccountAwaitingConfirmation(
        request_id=command.request_id,
        email=command.email,
        department_id=command.department_id,
        expires_at=datetime.now(UTC) + timedelta(hours=24),
    )


def lapsed(
    command: CreateAccount, reason: Literal["expired", "superseded"] = "expired"
) -> AccountRequestLapsed:
    """Nobody confirmed the address in time (or another request took it over)."""
    return AccountRequestLapsed(
        request_id=command.request_id,
        email=command.email,
        department_id=command.department_id,
        reason=reason,
    )


def batch_answer(
    command: CreateAccounts, existing: dict[str, uuid.UUID]
) -> tuple[AccountBatchAnswered, list[AccountCreated]]:
    """Identity's answer to a batch: a new account for every address ``existing`` (by
    email key) does not hold, with the ``AccountCreated`` each new account also gets."""
    made: list[BatchAccount] = []
    had: list[BatchAccount] = []
    announced: list[AccountCreated] = []
    for asked in command.accounts:
        holder = existing.get(email_key(str(asked.email)))
        if holder is not None:
            had.append(BatchAccount(email=asked.email, account_id=holder))
            continue
        account_id = uuid.uuid4()
        made.append(BatchAccount(email=asked.email, account_id=account_id))
        announced.append(
            AccountCreated(
                account_id=account_id,
                email=asked.email,
                name=asked.name,
                department_id=command.department_id,
                batch_id=command.request_id,
            )
        )
    answer = AccountBatchAnswered(
        request_id=command.request_id,
        department_id=command.department_id,
        created=made,
        existing=had,
    )
    return answer, announced


@dataclass
class Membership:
    """One membership process on the test database, and what the tests read of it."""

    engine: AsyncEngine
    settings: Settings
    # ``sync_wait_s`` short: a request identity has not answered ends pending (a 202).
    use_cases: UseCases
    # The same process, waiting long enough for a test to answer while it waits.
    patient: UseCases
    consumer: Consumer
    seal_key: SealKey
    # Identity's key: opens the password hashes of registrations.
    identity_seal_key: SealKey

    # -- identity's side ------------------------------------------------------------------

    def unsealed_hash(self, sealed: str) -> str:
        """A registration's password hash as identity opens it."""
        return unseal(self.identity_seal_key, sealed, PASSWORD_HASH)

    async def deliver(self, payload: Payload) -> bytes:
        """Identity's message, applied by membership's consumer; its bytes, to redeliver."""
        body = wrap(payload, producer="identity", key=str(uuid.uuid4())).encode()
        await self.redeliver(payload, body)
        return body

    async def redeliver(self, payload: Payload, body: bytes) -> None:
        """The same message again (Kafka delivers at least once)."""
        await self.consumer.process_batch(
            [(topic_of(type(payload)), Record(body))], self.consumer.by_type()
        )

    async def command_for(
        self, email: str, task: asyncio.Future[Any] | None = None
    ) -> CreateAccount:
        """The ``CreateAccount`` membership sent for ``email`` (waited for; if ``task``
        fails first, its error)."""

        async def probe() -> CreateAccount | None:
            found = await self.commands(CreateAccount, email=email)
            if not found and task is not None and task.done():
                await task  # raises what went wrong
                raise AssertionError(f"the call ended without asking for {email}'s account")
            return found[-1] if found else None

        return await wait_for(probe, timeout=10, interval=0.01, what=f"CreateAccount {email}")

    async def answered(
        self, call: Awaitable[T], email: str, answer: Callable[[CreateAccount], Payload]
    ) -> T:
        """Run ``call`` (a request for ``email``'s account) while identity answers it."""
        task = asyncio.ensure_future(call)
        try:
            await self.deliver(answer(await self.command_for(email, task)))
            return await asyncio.wait_for(task, PATIENT_WAIT_S)
        finally:
            task.cancel()

    async def announce(self, email: str, name: str = "Known Person") -> uuid.UUID:
        """Identity's event about an account made elsewhere: membership remembers it."""
        account_id = uuid.uuid4()
        await self.deliver(AccountCreated(account_id=account_id, email=email, name=name))
        return account_id

    # -- fixtures for one test --------------------------------------------------------------

    async def department(self, name: str = "Springfield EMS") -> Department:
        """A new department whose first admin's account identity makes."""
        email = random_email("admin")
        department_id, op = await self.answered(
            self.patient.departments.create(
                name=name, admin_name="Ada Admin", admin_email=email, requested_by=OPERATOR_SUBJECT
            ),
            email,
            created,
        )
        assert op.status == "succeeded", op
        assert op.result is not None
        return Department(department_id, uuid.UUID(op.result["account_id"]))

    async def member(
        self, dept: Department, role: Role = "member", name: str = "Mo Member"
    ) -> uuid.UUID:
        """A person the admin adds (identity makes their account); their account id."""
        email = random_email("member")
        op = await self.answered(
            self.patient.members.add(
                department_id=dept.id,
                name=name,
                email=email,
                role=role,
                requested_by=dept.admin_id,
            ),
            email,
            created,
        )
        assert op.status == "succeeded", op
        assert op.result is not None
        return uuid.UUID(op.result["account_id"])

    async def invite(
        self, dept: Department, email: str, role: Role | None = None
    ) -> tuple[uuid.UUID, str]:
        """The admin invites ``email``: the invitation and its token, as the emailed link
        carries it (opened from the event notifications reads)."""
        [result] = await self.use_cases.invitations.invite(dept.id, email, role, dept.admin)
        assert result.outcome == "invited" and result.invitation_id is not None, result
        return result.invitation_id, await self.token_of(dept, result.invitation_id)

    async def token_of(self, dept: Department, invitation_id: uuid.UUID) -> str:
        """The token of the invitation's last ``InvitationLinkIssued``, unsealed."""
        issued = [
            e
            for e in await self.events(dept.id, InvitationLinkIssued)
            if e.invitation_id == invitation_id
        ]
        assert issued, f"no link was issued for invitation {invitation_id}"
        return unseal(self.seal_key, issued[-1].sealed_token)

    async def email_of(self, dept: Department, account_id: uuid.UUID) -> str:
        """A current member's email."""
        row = await self.use_cases.members.current(dept.id, account_id)
        assert row is not None
        return str(row.email)

    # -- reading what happened ------------------------------------------------------------

    async def rows(self, statement: sa.Select[Any]) -> list[sa.Row[Any]]:
        """What a query finds now."""
        async with self.engine.connect() as conn:
            return list(await conn.execute(statement))

    async def _outbox(self, **data: str) -> list[sa.Row[Any]]:
        statement = sa.select(outbox).order_by(outbox.c.id)
        for field, value in data.items():
            statement = statement.where(outbox.c.envelope["data"][field].astext == value)
        return await self.rows(statement)

    async def event_types(self, department_id: uuid.UUID) -> list[str]:
        """Every message membership wrote about the department, in order, by type."""
        return [r.type for r in await self._outbox(department_id=str(department_id))]

    async def events(self, department_id: uuid.UUID, kind: type[P]) -> list[P]:
        """The department's messages of one type, in order, read as their model."""
        return [
            kind.model_validate(r.envelope["data"])
            for r in await self._outbox(department_id=str(department_id))
            if r.type == kind.TYPE
        ]

    async def commands(self, kind: type[P], **data: str) -> list[P]:
        """Messages of one type whose payload has these values, in order."""
        assert PAYLOADS[kind.TYPE] is kind
        return [
            kind.model_validate(r.envelope["data"])
            for r in await self._outbox(**data)
            if r.type == kind.TYPE
        ]

    async def outbox_text(self, department_id: uuid.UUID) -> str:
        """The department's outbox rows as text (to look for what must never be there)."""
        return " ".join(
            str(r.envelope) for r in await self._outbox(department_id=str(department_id))
        )

    async def applied(self, body: bytes) -> int:
        """Inbox rows of the message in ``body`` (1 once applied, never 2)."""
        event_id = RawEnvelope.model_validate_json(body).event_id
        found = await self.rows(
            sa.select(inbox).where(inbox.c.consumer == "membership", inbox.c.event_id == event_id)
        )
        return len(found)


@pytest.fixture(scope="package")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Key files as ``prodigy-users`` makes them: the link secret and the seal key pair."""
    return generate_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="package")
async def engine() -> AsyncIterator[AsyncEngine]:
    """A migrated membership database on a PostgreSQL of its own, one for the directory."""
    async with own_database("membership") as eng:
        yield eng


def build(engine: AsyncEngine, settings: Settings, keys: dict[str, Path]) -> Membership:
    """One membership process on ``engine``, wired as ``app.spec`` wires it."""
    waiters = Waiters()
    wakeup = Wakeup()
    table = handlers(identity_answers(settings, waiters), ImportAnswers(wakeup))
    service = spec(settings)
    assert set(table) == set(service.handlers), "the table app.spec hands the consumer"
    consumer = consumer_of(replace(service, handlers=table), engine)
    # No broker to dead-letter to: a message membership cannot apply fails the test
    # (ReplayFailed) instead of retrying a publish for ever.
    consumer.dead_letter = False
    patient = settings.model_copy(update={"sync_wait_s": PATIENT_WAIT_S})
    return Membership(
        engine=engine,
        settings=settings,
        use_cases=build_use_cases(engine, settings, waiters, wakeup),
        patient=build_use_cases(engine, patient, waiters, wakeup),
        consumer=consumer,
        seal_key=load_seal_key(keys["seal_private"]),
        identity_seal_key=load_seal_key(keys["identity_seal_private"]),
    )


@pytest.fixture(scope="package")
def settings(keys: dict[str, Path]) -> Settings:
    """Short waits; small import chunks and batches, so a few rows take several steps."""
    return Settings(
        sync_wait_s=0.2,
        link_secret_path=keys["links"],
        seal_public_key_path=keys["seal_public"],
        identity_seal_public_key_path=keys["identity_seal_public"],
        app_base_url="http://app.test",
        import_chunk_rows=4,
        import_batch_size=2,
    )


@pytest.fixture(scope="package")
def membership(engine: AsyncEngine, settings: Settings, keys: dict[str, Path]) -> Membership:
    """Membership's use cases and consumer on the directory's database."""
    return build(engine, settings, keys)
