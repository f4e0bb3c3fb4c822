"""Uploaded files of users: read into a table of text cells (or refused with the reason),
and the downloadable XLSX template.

CSV (comma, semicolon or tab separated; UTF-8 with or without BOM, UTF-16 with
BOM, or Windows-1252 as old spreadsheets save it) and XLSX (the first sheet).
The type comes from the content, not from the file name. No I/O: bytes in,
cells out, so a bad file is refused before anything is written.

An XLSX file is a ZIP of XML parts, and a small one can ask for a lot: parts that
expand a thousandfold, a shared-strings table of millions of entries, a sheet that
declares itself 16,384 columns wide (openpyxl's read-only mode pads every row to the
declared width), XML entities. So, before anything is opened, the ZIP directory must
show at most ``MAX_PARTS`` parts, ``MAX_EXPANDED`` bytes in all once expanded and no
large part expanding more than ``MAX_RATIO`` times; while reading, the shared strings
are counted (``MAX_SHARED_STRINGS``) and refused past the limit, the declared
dimension is ignored, rows are read ``MAX_COLUMNS`` wide and no further than one row
past the limit, and a DTD is refused (defusedxml, through openpyxl). Each refusal
names the problem (``UnsafeFile``). What no check here can bound (time, memory on
odd but valid files) is bounded by the child process that runs this
(``imports.parsing``).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import IO, TYPE_CHECKING, Any, Literal

from ..errors import (
    DamagedXlsx,
    EmptyFile,
    FileRefused,
    MalformedCsv,
    TooManyRows,
    UnsafeFile,
    UnsupportedFileType,
)

if TYPE_CHECKING:
    from openpyxl import Workbook

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
# Beyond this share of control characters a "text" file is really binary (UTF-16
# without its BOM is half NULs; random bytes rarely even decode). Fewer are accidents
# or mischief in some cells: their rows are invalid, the file is not refused.
_MAX_CONTROL_SHARE = 0.05
_FEW_CONTROLS = 16

# Columns read from each row: the template has 5; spreadsheets exported from other
# systems carry more, which are ignored anyway (the margin keeps them in results.csv).
MAX_COLUMNS = 64
# XLSX limits (see the module's doc). A full upload (10 MB, 50,000 rows) of real
# spreadsheets expands to well under MAX_EXPANDED, with parts compressed 5-20 times.
MAX_PARTS = 256
MAX_EXPANDED = 256 * 1024 * 1024
MAX_RATIO = 100
_RATIO_FROM = 1024 * 1024  # smaller parts may compress better: they cannot grow far
MAX_SHARED_STRINGS = 500_000
MAX_SHARED_STRINGS_BYTES = 32 * 1024 * 1024
_SHARED_STRINGS = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


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
    sample = text[:65536]
    controls = sum(1 for ch in sample if ch not in "\t\r\n\f" and unicodedata.category(ch) == "Cc")
    return controls > max(_FEW_CONTROLS, _MAX_CONTROL_SHARE * len(sample))


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
            yield line, [c.strip() for c in record[:MAX_COLUMNS]]

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


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB"


def check_archive(archive: zipfile.ZipFile) -> None:
    """Refuse a workbook whose ZIP directory shows it would expand too far (``UnsafeFile``).

    The directory's sizes bound the work: Python's ZIP reader never expands a part
    beyond its declared size (a part that lies fails its CRC check).
    """
    parts = archive.infolist()
    if len(parts) > MAX_PARTS:
        raise UnsafeFile(
            f"The XLSX file has {len(parts):,} parts; a workbook has a few dozen (at most "
            f"{MAX_PARTS}).",
            "too many parts",
        )
    expanded = sum(p.file_size for p in parts)
    if expanded > MAX_EXPANDED:
        raise UnsafeFile(
            f"The XLSX file would expand to {_mb(expanded)} when opened (at most "
            f"{_mb(MAX_EXPANDED)}); save it again without unused sheets, or split it.",
            "expands too far",
        )
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > _RATIO_FROM and ratio > MAX_RATIO:
            raise UnsafeFile(
                f"The part {part.filename!r} of the XLSX file expands {ratio:,.0f} times "
                f"(at most {MAX_RATIO}): a compression bomb, not a spreadsheet.",
                "a part expands too far",
            )


# An entry's start tag, with or without a namespace prefix (``<si>``, ``<x:si>``).
_ENTRY = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si[\s/>]")


def _entries_in(archive: zipfile.ZipFile, name: str) -> int:
    """How many entries the shared-strings part has, counted in its bytes as they are
    expanded (C speed: a table too long to parse is refused before parsing)."""
    count, tail = 0, b""
    with archive.open(name) as part:
        while chunk := part.read(1024 * 1024):
            window = tail + chunk
            # Matches wholly inside ``tail`` were counted with the previous chunk.
            count += len(_ENTRY.findall(window)) - len(_ENTRY.findall(tail))
            tail = window[-64:]
    return count


def _too_many_strings() -> UnsafeFile:
    return UnsafeFile(
        f"The XLSX file's shared-strings table has more than {MAX_SHARED_STRINGS:,} "
        "entries; an upload of at most 50,000 rows never needs that many.",
        "too many shared strings",
    )


def _string_table(source: IO[bytes]) -> list[str]:
    """The shared strings, as openpyxl reads them (each entry's text and the text of its
    formatted runs, without phonetic guides), counted: past ``MAX_SHARED_STRINGS`` the
    file is refused instead of held in memory. Reads the elements directly, about three
    times faster than openpyxl's own reader, which builds objects for every entry."""
    from openpyxl.xml.constants import SHEET_MAIN_NS
    from openpyxl.xml.functions import iterparse  # defusedxml's: no DTD, no entities

    entry, text, run = (f"{{{SHEET_MAIN_NS}}}{tag}" for tag in ("si", "t", "r"))
    strings: list[str] = []
    for _, node in iterparse(source):
        if node.tag != entry:
            continue
        if len(strings) >= MAX_SHARED_STRINGS:
            raise _too_many_strings()
        plain = node.find(text)
        parts = [plain.text or ""] if plain is not None else []
        for formatted in node.iterfind(run):
            piece = formatted.find(text)
            if piece is not None:
                parts.append(piece.text or "")
        strings.append("".join(parts).replace("x005F_", ""))
        node.clear()
    return strings


def _open_workbook(data: bytes) -> Workbook:
    """The workbook, read only, its shared strings bounded (see ``_string_table``)."""
    from openpyxl.reader.excel import ExcelReader

    class BoundedReader(ExcelReader):
        def read_strings(self) -> None:
            part = self.package.find(_SHARED_STRINGS)  # type: ignore[no-untyped-call]
            if part is None:
                return
            name = part.PartName[1:]
            if self.archive.getinfo(name).file_size > MAX_SHARED_STRINGS_BYTES:
                raise UnsafeFile(
                    f"The XLSX file's shared-strings table expands to "
                    f"{_mb(self.archive.getinfo(name).file_size)} (at most "
                    f"{_mb(MAX_SHARED_STRINGS_BYTES)}).",
                    "shared strings too large",
                )
            if _entries_in(self.archive, name) > MAX_SHARED_STRINGS:
                raise _too_many_strings()
            with self.archive.open(name) as source:
                self.shared_strings = _string_table(source)

    reader = BoundedReader(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    reader.read()
    return reader.wb


def _entities(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is defusedxml refusing a DTD or an entity."""
    from defusedxml import DefusedXmlException

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DefusedXmlException):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _entities_refused() -> UnsafeFile:
    return UnsafeFile(
        "The XLSX file declares XML entities (a DTD), which spreadsheets never write; refused.",
        "XML entities are not allowed",
    )


def _used(values: tuple[Any, ...]) -> list[str]:
    """A row's cells as text, without the empty ones after its last value."""
    cells = [_cell(v) for v in values]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _blank(values: tuple[Any, ...]) -> bool:
    # C-speed: a gap of a million rows in a sheet is a million of these.
    return values.count(None) == len(values)


def read_xlsx(data: bytes, *, max_rows: int) -> Table:
    """Rows of the workbook's first sheet; the first non-blank row is the header."""
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "xl/workbook.xml" not in names:
                raise UnsupportedFileType(
                    "This ZIP file is not an Excel workbook: upload a CSV or XLSX file."
                )
            check_archive(archive)
            if archive.testzip() is not None:
                raise zipfile.BadZipFile("a member fails its CRC check")
        workbook = _open_workbook(data)
    except FileRefused:
        raise
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        if _entities(exc):
            raise _entities_refused() from exc
        raise DamagedXlsx(
            "The XLSX file cannot be opened (it may be truncated or damaged); save it again "
            "from the spreadsheet and upload it."
        ) from exc
    try:
        if not workbook.worksheets:
            raise EmptyFile()
        sheet = workbook.worksheets[0]
        # The declared size is the file's word, not a fact: ignored (see the module's doc).
        sheet.reset_dimensions()
        numbered = enumerate(sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1)
        headers, rows = _header_and_rows(
            ((number, [] if _blank(values) else _used(values)) for number, values in numbered),
            max_rows,
        )
    except FileRefused:
        raise
    except Exception as exc:
        if _entities(exc):
            raise _entities_refused() from exc
        raise DamagedXlsx(
            f"The XLSX file cannot be read ({type(exc).__name__}); save it again and upload it."
        ) from exc
    finally:
        workbook.close()
    # Every row as wide as the widest one: the used range the dimension should have said.
    width = max((len(cells) for _, cells in rows), default=0)
    for _, cells in rows:
        cells.extend([""] * (width - len(cells)))
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
