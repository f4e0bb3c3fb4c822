"""Spreadsheets built to cost more than they are worth, for the upload tests (unit and
end to end), and an honest one to compare with."""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterable

from openpyxl import Workbook

SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def workbook(rows: Iterable[Iterable[object]]) -> bytes:
    """An XLSX file of these rows, as openpyxl writes it."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def people(n: int, tag: str) -> list[list[str]]:
    """A header and ``n`` people."""
    return [["Name", "Email"], *[[f"Person {i}", f"p{i}-{tag}@example.org"] for i in range(n)]]


def rewritten(data: bytes, parts: dict[str, bytes], *, extra: Iterable[str] = ()) -> bytes:
    """``data`` (an XLSX file) with some parts replaced or added (deflated)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename not in parts:
                target.writestr(info.filename, source.read(info.filename))
        for name, content in parts.items():
            target.writestr(name, content)
        for name in extra:
            target.writestr(name, b"")
    return out.getvalue()


def declared_huge_dimension(rows: int = 2000, tag: str = "dim") -> bytes:
    """``rows`` people in two columns, in a sheet that says it is ``A1:XFD{rows+1}``:
    openpyxl's read-only mode used to pad every row to 16,384 cells."""
    data = workbook(people(rows, tag))
    sheet = zipfile.ZipFile(io.BytesIO(data)).read(SHEET).decode()
    sheet = re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="A1:XFD{rows + 1}"/>', sheet)
    assert "XFD" in sheet
    return rewritten(data, {SHEET: sheet.encode()})


def _with_shared_strings(table: bytes, cells: str) -> bytes:
    """A workbook whose sheet's first rows point into the shared-strings ``table``."""
    data = workbook([["Name", "Email"]])
    archive = zipfile.ZipFile(io.BytesIO(data))
    types = archive.read("[Content_Types].xml").decode()
    if "sharedStrings" not in types:
        types = types.replace(
            "</Types>",
            f'<Override PartName="/{STRINGS}" ContentType="{STRINGS_TYPE}"/></Types>',
        )
    rels_name = "xl/_rels/workbook.xml.rels"
    rels = archive.read(rels_name).decode()
    if "sharedStrings" not in rels:
        rels = rels.replace(
            "</Relationships>",
            '<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
        )
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN_NS}"><sheetData>'
        f"{cells}</sheetData></worksheet>"
    )
    return rewritten(
        data,
        {
            "[Content_Types].xml": types.encode(),
            rels_name: rels.encode(),
            STRINGS: table,
            SHEET: sheet.encode(),
        },
    )


def _strings(entries: Iterable[str]) -> bytes:
    body = "".join(f"<si><t>{e}</t></si>" for e in entries)
    return f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN_NS}">{body}</sst>'.encode()


_HEADER_CELLS = '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'


def shared_strings_bomb(entries: int = 3_000_000) -> bytes:
    """The reported one: a shared-strings table of millions of identical entries, about
    51 MB expanded from about 130 KB."""
    return _with_shared_strings(_strings(["Name", "Email", *["x"] * entries]), _HEADER_CELLS)


def many_shared_strings(entries: int = 600_000) -> bytes:
    """More shared strings than any upload needs, each different, so that every part
    stays under the compression-ratio limit: only the count gives it away."""
    return _with_shared_strings(
        _strings(["Name", "Email", *(f"{i:07d}" for i in range(entries))]), _HEADER_CELLS
    )


def high_ratio_part(size: int = 64 * 1024 * 1024) -> bytes:
    """An honest workbook plus one part of zeros that expands about a thousandfold."""
    data = workbook(people(3, "ratio"))
    return rewritten(data, {"xl/media/padding.bin": bytes(size)})


def too_much_in_all(parts: int = 3, size: int = 100 * 1024 * 1024) -> bytes:
    """Parts that each compress less than 100 times, together more than can be expanded."""
    chunk = os.urandom(1200) + bytes(98_800)  # about 80 times
    block = chunk * (size // len(chunk))
    data = workbook(people(3, "total"))
    return rewritten(data, {f"xl/media/part{i}.bin": block for i in range(parts)})


def many_parts(count: int = 1000) -> bytes:
    """An honest workbook in an archive of a thousand empty parts."""
    names = (f"xl/x/{i}.xml" for i in range(count))
    return rewritten(workbook(people(3, "parts")), {}, extra=names)


def entity_expansion() -> bytes:
    """ "Billion laughs": a shared-strings table whose DTD expands one entity a billion
    times."""
    dtd = '<!DOCTYPE sst [<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    table = (
        f'<?xml version="1.0" encoding="UTF-8"?>{dtd}]><sst xmlns="{MAIN_NS}">'
        "<si><t>Name</t></si><si><t>&lol9;</t></si></sst>"
    )
    return _with_shared_strings(table.encode(), _HEADER_CELLS)
