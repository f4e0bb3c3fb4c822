"""Members, the accounts membership has heard of, and the requests waiting for identity:
queries."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from prodigy_users.contracts.email import email_key

from ..tables import account_addresses, accounts, departments, memberships, operations


async def standing(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> tuple[bool, str | None]:
    """Whether the department exists, and the account's current role in it (None if
    not a member): one statement, for the check every admin's request makes."""
    row = (
        await conn.execute(
            sa.select(departments.c.id, memberships.c.role)
            .select_from(departments)
            .outerjoin(
                memberships,
                sa.and_(
                    memberships.c.department_id == departments.c.id,
                    memberships.c.account_id == account_id,
                    memberships.c.removed_at.is_(None),
                ),
            )
            .where(departments.c.id == department_id)
        )
    ).first()
    return (False, None) if row is None else (True, row.role)


async def insert_membership(
    conn: AsyncConnection,
    *,
    department_id: uuid.UUID,
    account_id: uuid.UUID,
    name: str,
    email: str,
    role: str,
    joined_at: datetime,
    invited_email: str | None = None,
) -> bool:
    """Add the membership unless it exists; True if added."""
    stmt = (
        pg_insert(memberships)
        .values(
            department_id=department_id,
            account_id=account_id,
            name=name,
            email=email,
            role=role,
            joined_at=joined_at,
            invited_email=invited_email,
        )
        .on_conflict_do_nothing()
        .returning(memberships.c.account_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def membership(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> sa.Row[Any] | None:
    """The membership row (current members only)."""
    return (
        await conn.execute(
            sa.select(memberships).where(
                memberships.c.department_id == department_id,
                memberships.c.account_id == account_id,
                memberships.c.removed_at.is_(None),
            )
        )
    ).first()


async def memberships_of(conn: AsyncConnection, account_id: uuid.UUID) -> list[sa.Row[Any]]:
    """The account's current memberships with their departments' names, by department name
    (then id, for two departments of the same name)."""
    stmt = (
        sa.select(
            memberships.c.department_id,
            departments.c.name.label("department_name"),
            memberships.c.role,
            memberships.c.status,
            memberships.c.joined_at,
        )
        .join(departments, departments.c.id == memberships.c.department_id)
        .where(memberships.c.account_id == account_id, memberships.c.removed_at.is_(None))
        .order_by(departments.c.name, memberships.c.department_id)
    )
    return list(await conn.execute(stmt))


async def insert_operation(
    conn: AsyncConnection,
    *,
    operation_id: uuid.UUID,
    kind: str,
    department_id: uuid.UUID,
    requested_by: uuid.UUID | None,
    request: dict[str, Any],
    idempotency_key: str | None = None,
) -> None:
    """A pending operation."""
    await conn.execute(
        sa.insert(operations).values(
            id=operation_id,
            kind=kind,
            status="pending",
            department_id=department_id,
            requested_by=requested_by,
            request=request,
            idempotency_key=idempotency_key,
        )
    )


async def operation_by_key(
    conn: AsyncConnection, idempotency_key: str, within: timedelta
) -> sa.Row[Any] | None:
    """The operation a request with this Idempotency-Key started less than ``within`` ago."""
    return (
        await conn.execute(
            sa.select(operations).where(
                operations.c.idempotency_key == idempotency_key,
                operations.c.created_at > sa.func.now() - within,
            )
        )
    ).first()


async def forget_operation_key(
    conn: AsyncConnection, idempotency_key: str, older_than: timedelta
) -> None:
    """An expired key may be used again: the old operation lets go of it."""
    await conn.execute(
        sa.update(operations)
        .where(
            operations.c.idempotency_key == idempotency_key,
            operations.c.created_at <= sa.func.now() - older_than,
        )
        .values(idempotency_key=None)
    )


async def operation(
    conn: AsyncConnection, operation_id: uuid.UUID, *, lock: bool = False
) -> sa.Row[Any] | None:
    """An operation (row-locked when completing it)."""
    stmt = sa.select(operations).where(operations.c.id == operation_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def complete_operation(
    conn: AsyncConnection,
    operation_id: uuid.UUID,
    *,
    status: str,
    result: dict[str, Any] | None = None,
    problem: dict[str, Any] | None = None,
    now: datetime,
) -> None:
    """Record an operation's outcome."""
    await conn.execute(
        sa.update(operations)
        .where(operations.c.id == operation_id)
        .values(status=status, result=result, problem=problem, completed_at=now)
    )


async def set_operation_status(conn: AsyncConnection, operation_id: uuid.UUID, status: str) -> None:
    """Move an open operation to another open status (``awaiting_confirmation``)."""
    await conn.execute(
        sa.update(operations).where(operations.c.id == operation_id).values(status=status)
    )


async def recent_refused_registrations(
    conn: AsyncConnection, normalised: str, problem_slug: str, within: timedelta
) -> int:
    """How many registrations with this address ended with ``problem_slug`` lately (any
    department): caps the emails anyone can make the system send to an address."""
    count = await conn.scalar(refused_registrations(normalised, problem_slug, within))
    return int(count or 0)


def refused_registrations(normalised: str, problem_slug: str, within: timedelta) -> sa.Select[int]:
    """The count behind ``recent_refused_registrations``: its conditions are those of
    the ``ix_operations_failed_registrations`` index, which it reads."""
    email = sa.func.lower(operations.c.request["email"].astext)
    return (
        sa.select(sa.func.count())
        .select_from(operations)
        .where(
            operations.c.kind == "register",
            operations.c.status == "failed",
            operations.c.completed_at > sa.func.now() - within,
            operations.c.problem["type"].astext.like(f"%/{problem_slug}"),
            email == normalised,
        )
    )


async def upsert_account(
    conn: AsyncConnection, account_id: uuid.UUID, email: str, name: str
) -> None:
    """Remember an account identity told us about."""
    await upsert_accounts(conn, [{"account_id": account_id, "email": email, "name": name}])


async def account(conn: AsyncConnection, account_id: uuid.UUID) -> sa.Row[Any] | None:
    """A known account."""
    return (
        await conn.execute(sa.select(accounts).where(accounts.c.account_id == account_id))
    ).first()


async def any_membership(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID, *, lock: bool = False
) -> sa.Row[Any] | None:
    """The membership row, current or removed."""
    stmt = sa.select(memberships).where(
        memberships.c.department_id == department_id, memberships.c.account_id == account_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def count_admins(conn: AsyncConnection, department_id: uuid.UUID) -> int:
    """Current admins of the department."""
    return int(
        (
            await conn.execute(
                sa.select(sa.func.count()).where(
                    memberships.c.department_id == department_id,
                    memberships.c.role == "admin",
                    memberships.c.removed_at.is_(None),
                )
            )
        ).scalar_one()
    )


async def update_membership(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID, **values: Any
) -> None:
    """Change a membership row."""
    await conn.execute(
        sa.update(memberships)
        .where(memberships.c.department_id == department_id, memberships.c.account_id == account_id)
        .values(updated_at=sa.func.now(), **values)
    )


async def mark_removed(
    conn: AsyncConnection, department_id: uuid.UUID, account_id: uuid.UUID
) -> None:
    """The person left the department, now by the database's clock (one for every replica)."""
    await update_membership(conn, department_id, account_id, removed_at=sa.func.now())


# -- many people at once (a bulk import meets thousands) --------------------------------------


async def current_members_by_email(
    conn: AsyncConnection, department_id: uuid.UUID, normalised: list[str]
) -> dict[str, sa.Row[Any]]:
    """Current members whose membership email, account email or an address linked to
    their account is one of these, by that email."""
    if not normalised:
        return {}
    current = sa.and_(
        memberships.c.department_id == department_id, memberships.c.removed_at.is_(None)
    )
    by_membership = sa.select(
        sa.func.lower(memberships.c.email).label("key"),
        memberships.c.account_id,
        memberships.c.role,
        memberships.c.employee_id,
    ).where(current, sa.func.lower(memberships.c.email).in_(normalised))
    by_account = (
        sa.select(
            accounts.c.email_normalised.label("key"),
            memberships.c.account_id,
            memberships.c.role,
            memberships.c.employee_id,
        )
        .join(memberships, memberships.c.account_id == accounts.c.account_id)
        .where(current, accounts.c.email_normalised.in_(normalised))
    )
    by_linked = (
        sa.select(
            account_addresses.c.email_normalised.label("key"),
            memberships.c.account_id,
            memberships.c.role,
            memberships.c.employee_id,
        )
        .join(memberships, memberships.c.account_id == account_addresses.c.account_id)
        .where(current, account_addresses.c.email_normalised.in_(normalised))
    )
    return {r.key: r for r in await conn.execute(sa.union(by_membership, by_account, by_linked))}


async def known_accounts(conn: AsyncConnection, normalised: list[str]) -> dict[str, uuid.UUID]:
    """Accounts membership has heard of from identity, by normalised email (their login
    email or an address linked to them)."""
    if not normalised:
        return {}
    login = sa.select(accounts.c.email_normalised, accounts.c.account_id).where(
        accounts.c.email_normalised.in_(normalised)
    )
    linked = sa.select(account_addresses.c.email_normalised, account_addresses.c.account_id).where(
        account_addresses.c.email_normalised.in_(normalised)
    )
    rows = await conn.execute(sa.union(login, linked))
    return {r.email_normalised: r.account_id for r in rows}


async def set_linked_address(
    conn: AsyncConnection, account_id: uuid.UUID, normalised: str, *, linked: bool
) -> None:
    """Record that the address is linked to the account (``linked``), or no longer is."""
    if linked:
        await conn.execute(
            pg_insert(account_addresses)
            .values(email_normalised=normalised, account_id=account_id)
            .on_conflict_do_update(
                index_elements=["email_normalised"], set_={"account_id": account_id}
            )
        )
        return
    await conn.execute(
        sa.delete(account_addresses).where(
            account_addresses.c.email_normalised == normalised,
            account_addresses.c.account_id == account_id,
        )
    )


async def employee_ids_in_use(
    conn: AsyncConnection, department_id: uuid.UUID, employee_ids: list[str]
) -> dict[str, uuid.UUID]:
    """Which of these employee IDs someone of the department has (removed people keep theirs)."""
    if not employee_ids:
        return {}
    rows = await conn.execute(
        sa.select(memberships.c.employee_id, memberships.c.account_id).where(
            memberships.c.department_id == department_id,
            memberships.c.employee_id.in_(employee_ids),
        )
    )
    return {r.employee_id: r.account_id for r in rows}


async def upsert_accounts(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Remember many accounts identity made (``account_id, email, name``), in one statement."""
    if not rows:
        return
    values = [{**r, "email_normalised": email_key(str(r["email"]))} for r in rows]
    stmt = pg_insert(accounts)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["account_id"],
            set_={
                "email": stmt.excluded.email,
                "email_normalised": stmt.excluded.email_normalised,
                "name": stmt.excluded.name,
            },
        ),
        values,
    )


async def insert_memberships(conn: AsyncConnection, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    """New memberships in one statement; the accounts that were not members yet.

    The conflict target is the key alone: an employee ID someone took meanwhile is
    an error (the caller retries and sees it), not a silently skipped member.
    """
    if not rows:
        return set()
    result = await conn.execute(
        pg_insert(memberships)
        .on_conflict_do_nothing(index_elements=["department_id", "account_id"])
        .returning(memberships.c.account_id),
        rows,
    )
    return {r[0] for r in result}


async def pending_requests(
    conn: AsyncConnection, department_id: uuid.UUID, normalised: list[str]
) -> set[str]:
    """Addresses someone is being added to the department by right now (by hand, or by
    registering): their request waits for identity."""
    if not normalised:
        return set()
    email = sa.func.lower(operations.c.request["email"].astext)
    rows = await conn.execute(
        sa.select(email).where(
            operations.c.department_id == department_id,
            operations.c.status == "pending",
            email.in_(normalised),
        )
    )
    return {r[0] for r in rows}


async def rename_account(conn: AsyncConnection, account_id: uuid.UUID, name: str) -> None:
    """The account's name, as membership keeps it: on the account and on every one of its
    memberships (current or past: the name is the person's, not the department's)."""
    await conn.execute(
        sa.update(accounts).where(accounts.c.account_id == account_id).values(name=name)
    )
    await conn.execute(
        sa.update(memberships).where(memberships.c.account_id == account_id).values(name=name)
    )


async def change_account_email(conn: AsyncConnection, account_id: uuid.UUID, email: str) -> None:
    """The account's login email, as membership keeps it (looked up by its normalised form
    when an admin adds, invites or uploads an address), on the account and every
    membership."""
    await conn.execute(
        sa.update(accounts)
        .where(accounts.c.account_id == account_id)
        .values(email=email, email_normalised=email_key(email))
    )
    await conn.execute(
        sa.update(memberships).where(memberships.c.account_id == account_id).values(email=email)
    )
