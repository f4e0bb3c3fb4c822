"""Bulk-upload use cases: accept a file, show progress, list imports, give results.

Accepting a file is all-or-nothing: it is read and every row validated before
anything is written; then the import and all its rows are stored in one
transaction (rows with ``COPY``), and the worker takes over.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prodigy_users.contracts.membership import ImportStarted
from prodigy_users.runtime.problems import Problem

from . import store_imports
from .import_answers import Wakeup, acting_admin
from .import_files import Table, read_table, refused
from .imports import Mode, PlannedRow, map_columns, plan_rows, results_lines
from .service import Membership


@dataclass(frozen=True)
class ImportView:
    """An import as admins see it: what was uploaded, and where it stands."""

    id: uuid.UUID
    department_id: uuid.UUID
    requested_by: uuid.UUID
    file_name: str | None
    file_type: str
    mode: str
    dry_run: bool
    status: str
    total_rows: int
    counts: dict[str, int]
    columns: dict[str, str]
    ignored_columns: list[str]
    created_at: datetime
    finished_at: datetime | None


def too_large(limit: int) -> Problem:
    """413 naming the size limit."""
    return refused(
        413,
        "file-too-large",
        "File too large",
        f"The file is larger than {limit / (1024 * 1024):g} MB; split it into smaller files.",
        f"at most {limit:,} bytes",
    )


def _plan(data: bytes, max_rows: int) -> tuple[Table, dict[str, Any], list[PlannedRow]]:
    table = read_table(data, max_rows=max_rows)
    columns = map_columns(table.headers)
    planned = plan_rows(table.rows, columns)
    if not planned:
        raise refused(
            422,
            "no-rows",
            "No rows",
            "The file has a header row but no rows below it.",
            "no rows below the header",
        )
    described = {"fields": columns.header_of(table.headers), "ignored": columns.ignored}
    return table, described, planned


def _view(row: Any, counted: dict[str, int]) -> ImportView:
    return ImportView(
        id=row.id,
        department_id=row.department_id,
        requested_by=row.requested_by,
        file_name=row.file_name,
        file_type=row.file_type,
        mode=row.mode,
        dry_run=row.dry_run,
        status=row.status,
        total_rows=row.total_rows,
        counts=counted,
        columns=dict(row.columns.get("fields", {})),
        ignored_columns=list(row.columns.get("ignored", [])),
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


class Imports:
    """The use cases; one per process, built by ``app.spec``."""

    def __init__(self, core: Membership, wakeup: Wakeup) -> None:
        self.core = core
        self.wakeup = wakeup

    async def start(
        self,
        department_id: uuid.UUID,
        requested_by: uuid.UUID,
        data: bytes,
        *,
        file_name: str | None,
        mode: Mode,
        dry_run: bool,
    ) -> uuid.UUID:
        """Validate the file and store it as a new import; the worker does the rest."""
        settings = self.core.settings
        if len(data) > settings.import_max_bytes:
            raise too_large(settings.import_max_bytes)
        # Parsing and validating 50,000 rows takes a while: off the event loop.
        table, columns, planned = await asyncio.to_thread(_plan, data, settings.import_max_rows)
        import_id = uuid.uuid4()
        records = [
            (
                import_id,
                p.line,
                list(p.cells),
                p.name,
                p.email,
                p.email_normalised,
                p.role,
                p.employee_id,
                list(p.groups),
                "pending" if p.outcome is None else "done",
                p.outcome,
                p.reason,
            )
            for p in planned
        ]
        async with self.core.uow() as uow:
            await store_imports.insert_import(
                uow.conn,
                id=import_id,
                department_id=department_id,
                requested_by=requested_by,
                file_name=file_name,
                file_type=table.file_type,
                mode=mode,
                dry_run=dry_run,
                headers=table.headers,
                columns=columns,
                total_rows=len(planned),
            )
            await store_imports.copy_rows(uow.conn, records)
            if not dry_run:
                uow.emit(
                    ImportStarted(
                        department_id=department_id,
                        import_id=import_id,
                        rows=len(planned),
                        mode=mode,
                        file_name=file_name,
                        started_by=acting_admin(requested_by),
                    ),
                    key=department_id,
                )
            await uow.commit()
        self.wakeup.set()
        return import_id

    async def get(self, department_id: uuid.UUID, import_id: uuid.UUID) -> ImportView | None:
        """One import of the department, with its counts so far."""
        async with self.core.engine.connect() as conn:
            row = await store_imports.get_import(conn, department_id, import_id)
            if row is None:
                return None
            counted = row.counts
            if counted is None:
                counted = (await store_imports.counts(conn, [row.id]))[row.id]
        return _view(row, counted)

    async def listing(self, department_id: uuid.UUID) -> list[ImportView]:
        """The department's imports, newest first (running ones counted now)."""
        async with self.core.engine.connect() as conn:
            rows = await store_imports.listing(conn, department_id)
            live = await store_imports.counts(conn, [r.id for r in rows if r.counts is None])
        return [_view(r, r.counts if r.counts is not None else live[r.id]) for r in rows]

    async def results(
        self, department_id: uuid.UUID, import_id: uuid.UUID
    ) -> tuple[ImportView, Iterator[str]] | None:
        """The import and its results.csv, line by line (None if there is no such import)."""
        async with self.core.engine.connect() as conn:
            row = await store_imports.get_import(conn, department_id, import_id)
            if row is None:
                return None
            rows = await store_imports.results(conn, import_id)
        counted: dict[str, int] = {}
        for r in rows:
            counted[r.outcome or "pending"] = counted.get(r.outcome or "pending", 0) + 1
        lines = results_lines(
            list(row.headers), ((r.line, r.cells, r.outcome, r.reason) for r in rows)
        )
        return _view(row, counted), lines
