"""Bulk imports: the upload, one row per input row with its outcome, and their queries.

An import is durable state: its rows are stored first (with ``COPY``), then moved
through their states by the worker and by identity's answers, so a restart picks
up exactly where the last commit left it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .store import accounts, memberships, metadata, operations
from .store_groups import group_members, groups

imports = sa.Table(
    "imports",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("department_id", UUID(as_uuid=True), sa.ForeignKey("departments.id"), nullable=False),
    sa.Column("requested_by", UUID(as_uuid=True), nullable=False),
    sa.Column("file_name", sa.Text, nullable=True),
    sa.Column("file_type", sa.Text, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    # running -> finished (every row has its outcome).
    sa.Column("status", sa.Text, nullable=False),
    # The file's header cells in order, and which of them each field was read from.
    sa.Column("headers", ARRAY(sa.Text), nullable=False),
    sa.Column("columns", JSONB, nullable=False),
    sa.Column("total_rows", sa.Integer, nullable=False),
    # Missing groups are created once, before any row is processed.
    sa.Column("groups_ready", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("counts", JSONB, nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
)
sa.Index("ix_imports_department", imports.c.department_id, imports.c.created_at)
sa.Index("ix_imports_running", imports.c.created_at, postgresql_where=imports.c.status == "running")

# state: pending (to classify) -> requested (in a CreateAccounts batch) / invite /
# update -> done (``outcome`` and ``reason`` final).
import_rows = sa.Table(
    "import_rows",
    metadata,
    sa.Column(
        "import_id",
        UUID(as_uuid=True),
        sa.ForeignKey("imports.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("cells", ARRAY(sa.Text), nullable=False),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("email", sa.Text, nullable=True),
    sa.Column("email_normalised", sa.Text, nullable=True),
    sa.Column("role", sa.Text, nullable=True),
    sa.Column("employee_id", sa.Text, nullable=True),
    sa.Column("groups", ARRAY(sa.Text), nullable=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("batch_id", UUID(as_uuid=True), nullable=True),
    sa.Column("account_id", UUID(as_uuid=True), nullable=True),
    sa.Column("changes", JSONB, nullable=True),
)
sa.Index(
    "ix_import_rows_open",
    import_rows.c.import_id,
    import_rows.c.state,
    postgresql_where=import_rows.c.state != "done",
)
sa.Index(
    "ix_import_rows_batch",
    import_rows.c.batch_id,
    postgresql_where=import_rows.c.batch_id.isnot(None),
)

ROW_COLUMNS = (
    "import_id",
    "line",
    "cells",
    "name",
    "email",
    "email_normalised",
    "role",
    "employee_id",
    "groups",
    "state",
    "outcome",
    "reason",
)


async def insert_import(conn: AsyncConnection, **values: Any) -> None:
    """The import itself (before its rows: this statement also opens the transaction)."""
    await conn.execute(sa.insert(imports).values(status="running", **values))


async def copy_rows(conn: AsyncConnection, records: Sequence[tuple[Any, ...]]) -> None:
    """Write the rows with ``COPY`` (``records`` in ``ROW_COLUMNS`` order).

    Runs on the driver connection inside the transaction the caller's SQLAlchemy
    connection has open, so the rows commit or vanish with the rest.
    """
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table("import_rows", records=records, columns=ROW_COLUMNS)


async def get_import(
    conn: AsyncConnection, department_id: uuid.UUID, import_id: uuid.UUID
) -> sa.Row[Any] | None:
    """One import of the department."""
    return (
        await conn.execute(
            sa.select(imports).where(
                imports.c.department_id == department_id, imports.c.id == import_id
            )
        )
    ).first()


async def lock_import(
    conn: AsyncConnection, import_id: uuid.UUID, *, skip_locked: bool = False
) -> sa.Row[Any] | None:
    """The import, row-locked (None if another transaction holds it and ``skip_locked``)."""
    stmt = sa.select(imports).where(imports.c.id == import_id)
    stmt = stmt.with_for_update(skip_locked=skip_locked)
    return (await conn.execute(stmt)).first()


async def listing(conn: AsyncConnection, department_id: uuid.UUID) -> list[sa.Row[Any]]:
    """The department's imports, newest first."""
    return list(
        await conn.execute(
            sa.select(imports)
            .where(imports.c.department_id == department_id)
            .order_by(imports.c.created_at.desc(), imports.c.id)
        )
    )


async def running(conn: AsyncConnection) -> list[sa.Row[Any]]:
    """Every import still running, oldest first (what the worker resumes)."""
    return list(
        await conn.execute(
            sa.select(imports).where(imports.c.status == "running").order_by(imports.c.created_at)
        )
    )


async def counts(
    conn: AsyncConnection, import_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """Rows per outcome (``pending`` for rows without one yet) of each import."""
    if not import_ids:
        return {}
    outcome = sa.func.coalesce(import_rows.c.outcome, "pending")
    rows = await conn.execute(
        sa.select(import_rows.c.import_id, outcome, sa.func.count())
        .where(import_rows.c.import_id.in_(import_ids))
        .group_by(import_rows.c.import_id, outcome)
    )
    out: dict[uuid.UUID, dict[str, int]] = {i: {} for i in import_ids}
    for import_id, name, count in rows:
        out[import_id][name] = int(count)
    return out


async def has_open_rows(conn: AsyncConnection, import_id: uuid.UUID) -> bool:
    """Whether any row of the import still waits for its outcome."""
    return bool(
        await conn.scalar(
            sa.select(
                sa.exists().where(
                    import_rows.c.import_id == import_id, import_rows.c.state != "done"
                )
            )
        )
    )


async def finish(conn: AsyncConnection, import_id: uuid.UUID, counted: dict[str, int]) -> Any:
    """Mark the import finished with its final counts; its ``finished_at``."""
    return await conn.scalar(
        sa.update(imports)
        .where(imports.c.id == import_id)
        .values(status="finished", counts=counted, finished_at=sa.func.now())
        .returning(imports.c.finished_at)
    )


async def set_groups_ready(conn: AsyncConnection, import_id: uuid.UUID) -> None:
    """The import's groups exist."""
    await conn.execute(
        sa.update(imports).where(imports.c.id == import_id).values(groups_ready=True)
    )


async def open_rows(
    conn: AsyncConnection, import_id: uuid.UUID, state: str, limit: int
) -> list[sa.Row[Any]]:
    """Up to ``limit`` rows in ``state``, in line order, locked (skipping those others hold)."""
    return list(
        await conn.execute(
            sa.select(import_rows)
            .where(import_rows.c.import_id == import_id, import_rows.c.state == state)
            .order_by(import_rows.c.line)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


async def group_names(conn: AsyncConnection, import_id: uuid.UUID) -> list[str]:
    """Every group name the import's rows still to process mention."""
    names = sa.func.unnest(import_rows.c.groups).label("name")
    rows = await conn.execute(
        sa.select(names)
        .where(import_rows.c.import_id == import_id, import_rows.c.state != "done")
        .distinct()
    )
    return [r[0] for r in rows]


async def batch_rows(conn: AsyncConnection, batch_id: uuid.UUID) -> list[sa.Row[Any]]:
    """The rows of one CreateAccounts batch still waiting for identity's answer, locked."""
    return list(
        await conn.execute(
            sa.select(import_rows)
            .where(import_rows.c.batch_id == batch_id, import_rows.c.state == "requested")
            .order_by(import_rows.c.line)
            .with_for_update()
        )
    )


_SET_ROWS = sa.text(
    """
    UPDATE import_rows AS r
    SET state = v.state, outcome = v.outcome, reason = v.reason,
        batch_id = v.batch_id, account_id = v.account_id, changes = v.changes
    FROM unnest(
        CAST(:lines AS integer[]), CAST(:states AS text[]), CAST(:outcomes AS text[]),
        CAST(:reasons AS text[]), CAST(:batches AS uuid[]), CAST(:accounts AS uuid[]),
        CAST(:changes AS jsonb[])
    ) AS v(line, state, outcome, reason, batch_id, account_id, changes)
    WHERE r.import_id = :import_id AND r.line = v.line
    """
)


async def set_rows(
    conn: AsyncConnection, import_id: uuid.UUID, updates: Sequence[dict[str, Any]]
) -> None:
    """Give many rows their new state in one statement.

    Each update: ``line``, ``state`` and optionally ``outcome``, ``reason``,
    ``batch_id``, ``account_id``, ``changes`` (absent ones become NULL).
    """
    if not updates:
        return
    await conn.execute(
        _SET_ROWS,
        {
            "import_id": import_id,
            "lines": [u["line"] for u in updates],
            "states": [u["state"] for u in updates],
            "outcomes": [u.get("outcome") for u in updates],
            "reasons": [u.get("reason") for u in updates],
            "batches": [u.get("batch_id") for u in updates],
            "accounts": [u.get("account_id") for u in updates],
            "changes": [
                json.dumps(u["changes"]) if u.get("changes") is not None else None for u in updates
            ],
        },
    )


async def results(conn: AsyncConnection, import_id: uuid.UUID) -> list[sa.Row[Any]]:
    """Every row of the import in line order, for results.csv."""
    return list(
        await conn.execute(
            sa.select(
                import_rows.c.line,
                import_rows.c.cells,
                import_rows.c.outcome,
                import_rows.c.reason,
            )
            .where(import_rows.c.import_id == import_id)
            .order_by(import_rows.c.line)
        )
    )


# -- what the department already has -------------------------------------------------------


async def current_members_by_email(
    conn: AsyncConnection, department_id: uuid.UUID, normalised: list[str]
) -> dict[str, sa.Row[Any]]:
    """Current members whose membership or account email is one of these, by that email."""
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
    return {r.key: r for r in await conn.execute(sa.union(by_membership, by_account))}


async def known_accounts(conn: AsyncConnection, normalised: list[str]) -> dict[str, uuid.UUID]:
    """Accounts membership has heard of from identity, by normalised email."""
    if not normalised:
        return {}
    rows = await conn.execute(
        sa.select(accounts.c.email_normalised, accounts.c.account_id).where(
            accounts.c.email_normalised.in_(normalised)
        )
    )
    return {r.email_normalised: r.account_id for r in rows}


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


async def group_ids(conn: AsyncConnection, department_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """The department's groups by normalised name."""
    rows = await conn.execute(
        sa.select(groups.c.name_normalised, groups.c.id).where(
            groups.c.department_id == department_id
        )
    )
    return {r.name_normalised: r.id for r in rows}


async def groups_of_accounts(
    conn: AsyncConnection, department_id: uuid.UUID, account_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, str]]:
    """Each account's groups in the department: ``{normalised name: name}``."""
    if not account_ids:
        return {}
    rows = await conn.execute(
        sa.select(group_members.c.account_id, groups.c.name_normalised, groups.c.name)
        .join(groups, groups.c.id == group_members.c.group_id)
        .where(
            group_members.c.department_id == department_id,
            group_members.c.account_id.in_(account_ids),
        )
    )
    out: dict[uuid.UUID, dict[str, str]] = {a: {} for a in account_ids}
    for account_id, key, name in rows:
        out[account_id][key] = name
    return out


# -- many new members at once ----------------------------------------------------------------
# Each an executemany ("insertmanyvalues"): one cached statement, sent in pages, instead of
# a multi-row VALUES that SQLAlchemy would compile anew for every batch size.


async def upsert_accounts(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Remember many accounts identity made (``account_id, email, name``), in one statement."""
    if not rows:
        return
    values = [{**r, "email_normalised": str(r["email"]).strip().lower()} for r in rows]
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


async def insert_group_members(
    conn: AsyncConnection, rows: list[dict[str, Any]]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Put many people in groups; the ``(group_id, account_id)`` pairs that are new."""
    if not rows:
        return set()
    result = await conn.execute(
        pg_insert(group_members)
        .on_conflict_do_nothing()
        .returning(group_members.c.group_id, group_members.c.account_id),
        rows,
    )
    return {(r[0], r[1]) for r in result}


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
