"""Membership's part of an operator's merge of two accounts (``identity.account_merged``):
every membership of the merged account becomes the kept account's (``merge_rules``
says which survives where both were members), its groups follow, and one
``MemberMerged`` per department lets subscribers (reporting among them) follow. The
merged account's addresses find the kept account from now on. Nobody is emailed.

Runs once per merge (the consumer's inbox); a repeat finds nothing of the merged
account left and changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.contracts.identity import AccountMerged
from prodigy_users.contracts.membership import MemberMerged
from prodigy_users.runtime.logging import get_logger
from prodigy_users.runtime.uow import UnitOfWork

from ..groups import store as groups_store
from ..tables import account_addresses, accounts, group_members, memberships
from . import store
from .merge_rules import Side, merged_membership

log = get_logger(__name__)


def _side(row: sa.Row[Any], group_ids: list[uuid.UUID]) -> Side:
    return Side(
        role=row.role,
        status=row.status,
        employee_id=row.employee_id,
        joined_at=row.joined_at,
        removed_at=row.removed_at,
        group_ids=tuple(group_ids),
    )


async def _departments_of(conn: AsyncConnection, account_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.execute(
        sa.select(memberships.c.department_id)
        .where(memberships.c.account_id == account_id)
        .order_by(memberships.c.department_id)
    )
    return [r[0] for r in rows]


async def on_account_merged(uow: UnitOfWork, env: RawEnvelope, event: AccountMerged) -> None:
    """Move the merged account's memberships, groups and addresses to the kept account."""
    kept_id, merged_id = event.kept_account_id, event.merged_account_id
    conn = uow.conn
    kept_account = await store.account(conn, kept_id)
    merged_account = await store.account(conn, merged_id)
    for department_id in await _departments_of(conn, merged_id):
        merged_row = await store.any_membership(conn, department_id, merged_id, lock=True)
        if merged_row is None:
            continue
        kept_row = await store.any_membership(conn, department_id, kept_id, lock=True)
        merged_groups = await groups_store.groups_of(conn, department_id, merged_id)
        kept_groups = await groups_store.groups_of(conn, department_id, kept_id) if kept_row else []
        result = merged_membership(
            _side(kept_row, kept_groups) if kept_row is not None else None,
            _side(merged_row, merged_groups),
        )
        name = kept_account.name if kept_account is not None else merged_row.name
        email = kept_account.email if kept_account is not None else merged_row.email
        # The merged membership goes first: the employee ID may move to the kept one
        # (one per department, by a unique index).
        await conn.execute(
            sa.delete(memberships).where(
                memberships.c.department_id == department_id,
                memberships.c.account_id == merged_id,
            )
        )
        values = {
            "name": name,
            "email": email,
            "role": result.role,
            "status": result.status,
            "employee_id": result.employee_id,
            "joined_at": result.joined_at,
            "removed_at": result.removed_at,
        }
        if kept_row is None:
            await conn.execute(
                pg_insert(memberships).values(
                    department_id=department_id,
                    account_id=kept_id,
                    invited_email=merged_row.invited_email,
                    **values,
                )
            )
        else:
            await store.update_membership(conn, department_id, kept_id, **values)
        if merged_groups:
            await groups_store.insert_group_members(
                conn,
                [
                    {"group_id": g, "account_id": kept_id, "department_id": department_id}
                    for g in merged_groups
                ],
            )
            await conn.execute(
                sa.delete(group_members).where(
                    group_members.c.department_id == department_id,
                    group_members.c.account_id == merged_id,
                )
            )
        uow.emit(
            MemberMerged(
                department_id=department_id,
                account_id=kept_id,
                merged_account_id=merged_id,
                name=name,
                email=email,
                role=result.role,
                status=result.status,
                employee_id=result.employee_id,
                group_ids=list(result.group_ids),
                joined_at=result.joined_at,
                removed=not result.current,
                merged_at=event.merged_at,
            ),
            key=department_id,
        )
    # Every address of the merged account finds the kept one (identity says so too,
    # address by address, on its private topic; either may arrive first).
    if merged_account is not None:
        await store.set_linked_address(conn, kept_id, merged_account.email_normalised, linked=True)
    await conn.execute(
        sa.update(account_addresses)
        .where(account_addresses.c.account_id == merged_id)
        .values(account_id=kept_id)
    )
    await conn.execute(sa.delete(accounts).where(accounts.c.account_id == merged_id))
    log.info(
        "memberships of a merged account moved",
        kept_account_id=str(kept_id),
        merged_account_id=str(merged_id),
    )
