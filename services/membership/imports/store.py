"""Bulk imports, one row per input row with its outcome: queries.

An import is durable state: its rows are stored first (with ``COPY``), then moved
through their states by the worker and by identity's answers, so a restart picks
up exactly where the last commit left it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..tables import import_rows, imports

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


async def import_by_key(
    conn: AsyncConnection, idempotency_key: str, within: timedelta
) -> uuid.UUID | None:
    """The import an upload with this Idempotency-Key made less than ``within`` ago."""
    found: uuid.UUID | None = await conn.scalar(
        sa.select(imports.c.id).where(
            imports.c.idempotency_key == idempotency_key,
            imports.c.created_at > sa.func.now() - within,
        )
    )
    return found


async def forget_import_key(
    conn: AsyncConnection, idempotency_key: str, older_than: timedelta
) -> None:
    """An expired key may be used again: the old import lets go of it."""
    await conn.execute(
        sa.update(imports)
        .where(
            imports.c.idempotency_key == idempotency_key,
            imports.c.created_at <= sa.func.now() - older_than,
        )
        .values(idempotency_key=None)
    )


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
