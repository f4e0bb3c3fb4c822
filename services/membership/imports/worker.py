"""The import worker: takes every stored row of a running import to its outcome.

It resumes from the database whenever the service starts: rows are claimed in
chunks (``FOR UPDATE SKIP LOCKED``, so replicas share the work) and each chunk
commits with what it caused (account requests in the outbox, invitations,
member changes), so a crash repeats at most the chunk in hand, and repeating it
is harmless: invitations and changes are idempotent, and account requests wait
for identity's answer, which comes once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.identity import AccountRequest, CreateAccounts
from prodigy_users.contracts.membership import Role
from prodigy_users.runtime.auth import Principal
from prodigy_users.runtime.db import reading
from prodigy_users.runtime.errors import DomainError
from prodigy_users.runtime.loops import keep_running
from prodigy_users.runtime.uow import UnitOfWork

from ..errors import GroupNameTaken
from ..groups import store as group_store
from ..groups.rules import group_key
from ..groups.service import Groups
from ..invitations.service import Invitations
from ..members import store as member_store
from ..members.lifecycle import UNSET, Lifecycle
from ..rules import acting_admin
from ..settings import Settings
from ..units import unit_of_work
from . import store
from .answers import finish_if_done
from .rules import (
    Changes,
    Decision,
    Member,
    PlannedRow,
    classify,
    invited_reason,
)
from .wakeup import Wakeup

# Invitations take at most this many addresses per call; updates run one by one.
INVITE_CHUNK = 500
UPDATE_CHUNK = 100


class ImportWorker:
    """One per process; ``run_forever`` is the service's background task."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        invitations: Invitations,
        lifecycle: Lifecycle,
        groups: Groups,
        wakeup: Wakeup,
    ) -> None:
        self.engine = engine
        self.invitations = invitations
        self.lifecycle = lifecycle
        self.groups = groups
        self.wakeup = wakeup
        self.chunk = settings.import_chunk_rows
        self.batch = settings.import_batch_size
        self.poll = settings.import_poll_interval_s

    async def run_forever(self) -> None:
        """Work while there is work; otherwise wait for a wake-up or the next poll."""
        await keep_running(
            self.step, what="import worker", idle=lambda: self.wakeup.wait(self.poll)
        )

    async def step(self) -> bool:
        """Advance every running import by one chunk; True if anything moved."""
        async with reading(self.engine).connect() as conn:
            running = await store.running(conn)
        busy = False
        for imp in running:
            busy = await self.advance(imp) or busy
        return busy

    async def advance(self, imp: Any) -> bool:
        """One chunk of one import; when nothing is left to do, try to close it."""
        if not imp.groups_ready:
            return await self._prepare_groups(imp)
        moved = await self._classify(imp)
        moved = await self._invite(imp) or moved
        moved = await self._update(imp) or moved
        if not moved:
            async with unit_of_work(self.engine) as uow:
                if await finish_if_done(uow, imp.id):
                    await uow.commit()
        return moved

    # -- groups ------------------------------------------------------------------------

    async def _prepare_groups(self, imp: Any) -> bool:
        """Create the groups the file names that the department does not have yet."""
        async with self.engine.connect() as conn, conn.begin():
            locked = await store.lock_import(conn, imp.id, skip_locked=True)
            if locked is None or locked.groups_ready:
                return False
            if not imp.dry_run:
                have = await group_store.group_ids(conn, imp.department_id)
                missing: dict[str, str] = {}
                for name in await store.group_names(conn, imp.id):
                    if group_key(name) not in have:
                        missing.setdefault(group_key(name), name)
                for name in missing.values():
                    await self._create_group(imp.department_id, name)
            await store.set_groups_ready(conn, imp.id)
        return True

    async def _create_group(self, department_id: uuid.UUID, name: str) -> None:
        try:
            await self.groups.create(department_id, name)
        except GroupNameTaken:
            pass  # another admin created it a moment ago: it exists, which is what we wanted
        except IntegrityError:
            pass  # another admin created it a moment ago: it exists, which is what we wanted

    # -- classifying -------------------------------------------------------------------

    async def _classify(self, imp: Any) -> bool:
        """Decide a chunk of pending rows; new people are asked of identity in batches."""
        async with unit_of_work(self.engine) as uow:
            rows = await store.open_rows(uow.conn, imp.id, "pending", self.chunk)
            if not rows:
                return False
            decisions = await self._decide(uow, imp, rows)
            updates: list[dict[str, Any]] = []
            creating: list[Any] = []
            for row, decision in zip(rows, decisions, strict=True):
                if decision.step == "create" and not imp.dry_run:
                    creating.append(row)
                    continue
                updates.append(self._row_update(imp, row, decision))
            for start in range(0, len(creating), self.batch):
                batch = creating[start : start + self.batch]
                batch_id = uuid.uuid4()
                uow.emit(
                    CreateAccounts(
                        request_id=batch_id,
                        department_id=imp.department_id,
                        # Validated on upload; not validated again, address by address.
                        accounts=[
                            AccountRequest.model_construct(email=r.email, name=r.name)
                            for r in batch
                        ],
                    ),
                    key=batch_id,
                )
                updates.extend(
                    {"line": r.line, "state": "requested", "batch_id": batch_id} for r in batch
                )
            await store.set_rows(uow.conn, imp.id, updates)
            await finish_if_done(uow, imp.id)
            await uow.commit()
        return True

    async def _decide(self, uow: UnitOfWork, imp: Any, rows: list[Any]) -> list[Decision]:
        conn, department_id = uow.conn, imp.department_id
        keys = [r.email_normalised for r in rows]
        members = await member_store.current_members_by_email(conn, department_id, keys)
        accounts = await member_store.known_accounts(conn, keys)
        holders = await member_store.employee_ids_in_use(
            conn, department_id, [r.employee_id for r in rows if r.employee_id]
        )
        member_groups = await group_store.groups_of_accounts(
            conn, department_id, [m.account_id for m in members.values()]
        )
        decisions = []
        for row in rows:
            found = members.get(row.email_normalised)
            member = (
                Member(
                    found.account_id, found.role, found.employee_id, member_groups[found.account_id]
                )
                if found is not None
                else None
            )
            decisions.append(
                classify(
                    _planned(row),
                    mode=imp.mode,
                    member=member,
                    has_account=row.email_normalised in accounts,
                    employee_id_holder=holders.get(row.employee_id) if row.employee_id else None,
                )
            )
        return decisions

    def _row_update(self, imp: Any, row: Any, decision: Decision) -> dict[str, Any]:
        """A decided row: final now, or handed on to the invite or update step.

        A dry run stops every row here, with the outcome it would have had.
        """
        if decision.step == "done":
            return {
                "line": row.line,
                "state": "done",
                "outcome": decision.outcome,
                "reason": decision.reason,
            }
        if decision.step == "create":  # only a dry run gets here
            return {"line": row.line, "state": "done", "outcome": "created"}
        if decision.step == "invite":
            if imp.dry_run:
                return {
                    "line": row.line,
                    "state": "done",
                    "outcome": "invited",
                    "reason": invited_reason(
                        already_invited=False, has_extras=bool(row.employee_id or row.groups)
                    ),
                }
            return {"line": row.line, "state": "invite"}
        assert decision.changes is not None
        account_id = decision.account_id
        if imp.dry_run:
            return {
                "line": row.line,
                "state": "done",
                "outcome": "updated",
                "reason": decision.changes.describe(),
                "account_id": account_id,
            }
        return {
            "line": row.line,
            "state": "update",
            "account_id": account_id,
            "changes": decision.changes.as_json(),
        }

    # -- invitations -------------------------------------------------------------------

    async def _invite(self, imp: Any) -> bool:
        """Invite a chunk of addresses that already have an account (reusing invitations)."""
        async with unit_of_work(self.engine) as uow:
            rows = await store.open_rows(uow.conn, imp.id, "invite", INVITE_CHUNK)
            # Another admin adding the same person right now: once that settles, the
            # address is a member (already_member) or still needs its invitation.
            busy = await member_store.pending_requests(
                uow.conn, imp.department_id, [r.email_normalised for r in rows]
            )
            rows = [r for r in rows if r.email_normalised not in busy]
            if not rows:
                return False
            by_role: dict[str | None, list[Any]] = defaultdict(list)
            for row in rows:
                by_role[row.role].append(row)
            admin = Principal(account_id=imp.requested_by)
            updates = []
            for role, chunk in by_role.items():
                results = await self.invitations.invite(
                    imp.department_id,
                    [r.email for r in chunk],
                    cast(Role | None, role),
                    admin,
                    names={r.email_normalised: r.name for r in chunk if r.name},
                )
                by_email = {email_key(r.email): r for r in results}
                for row in chunk:
                    result = by_email.get(row.email_normalised)
                    updates.append(_invited(row, result))
            await store.set_rows(uow.conn, imp.id, updates)
            await finish_if_done(uow, imp.id)
            await uow.commit()
        return True

    # -- updates -----------------------------------------------------------------------

    async def _update(self, imp: Any) -> bool:
        """Apply the changes of a chunk of update rows, each through the lifecycle rules."""
        async with unit_of_work(self.engine) as uow:
            rows = await store.open_rows(uow.conn, imp.id, "update", UPDATE_CHUNK)
            if not rows:
                return False
            groups = await group_store.group_ids(uow.conn, imp.department_id)
            updates = [await self._apply(imp, row, groups) for row in rows]
            await store.set_rows(uow.conn, imp.id, updates)
            await finish_if_done(uow, imp.id)
            await uow.commit()
        return True

    async def _apply(self, imp: Any, row: Any, groups: dict[str, uuid.UUID]) -> dict[str, Any]:
        changes = Changes.from_json(row.changes or {})
        done: dict[str, Any] = {"line": row.line, "state": "done", "account_id": row.account_id}
        try:
            await self.lifecycle.change(
                imp.department_id,
                row.account_id,
                imp.requested_by,
                role=cast(Role, changes.role[1]) if changes.role else None,
                employee_id=changes.employee_id[1] if changes.employee_id else UNSET,
                import_id=imp.id,
            )
            # The events name the upload and its admin (an operator's: nobody).
            by = acting_admin(imp.requested_by)
            for name in changes.groups_added:
                group_id = groups.get(group_key(name))
                if group_id is not None:
                    await self.groups.add_member(
                        imp.department_id, group_id, row.account_id, by=by, import_id=imp.id
                    )
            for name in changes.groups_removed:
                group_id = groups.get(group_key(name))
                if group_id is not None:
                    await self.groups.remove_member(
                        imp.department_id, group_id, row.account_id, by=by, import_id=imp.id
                    )
        except DomainError as refused:
            return {**done, "outcome": "invalid", "reason": refused.detail}
        return {**done, "outcome": "updated", "reason": changes.describe()}


def _planned(row: Any) -> PlannedRow:
    return PlannedRow(
        line=row.line,
        cells=tuple(row.cells),
        name=row.name,
        email=row.email,
        email_normalised=row.email_normalised,
        role=row.role,
        employee_id=row.employee_id,
        groups=tuple(row.groups or ()),
    )


def _invited(row: Any, result: Any) -> dict[str, Any]:
    """A row's outcome from what ``Invitations.invite`` said about its address."""
    done = {"line": row.line, "state": "done"}
    extras = bool(row.employee_id or row.groups)
    if result is None:
        return {**done, "outcome": "invalid", "reason": "the invitation could not be made"}
    if result.outcome == "invited":
        return {
            **done,
            "outcome": "invited",
            "reason": invited_reason(already_invited=False, has_extras=extras),
        }
    if result.outcome == "already_invited":
        return {
            **done,
            "outcome": "invited",
            "reason": invited_reason(already_invited=True, has_extras=extras),
        }
    if result.outcome == "already_member":
        return {**done, "outcome": "already_member", "reason": "already a member"}
    return {**done, "outcome": "invalid", "reason": result.reason or "not a valid address"}
