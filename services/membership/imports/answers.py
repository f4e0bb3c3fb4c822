"""Identity's answers to import batches, and the end of an import.

Runs in membership's consumer, inside the transaction that records the answer in
the inbox: the new members, their groups, their events and the rows' outcomes
commit together or not at all, so a replayed answer changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from prodigy_users.contracts.email import email_key
from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import AccountBatchAnswered
from prodigy_users.contracts.membership import ImportFinished, MemberAdded, MemberJoinedGroup
from prodigy_users.runtime.uow import UnitOfWork

from ..groups import store as group_store
from ..groups.rules import group_key
from ..members import store as member_store
from ..rules import acting_admin
from . import store
from .rules import OUTCOMES
from .wakeup import Wakeup


async def finish_if_done(uow: UnitOfWork, import_id: uuid.UUID) -> bool:
    """Close the import once no row waits any more; True if this call closed it.

    The import row is locked first and the open rows counted after, in a
    statement of their own: two transactions finishing the last rows at once
    then see each other's commits, and exactly one of them closes the import.
    """
    imp = await store.lock_import(uow.conn, import_id)
    if imp is None or imp.status != "running":
        return False
    if await store.has_open_rows(uow.conn, import_id):
        return False
    counted = (await store.counts(uow.conn, [import_id]))[import_id]
    finished_at = await store.finish(uow.conn, import_id, counted)
    if not imp.dry_run:
        uow.emit(
            ImportFinished(
                department_id=imp.department_id,
                import_id=import_id,
                rows=imp.total_rows,
                finished_at=finished_at,
                **{o: counted.get(o, 0) for o in OUTCOMES},
            ),
            key=imp.department_id,
        )
    return True


class ImportAnswers:
    """Applies ``AccountBatchAnswered``: members for the new accounts, invitations next."""

    def __init__(self, wakeup: Wakeup) -> None:
        self.wakeup = wakeup

    async def on_batch_answered(
        self, uow: UnitOfWork, env: RawEnvelope, event: AccountBatchAnswered
    ) -> None:
        """New accounts join the department; addresses that had one go on to be invited."""
        rows = await store.batch_rows(uow.conn, event.request_id)
        if not rows:
            return  # answered before (or not an import of ours)
        import_id = rows[0].import_id
        imp = await store.lock_import(uow.conn, import_id)
        assert imp is not None
        created = {email_key(str(a.email)): a.account_id for a in event.created}
        joining = [r for r in rows if r.email_normalised in created]
        updates = await self._join(uow, imp, joining, created)
        existing = {email_key(str(a.email)): a.account_id for a in event.existing}
        for row in rows:
            if row.email_normalised in created:
                continue
            # Some account already has the address: identity decided, so invite them.
            updates.append(
                {
                    "line": row.line,
                    "state": "invite",
                    "account_id": existing.get(row.email_normalised),
                }
            )
        await store.set_rows(uow.conn, import_id, updates)
        if any(u["state"] == "invite" for u in updates):
            uow.after_commit(self.wakeup.set)
        await finish_if_done(uow, import_id)

    async def _join(
        self, uow: UnitOfWork, imp: Any, rows: list[Any], created: dict[str, uuid.UUID]
    ) -> list[dict[str, Any]]:
        department_id = imp.department_id
        conn = uow.conn
        await member_store.upsert_accounts(
            conn,
            [
                {"account_id": created[r.email_normalised], "email": r.email, "name": r.name}
                for r in rows
            ],
        )
        # Checked again here: someone may have taken an ID since the row was classified.
        taken = await member_store.employee_ids_in_use(
            conn, department_id, [r.employee_id for r in rows if r.employee_id]
        )
        now = datetime.now(UTC)
        notes: dict[int, list[str]] = {r.line: [] for r in rows}
        values = []
        for r in rows:
            employee_id = r.employee_id
            if employee_id and employee_id in taken:
                notes[r.line].append(f"employee ID {employee_id!r} was taken meanwhile: left empty")
                employee_id = None
            values.append(
                {
                    "department_id": department_id,
                    "account_id": created[r.email_normalised],
                    "name": r.name,
                    "email": r.email,
                    "role": r.role or "member",
                    "employee_id": employee_id,
                    "joined_at": now,
                }
            )
        joined = await member_store.insert_memberships(conn, values)
        groups = await group_store.group_ids(conn, department_id)
        wanted: list[dict[str, Any]] = []
        for r in rows:
            account_id = created[r.email_normalised]
            if account_id not in joined:
                continue
            for name in r.groups or ():
                group_id = groups.get(group_key(name))
                if group_id is None:
                    notes[r.line].append(f"group {name!r} no longer exists")
                    continue
                wanted.append(
                    {"group_id": group_id, "account_id": account_id, "department_id": department_id}
                )
        in_group = await group_store.insert_group_members(conn, wanted)
        group_ids: dict[uuid.UUID, list[uuid.UUID]] = {}
        for pair in wanted:
            group_ids.setdefault(pair["account_id"], []).append(pair["group_id"])
        by_account = {v["account_id"]: v for v in values}
        added_by = acting_admin(imp.requested_by)
        updates: list[dict[str, Any]] = []
        for r in rows:
            account_id = created[r.email_normalised]
            if account_id not in joined:
                updates.append(
                    {
                        "line": r.line,
                        "state": "done",
                        "outcome": "already_member",
                        "reason": "already a member",
                        "account_id": account_id,
                    }
                )
                continue
            member = by_account[account_id]
            # Built from rows validated on upload: not validated again, row by row.
            uow.emit(
                MemberAdded.model_construct(
                    department_id=department_id,
                    account_id=account_id,
                    name=member["name"],
                    email=member["email"],
                    role=member["role"],
                    employee_id=member["employee_id"],
                    joined_at=now,
                    added_by=added_by,
                    via="import",
                    import_id=imp.id,
                ),
                key=department_id,
            )
            for group_id in group_ids.get(account_id, ()):
                if (group_id, account_id) in in_group:
                    uow.emit(
                        MemberJoinedGroup.model_construct(
                            department_id=department_id,
                            group_id=group_id,
                            account_id=account_id,
                            changed_by=added_by,
                            import_id=imp.id,
                        ),
                        key=department_id,
                    )
            updates.append(
                {
                    "line": r.line,
                    "state": "done",
                    "outcome": "created",
                    "reason": "; ".join(notes[r.line]) or None,
                    "account_id": account_id,
                }
            )
        return updates
