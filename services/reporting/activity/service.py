"""The activity log's use cases: a page of a view, the whole view as CSV, and the rows
of invitation events (the log's other rows come with the projection's history)."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from prodigy_users.contracts.envelope import RawEnvelope
from prodigy_users.runtime.text import cell_text
from prodigy_users.runtime.uow import UnitOfWork

from ..users import store as users_store
from ..users.export import BOM, MEDIA_TYPES, csv_time, slug
from ..users.service import ahead
from . import store
from .rules import (
    ActivityEntry,
    ActivityPage,
    ActivityView,
    accounts_named,
    decode_after,
    details_text,
    entries,
    invitation_row,
    page_of,
)

# Changes per read while a file is written (each read a short transaction of its own).
CHUNK = 1000

HEADERS = (
    "When (UTC)",
    "Action",
    "Person",
    "Person's account ID",
    "By",
    "By (kind)",
    "By account ID",
    "Details",
)


@dataclass(frozen=True)
class Export:
    """A file being made: its name, its type and its bytes as they come."""

    file_name: str
    media_type: str
    chunks: AsyncIterator[bytes]


class ActivityLog:
    """The activity log's use cases on reporting's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def page(
        self, view: ActivityView, *, limit: int, cursor: str | None = None
    ) -> ActivityPage:
        """One page of the view, newest first, after ``cursor`` (``InvalidCursor`` if bad)."""
        after = decode_after(cursor, view) if cursor else None
        async with self.engine.connect() as conn:
            rows = await store.page(conn, view, limit + 1, after)
            names = await store.names(conn, view.department_id, accounts_named(rows[:limit]))
        return page_of(rows, limit, view, names)

    async def export(
        self, view: ActivityView, *, bom: bool = False, today: date | None = None
    ) -> Export:
        """The view as CSV, newest first, streamed when iterated."""
        async with self.engine.connect() as conn:
            department = await users_store.department_name(conn, view.department_id)
        day = today or datetime.now(UTC).date()
        name = f"activity-{slug(department or '') or 'department'}-{day.isoformat()}.csv"
        return Export(name, MEDIA_TYPES["csv"], _csv(self.engine, view, bom=bom))


def csv_lines(found: list[ActivityEntry]) -> bytes:
    """CSV lines (RFC 4180) of changes; every text cell made safe to open in a spreadsheet
    (``cell_text``: control characters out, a formula start neutralised)."""
    out = io.StringIO()
    n = cell_text
    csv.writer(out).writerows(
        (
            csv_time(e.at),
            e.action,
            n(e.person_said()),
            str(e.person_id or ""),
            n(e.by.label),
            e.by.kind,
            str(e.by.account_id or ""),
            n(details_text(e.details)),
        )
        for e in found
    )
    return out.getvalue().encode()


def csv_header(*, bom: bool) -> bytes:
    """The header line, after a byte-order mark when asked (Excel then reads UTF-8)."""
    out = io.StringIO()
    out.write(BOM if bom else "")
    csv.writer(out).writerow(HEADERS)
    return out.getvalue().encode()


async def _pages(engine: AsyncEngine, view: ActivityView) -> AsyncGenerator[bytes, None]:
    # Page by page through the keyset, a short transaction each: an abandoned download
    # leaves nothing open, and the log only grows at its newest end, which is behind us.
    after = None
    while True:
        async with engine.connect() as conn:
            rows = await store.page(conn, view, CHUNK, after)
            names = await store.names(conn, view.department_id, accounts_named(rows))
        if not rows:
            return
        yield csv_lines(entries(rows, names))
        if len(rows) < CHUNK:
            return
        after = (rows[-1].occurred_at, rows[-1].event_id)


async def _csv(engine: AsyncEngine, view: ActivityView, *, bom: bool) -> AsyncIterator[bytes]:
    yield csv_header(bom=bom)
    chunks = ahead(_pages(engine, view))
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            yield chunk


async def on_invitation(uow: UnitOfWork, envelope: RawEnvelope, payload: Any) -> None:
    """Handle an invitation event (sent, sent again, withdrawn, lapsed): a row of the
    department's log, once per event."""
    row = invitation_row(envelope.event_id, envelope.occurred_at, payload)
    await store.add(uow.conn, [row])
