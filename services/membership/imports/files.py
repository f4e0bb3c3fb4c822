"""Uploaded files of users: read into a table of text cells (or refused with the reason),
and the downloadable XLSX template.

CSV (comma, semicolon or tab separated; UTF-8 with or without BOM, UTF-16 with
BOM, or Windows-1252 as old spreadsheets save it) and XLSX (the first sheet).
The type comes from the content, not from the file name. No I/O: bytes in,
cells out, so a bad file is refused before anything is written.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal

from ..errors import (
    DamagedXlsx,
    EmptyFile,
    FileRefused,
    MalformedCsv,
    TooManyRows,
    UnsupportedFileType,
)

FileType = Literal["csv", "xlsx"]

_ZIP = b"PK\x03\x04"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and .doc)
_BINARY_MAGIC = (
    b"%PDF",
    b"\x89PNG",
    b"GIF8",
    b"\xff\xd8\xff",
    b"\x1f\x8b",
    b"7z\xbc\xaf",
    b"Rar!",
    b"\x7fELF",
    b"MZ",
)
_DELIMITERS = (",", ";", "\t", "|")
# Beyond this share of control characters a "text" file is really binary.
_MAX_CONTROL_SHARE = 0.01


@dataclass(frozen=True)
class Table:
    """The file as text: its header cells and its data rows with their line numbers."""

    file_type: FileType
    headers: list[str]
    rows: list[tuple[int, list[str]]]
    encoding: str | None = None


def read_table(data: bytes, *, max_rows: int) -> Table:
    """The file's header and rows; ``FileRefused`` for anything that is not a table."""
    if not data.strip():
        raise EmptyFile()
    if data.startswith(_ZIP):
        return read_xlsx(data, max_rows=max_rows)
    if data.startswith(_OLE2):
        raise UnsupportedFileType(
            "This is an old Excel (.xls) file; save it as .xlsx or CSV and upload it again."
        )
    if data.startswith(_BINARY_MAGIC):
        raise UnsupportedFileType("This is not a spreadsheet: upload a CSV or XLSX file.")
    text, encoding = decode_text(data)
    return read_csv(text, encoding=encoding, max_rows=max_rows)


def decode_text(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was in."""
    candidates: tuple[str, ...]
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = ("utf-8-sig",)
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ("utf-16",)
    else:
        # Windows-1252 maps nearly every byte, so it only comes after UTF-8 failed.
        candidates = ("utf-8", "cp1252")
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_binary(text):
            break
        return text, encoding
    raise UnsupportedFileType(
        "The file is neither a spreadsheet nor text in a known encoding (UTF-8, UTF-16 "
        "or Windows-1252)."
    )


def _looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    sample = text[:65536]
    controls = sum(1 for ch in sample if ch not in "\t\r\n\f" and unicodedata.category(ch) == "Cc")
    return controls > _MAX_CONTROL_SHARE * max(len(sample), 1)


def _delimiter(header_line: str) -> str:
    """The separator of the header line: whichever of , ; tab | it has most of."""
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _header_and_rows(
    numbered: Iterable[tuple[int, list[str]]], max_rows: int
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The first non-blank row is the header; the non-blank rows after it, with their
    line numbers, are the rows (at most ``max_rows``, else a 422 saying the limit)."""
    headers: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    for line, cells in numbered:
        if not any(cells):
            continue
        if headers is None:
            headers = cells
            continue
        if len(rows) >= max_rows:
            raise TooManyRows(max_rows)
        rows.append((line, cells))
    return headers or [], rows


def read_csv(text: str, *, encoding: str | None = None, max_rows: int) -> Table:
    """Rows of a CSV text; the first non-blank line is the header."""
    lines = text.splitlines(keepends=True)
    first = 0
    # Excel writes "sep=;" on the first line to name the separator.
    delimiter: str | None = None
    while first < len(lines) and not lines[first].strip():
        first += 1
    if first < len(lines) and lines[first].strip().lower().startswith("sep="):
        sep = lines[first].strip()[4:]
        delimiter = sep[:1] or None
        first += 1
    while first < len(lines) and not lines[first].strip():
        first += 1
    if first >= len(lines):
        raise EmptyFile()
    delimiter = delimiter or _delimiter(lines[first])
    reader = csv.reader(io.StringIO("".join(lines[first:])), delimiter=delimiter)
    consumed = 0

    def records() -> Iterator[tuple[int, list[str]]]:
        nonlocal consumed
        for record in reader:
            line = first + consumed + 1
            consumed = reader.line_num
            yield line, [c.strip() for c in record]

    try:
        headers, rows = _header_and_rows(records(), max_rows)
    except csv.Error as exc:
        raise MalformedCsv(
            f"The CSV file cannot be read near line {first + consumed + 1}: {exc}."
        ) from exc
    return Table("csv", headers, rows, encoding)


def _cell(value: Any) -> str:
    """An XLSX cell as the text the admin sees (1042, not 1042.0; dates as ISO)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value).strip()


def read_xlsx(data: bytes, *, max_rows: int) -> Table:
    """Rows of the workbook's first sheet; the first non-blank row is the header."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "xl/workbook.xml" not in names:
                raise UnsupportedFileType(
                    "This ZIP file is not an Excel workbook: upload a CSV or XLSX file."
                )
            if archive.testzip() is not None:
                raise zipfile.BadZipFile("a member fails its CRC check")
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except FileRefused:
        raise
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise DamagedXlsx(
            "The XLSX file cannot be opened (it may be truncated or damaged); save it again "
            "from the spreadsheet and upload it."
        ) from exc
    try:
        if not workbook.worksheets:
            raise EmptyFile()
        numbered = enumerate(workbook.worksheets[0].iter_rows(values_only=True), start=1)
        headers, rows = _header_and_rows(
            ((number, [_cell(v) for v in values]) for number, values in numbered), max_rows
        )
    except FileRefused:
        raise
    except Exception as exc:
        raise DamagedXlsx(
            f"The XLSX file cannot be read ({type(exc).__name__}); save it again and upload it."
        ) from exc
    finally:
        workbook.close()
    while headers and not headers[-1]:
        headers.pop()
    return Table("xlsx", headers, rows)


TEMPLATE_HELP = (
    ("Column", "What to put in it"),
    ("Name", "Full name (or use two columns, First name and Last name). Needed for new people."),
    ("Email", "Login email address. Required; one row per person."),
    ("Role", "admin, officer or member. Empty: member (update mode: unchanged)."),
    ("Employee ID", "Optional; unique in the department (used for single sign-on)."),
    ("Groups", "Optional; group names separated by ';'. Missing groups are created."),
)


def template_xlsx(headers: tuple[str, ...]) -> bytes:
    """The downloadable XLSX template: the header row on the first sheet, help on a second."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    users = workbook.active
    assert users is not None
    users.title = "Users"
    users.append(list(headers))
    for cell in users[1]:
        cell.font = Font(bold=True)
    for column, width in zip("ABCDE", (28, 34, 12, 16, 30), strict=True):
        users.column_dimensions[column].width = width
    users.freeze_panes = "A2"
    help_sheet = workbook.create_sheet("Help")
    for line in TEMPLATE_HELP:
        help_sheet.append(list(line))
    help_sheet.column_dimensions["A"].width = 14
    help_sheet.column_dimensions["B"].width = 90
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
