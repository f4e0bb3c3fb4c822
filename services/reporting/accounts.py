"""Accounts' changed names and login emails (identity's ``AccountUpdated``), copied onto
every row the read model keeps for the account: its users-table row in each department
it belongs or belonged to, which the individual record reads too. The name is the
person's, not a department's, so one change shows everywhere.

Kept apart from the projection of membership events: a different topic, and a change
that touches one account's rows across departments rather than one department's.
The two topics are not read in any set order (a replay may read all of identity's
first), so the latest name and email of each account that changed are kept
(``tables.account_names``) and the projection lays them over the rows it writes
(``overlay``): a ``member_added`` written before a rename cannot bring the old name back.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import AccountUpdated
from prodigy_users.runtime.uow import UnitOfWork

from .activity import store as activity_store
from .activity.rules import activity_row, rename_details
from .projection import store as projection_store
from .projection.rules import HistoryRow
from .rules import sort_name
from .tables import account_names, users


def account_values(event: AccountUpdated) -> dict[str, str]:
    """The users-table columns an ``AccountUpdated`` sets (empty: nothing it shows)."""
    values: dict[str, str] = {}
    if event.name is not None:
        values["name"] = event.name.new
        values["sort_name"] = sort_name(event.name.new)
    if event.email is not None:
        values["email"] = event.email.new
    return values


def _latest(values: dict[str, str | None], stamp: str, at: datetime) -> dict[str, Any]:
    """Upsert ``values`` only if this change is newer than the one kept (redelivered or
    replayed changes, in whatever order, leave the latest)."""
    if any(v is None for v in values.values()):
        return {}
    table = account_names
    newer = sa.or_(table.c[stamp].is_(None), table.c[stamp] < at)
    kept = {c: sa.case((newer, v), else_=table.c[c]) for c, v in values.items()}
    return {**kept, stamp: sa.case((newer, at), else_=table.c[stamp])}


async def remember(conn: AsyncConnection, event: AccountUpdated) -> None:
    """Keep the account's latest name and email."""
    name = event.name.new if event.name else None
    folded = sort_name(name) if name is not None else None
    email = event.email.new if event.email else None
    at = event.occurred_at
    stmt = pg_insert(account_names).values(
        account_id=event.account_id,
        name=name,
        sort_name=folded,
        email=email,
        name_changed_at=at if name is not None else None,
        email_changed_at=at if email is not None else None,
    )
    updates = {
        **_latest({"name": name, "sort_name": folded}, "name_changed_at", at),
        **_latest({"email": email}, "email_changed_at", at),
    }
    await conn.execute(stmt.on_conflict_do_update(index_elements=["account_id"], set_=updates))


async def overlay(conn: AsyncConnection, account_ids: Collection[uuid.UUID] | None = None) -> None:
    """Lay the kept names and emails over the account's rows (those of ``account_ids``,
    or all): what a changed account's rows show is always its latest."""
    kept = account_names
    where = [users.c.account_id == kept.c.account_id]
    if account_ids is not None:
        if not account_ids:
            return
        where.append(kept.c.account_id.in_(list(set(account_ids))))
    await conn.execute(
        sa.update(users)
        .where(*where)
        .values(
            name=sa.func.coalesce(kept.c.name, users.c.name),
            sort_name=sa.func.coalesce(kept.c.sort_name, users.c.sort_name),
            email=sa.func.coalesce(kept.c.email, users.c.email),
            # GREATEST ignores NULLs: the row changed when its latest event happened,
            # whichever topic it came from (a replay reads them in another order).
            updated_at=sa.func.greatest(
                users.c.updated_at, kept.c.name_changed_at, kept.c.email_changed_at
            ),
        )
    )


async def on_account_updated(uow: UnitOfWork, envelope: RawEnvelope, event: AccountUpdated) -> None:
    """Handle ``AccountUpdated``: keep the change, and the account's rows follow it; an
    admin's rename is in the member's history and the department's log."""
    if not account_values(event):
        return
    await remember(uow.conn, event)
    await overlay(uow.conn, [event.account_id])
    details = rename_details(event)
    if details is None or event.department_id is None:
        return
    at, department = event.occurred_at, event.department_id
    entry = HistoryRow(envelope.event_id, department, event.account_id, at, "renamed", details)
    await projection_store.add_history(uow.conn, [entry])
    await activity_store.add(
        uow.conn, [activity_row(envelope.event_id, "renamed", at, event, details)]
    )
