"""Bulk-upload use cases: accept a file, show progress, list imports, give results.

Accepting a file is all-or-nothing: it is read and every row validated before
anything is written; then the import and all its rows are stored in one
transaction (rows with ``COPY``), and the worker takes over.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.membership import ImportStarted
from prodigy_users.runtime.idempotency_rules import KEY_TTL

from ..errors import FileTooLarge
from ..rules import acting_admin
from ..settings import Settings
from ..units import unit_of_work
from . import store
from .parsing import UploadReader
from .rules import Mode, results_lines
from .wakeup import Wakeup


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
    """Bulk-upload use cases."""

    def __init__(
        self, engine: AsyncEngine, settings: Settings, wakeup: Wakeup, reader: UploadReader
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.wakeup = wakeup
        self.reader = reader

    async def start(
        self,
        department_id: uuid.UUID,
        requested_by: uuid.UUID,
        data: bytes,
        *,
        file_name: str | None,
        mode: Mode,
        dry_run: bool,
        idempotency_key: str | None = None,
    ) -> uuid.UUID:
        """Validate the file and store it as a new import; the worker does the rest.

        A retry of an earlier upload (same ``idempotency_key``) whose answer was lost
        gets that upload's import instead of a second one.
        """
        if idempotency_key is not None:
            async with self.engine.connect() as conn:
                earlier = await store.import_by_key(conn, idempotency_key, KEY_TTL)
            if earlier is not None:
                return earlier
        settings = self.settings
        if len(data) > settings.import_max_bytes:
            raise FileTooLarge(settings.import_max_bytes)
        # Reading and validating 50,000 rows takes a while, and a hostile file would
        # take much more: in the reader's memory-bounded child process.
        import_id = uuid.uuid4()
        plan = await self.reader.plan(data, settings.import_max_rows, import_id)
        records = plan.records
        async with unit_of_work(self.engine) as uow:
            if idempotency_key is not None:
                await store.forget_import_key(uow.conn, idempotency_key, KEY_TTL)
            await store.insert_import(
                uow.conn,
                id=import_id,
                idempotency_key=idempotency_key,
                department_id=department_id,
                requested_by=requested_by,
                file_name=file_name,
                file_type=plan.file_type,
                mode=mode,
                dry_run=dry_run,
                headers=plan.headers,
                columns=plan.columns,
                total_rows=len(records),
            )
            await store.copy_rows(uow.conn, records)
            if not dry_run:
                uow.emit(
                    ImportStarted(
                        department_id=department_id,
                        import_id=import_id,
                        rows=len(records),
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
        async with self.engine.connect() as conn:
            row = await store.get_import(conn, department_id, import_id)
            if row is None:
                return None
            counted = row.counts
            if counted is None:
                counted = (await store.counts(conn, [row.id]))[row.id]
        return _view(row, counted)

    async def listing(self, department_id: uuid.UUID) -> list[ImportView]:
        """The department's imports, newest first (running ones counted now)."""
        async with self.engine.connect() as conn:
            rows = await store.listing(conn, department_id)
            live = await store.counts(conn, [r.id for r in rows if r.counts is None])
        return [_view(r, r.counts if r.counts is not None else live[r.id]) for r in rows]

    async def results(
        self, department_id: uuid.UUID, import_id: uuid.UUID
    ) -> tuple[ImportView, Iterator[str]] | None:
        """The import and its results.csv, line by line (None if there is no such import)."""
        async with self.engine.connect() as conn:
            row = await store.get_import(conn, department_id, import_id)
            if row is None:
                return None
            rows = await store.results(conn, import_id)
        counted: dict[str, int] = {}
        for r in rows:
            counted[r.outcome or "pending"] = counted.get(r.outcome or "pending", 0) + 1
        lines = results_lines(
            list(row.headers), ((r.line, r.cells, r.outcome, r.reason) for r in rows)
        )
        return _view(row, counted), lines
