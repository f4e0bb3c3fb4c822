"""The users table's use cases: a page of a view, the whole view as a file, and the role
that lets a caller read a department's reports."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from prodigy_users.runtime.db import asyncpg_dsn

from ..rules import GroupNames
from . import store
from .export import MEDIA_TYPES, ExportFormat, XlsxSheet, csv_chunk, csv_start, file_name
from .rules import (
    COUNT_CAP,
    Total,
    UsersPage,
    UsersView,
    capped_total,
    count_method,
    cursor_total,
    decode_position,
    kept_total,
    unknown_groups,
    view_page,
)

T = TypeVar("T")

# Rows per fetch from the server-side cursor (a CSV piece each); bytes per XLSX piece.
CHUNK = 1000
XLSX_READ = 256 * 1024


@dataclass(frozen=True)
class Export:
    """A file being made: its name, its type and its bytes as they come."""

    file_name: str
    media_type: str
    chunks: AsyncIterator[bytes]


class UsersTable:
    """The users table's use cases on reporting's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def role_of(self, department_id: uuid.UUID, account_id: uuid.UUID) -> str | None:
        """The caller's role in the department, as reporting has heard it (None once removed)."""
        async with self.engine.connect() as conn:
            return await store.role_of(conn, department_id, account_id)

    async def page(
        self, view: UsersView, *, limit: int, cursor: str | None = None
    ) -> UsersPage:
        """One page of the view, after ``cursor`` (``InvalidCursor``/``InvalidView`` if bad)."""
        after = decode_position(cursor, view) if cursor else None
        # Counted for the first page; its cursor carries the figure to the next ones.
        carried = cursor_total(cursor) if cursor else None
        async with self.engine.connect() as conn:
            groups = GroupNames(await store.department_groups(conn, view.department_id))
            unknown_groups(view, groups.ids())
            if view.filters.search:
                # A search's best plan depends on the term (rare: the trigram index;
                # common: walk the sort's index), so never a generic plan cached for any term.
                await conn.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
            rows = await store.page(conn, view, limit + 1, after)
            total = carried or await _total(conn, view)
        return view_page(rows, limit, view, groups, total)

    async def export(
        self,
        view: UsersView,
        fmt: ExportFormat,
        *,
        bom: bool = False,
        today: date | None = None,
    ) -> Export:
        """The view as CSV or XLSX; checked here (``InvalidView``), streamed when iterated."""
        async with self.engine.connect() as conn:
            unknown_groups(view, await store.department_groups(conn, view.department_id))
            department = await store.department_name(conn, view.department_id)
        day = today or datetime.now(UTC).date()
        engine = self.engine
        chunks = _csv(engine, view, bom=bom) if fmt == "csv" else _xlsx(engine, view)
        return Export(file_name(department, day, fmt), MEDIA_TYPES[fmt], chunks)


async def _total(conn: AsyncConnection, view: UsersView) -> Total | None:
    """How many rows the view has, as cheaply as its filters allow (``count_method``)."""
    method = count_method(view)
    if method == "kept":
        return kept_total(await store.kept_counts(conn, view), view.filters)
    if method == "capped":
        # Planned for these very values: a generic plan cannot tell a rare group or term
        # from a common one. And for a search, by the trigram index: the planner prices
        # the search expression as cheap and would rather read the table until it has
        # 1,001 matches (25 ms for a term in 3% of 100,000 people, against 3 ms).
        # The last statement of the transaction: nothing after it is planned so.
        seqscan = "off" if view.filters.search else "on"
        await conn.execute(
            sa.select(
                sa.func.set_config("plan_cache_mode", "force_custom_plan", True),
                sa.func.set_config("enable_seqscan", seqscan, True),
            )
        )
        return capped_total(await store.count_upto(conn, view, COUNT_CAP))
    return None


_END = object()


@dataclass(frozen=True)
class _Failed:
    error: Exception


# Pumps running; held here so that none is garbage-collected halfway.
_PUMPS: set[asyncio.Task[None]] = set()


async def ahead(source: AsyncGenerator[T, None], depth: int = 2) -> AsyncGenerator[T, None]:
    """``source``, run by a task of its own up to ``depth`` items ahead of the caller.

    The task holds what ``source`` holds (a database connection in a transaction).
    When the caller stops early, because the client went away, the task is cancelled
    once and closes ``source`` normally; the caller itself could not be relied on to:
    the HTTP server's cancel scope cancels each of its awaits, clean-up included, and
    the connection would go back to the pool still in its transaction. Meanwhile the
    next item is read while the caller sends this one.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue(depth)

    async def pump() -> None:
        try:
            async with contextlib.aclosing(source) as items:
                async for item in items:
                    await queue.put(item)
        except Exception as exc:
            await queue.put(_Failed(exc))
        else:
            await queue.put(_END)

    task = asyncio.create_task(pump())
    _PUMPS.add(task)
    task.add_done_callback(_PUMPS.discard)
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        task.cancel()


async def _records(
    engine: AsyncEngine, view: UsersView, *, times_as_text: bool
) -> AsyncGenerator[tuple[GroupNames, list[asyncpg.Record]], None]:
    # A connection of its own, not one from the pool: an export the client abandons
    # can be cut off mid-transaction, and a pooled connection would carry that
    # (read-only) transaction to the next user, the consumer. This one is closed.
    driver = await asyncpg.connect(asyncpg_dsn(engine.url.render_as_string(hide_password=False)))
    try:
        rows = store.export_records(
            driver, engine.dialect, view, CHUNK, times_as_text=times_as_text
        )
        async with contextlib.aclosing(rows):
            async for item in rows:
                yield item
    finally:
        driver.terminate()  # synchronous: runs even when this task is being cancelled


async def _csv(engine: AsyncEngine, view: UsersView, *, bom: bool) -> AsyncIterator[bytes]:
    yield csv_start(bom=bom)
    chunks = ahead(_records(engine, view, times_as_text=True))
    async with contextlib.aclosing(chunks):
        async for groups, records in chunks:
            yield csv_chunk(records, groups)


def _xlsx(engine: AsyncEngine, view: UsersView) -> AsyncIterator[bytes]:
    return ahead(_xlsx_pieces(engine, view))


async def _xlsx_pieces(engine: AsyncEngine, view: UsersView) -> AsyncGenerator[bytes, None]:
    # A zip is finished only at its end: the sheet goes to a temporary file row by row,
    # then the file is sent. openpyxl is plain Python, so it works in a thread.
    sheet = XlsxSheet()
    try:
        rows = _records(engine, view, times_as_text=False)
        async with contextlib.aclosing(rows):
            async for groups, records in rows:
                await asyncio.to_thread(sheet.append, records, groups)
        with tempfile.TemporaryFile() as out:
            await asyncio.to_thread(sheet.save, out)
            await asyncio.to_thread(out.seek, 0)
            while piece := await asyncio.to_thread(out.read, XLSX_READ):
                yield piece
    finally:
        await asyncio.to_thread(sheet.discard)
