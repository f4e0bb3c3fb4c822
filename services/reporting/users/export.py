"""The users table as a file: its columns, cells safe to open in a spreadsheet, CSV and XLSX.

Every text cell goes through ``runtime.text.cell_text``: control characters out first,
then a leading ``'`` on what a spreadsheet would run as a formula (the other order let
``"\x01=HYPERLINK(...)"`` through as a live formula once the XLSX writer dropped the
``\x01``). Names stored before the API refused control characters are made safe here.

Pure functions except ``XlsxSheet``, which writes its rows to a temporary file as
they come (openpyxl's write-only mode), so neither format holds the export in memory;
its text cells are written as string cells explicitly, never left to openpyxl's
guess (which makes ``=...`` a formula and ``#N/A`` an error value).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

from prodigy_users.runtime.text import cell_text

from ..rules import GroupNames

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell as XlsxCell
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

ExportFormat = Literal["csv", "xlsx"]
MEDIA_TYPES: dict[ExportFormat, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
HEADERS = (
    "Name",
    "Email",
    "Role",
    "Status",
    "Groups",
    "Employee ID",
    "Joined (UTC)",
    "Last change (UTC)",
)
GROUP_SEPARATOR = "; "
BOM = "\ufeff"

# The columns ``store.export_records`` selects, in the order of ``HEADERS``.
EXPORT_COLUMNS = (
    "name",
    "email",
    "role",
    "status",
    "groups",
    "employee_id",
    "joined_at",
    "updated_at",
)

Cell = str | datetime


class Record(Protocol):
    """A selected row: values in ``EXPORT_COLUMNS`` order (an asyncpg record, a tuple)."""

    def __getitem__(self, index: int, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


def _texts(record: Record, groups: GroupNames) -> tuple[str, ...]:
    name, email, role, status, ids, employee_id, _, _ = record
    n = cell_text  # (called 600,000 times in a 100,000-row export)
    return (
        n(name),
        n(email),
        n(role),
        n(status),
        n(groups.joined(ids, GROUP_SEPARATOR)),
        n(employee_id) if employee_id else "",
    )


def cells(record: Record, groups: GroupNames) -> tuple[Cell, ...]:
    """A row's cells in ``HEADERS`` order: text made safe (``cell_text``), groups named,
    times in UTC."""
    return (*_texts(record, groups), record[6].astimezone(UTC), record[7].astimezone(UTC))


def csv_start(*, bom: bool) -> bytes:
    """The header line, after a byte-order mark when asked (Excel then reads UTF-8)."""
    out = io.StringIO()
    out.write(BOM if bom else "")
    csv.writer(out).writerow(HEADERS)
    return out.getvalue().encode()


def csv_chunk(records: Iterable[Record], groups: GroupNames) -> bytes:
    """CSV lines (RFC 4180: CRLF, quoted where needed) of rows whose times are already
    text (UTC ``YYYY-MM-DD hh:mm:ss``, which spreadsheets read as dates)."""
    out = io.StringIO()
    csv.writer(out).writerows((*_texts(r, groups), r[6], r[7]) for r in records)
    return out.getvalue().encode()


def csv_time(moment: datetime) -> str:
    """A time as a CSV shows it (what ``store.export_records`` has PostgreSQL write)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _xlsx_cell(sheet: WriteOnlyWorksheet, cell: Cell) -> XlsxCell | datetime | None:
    from openpyxl.cell import WriteOnlyCell

    if isinstance(cell, datetime):
        return cell.replace(tzinfo=None)  # Excel has no time zones: UTC, as the header says
    if cell == "":
        return None
    # Already ``cell_text``: nothing XML 1.0 cannot carry, no formula start. Typed as a
    # string explicitly all the same: the file never depends on openpyxl's guess.
    text = WriteOnlyCell(sheet, value=cell)
    text.data_type = "s"
    return text


class XlsxSheet:
    """An XLSX workbook of one sheet, written row by row to a temporary file.

    Its methods block (call them from worker threads) and take turns: ``discard`` may
    come from another thread while an abandoned ``append`` is still running.
    """

    def __init__(self) -> None:
        # openpyxl is imported with the first XLSX export, not with the service.
        from openpyxl import Workbook

        self._turn = threading.Lock()
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet("Users")
        self._sheet.append(list(HEADERS))

    def append(self, records: Iterable[Record], groups: GroupNames) -> None:
        """Add rows."""
        with self._turn:
            for record in records:
                self._sheet.append([_xlsx_cell(self._sheet, c) for c in cells(record, groups)])

    def save(self, out: IO[bytes]) -> None:
        """Write the finished workbook to ``out``."""
        with self._turn:
            self._book.save(out)

    def discard(self) -> None:
        """Drop the temporary file of a workbook that will not be saved (or was)."""
        with self._turn:
            with contextlib.suppress(Exception):  # already saved: openpyxl removed it
                self._sheet.close()
            writer: Any = getattr(self._sheet, "_writer", None)  # no public way to it
            if writer is not None and os.path.exists(writer.out):
                writer.cleanup()


def slug(name: str) -> str:
    """``North EMS`` -> ``north-ems``: ASCII letters and digits joined by hyphens."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")


def file_name(department: str | None, day: date, fmt: ExportFormat) -> str:
    """``users-north-ems-2026-11-26.csv``."""
    return f"users-{slug(department or '') or 'department'}-{day.isoformat()}.{fmt}"
