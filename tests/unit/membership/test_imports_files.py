"""Reading uploaded files: CSV dialects and encodings, XLSX, and the refusals."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import pytest
from openpyxl import Workbook, load_workbook

from prodigy_users.membership.errors import PROBLEMS
from prodigy_users.membership.imports.files import read_table, template_xlsx
from prodigy_users.membership.imports.rules import TEMPLATE_HEADERS
from prodigy_users.runtime.errors import DomainError
from prodigy_users.runtime.problems import Problem, problem_of

LIMIT = 50_000


def xlsx(rows: Sequence[Sequence[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def refusal(data: bytes, max_rows: int = LIMIT) -> Problem:
    with pytest.raises(DomainError) as caught:
        read_table(data, max_rows=max_rows)
    return problem_of(caught.value, PROBLEMS)


def test_csv_with_a_bom_and_windows_line_ends() -> None:
    table = read_table("\ufeffName,Email\r\nZoë Ünal,zoe@example.org\r\n".encode(), max_rows=LIMIT)
    assert table.file_type == "csv"
    assert table.encoding == "utf-8-sig"
    assert table.headers == ["Name", "Email"]
    assert table.rows == [(2, ["Zoë Ünal", "zoe@example.org"])]


def test_windows_1252_from_an_old_spreadsheet() -> None:
    data = "Name;Email\nJosé Müller;jose@example.org\n".encode("cp1252")
    table = read_table(data, max_rows=LIMIT)
    assert table.encoding == "cp1252"
    assert table.rows == [(2, ["José Müller", "jose@example.org"])]


def test_utf16_with_a_bom_and_tabs() -> None:
    data = "Name\tEmail\nAna Lima\tana@example.org\n".encode("utf-16")
    table = read_table(data, max_rows=LIMIT)
    assert table.headers == ["Name", "Email"]
    assert table.rows == [(2, ["Ana Lima", "ana@example.org"])]


def test_excel_sep_line_blank_lines_and_quoted_line_breaks() -> None:
    text = 'sep=;\n\nName;Email;Groups\n"Lee\nBo";bo@example.org;A;B\n\n"Cy";cy@example.org;\n'
    table = read_table(text.encode(), max_rows=LIMIT)
    assert table.headers == ["Name", "Email", "Groups"]
    # Line numbers are where each record starts, as a text editor shows them.
    assert table.rows == [
        (4, ["Lee\nBo", "bo@example.org", "A", "B"]),
        (7, ["Cy", "cy@example.org", ""]),
    ]


def test_xlsx_first_sheet_numbers_as_text() -> None:
    data = xlsx([["Email", "Employee ID", None], [None], ["a@example.org", 1042, None]])
    table = read_table(data, max_rows=LIMIT)
    assert table.file_type == "xlsx"
    assert table.headers == ["Email", "Employee ID"]
    # As wide as the values reach (the sheet's declared dimension, A1:C3, is ignored).
    assert table.rows == [(3, ["a@example.org", "1042"])]


def test_row_limit_counts_rows_below_the_header() -> None:
    rows = "".join(f"u{i}@example.org\n" for i in range(5))
    assert len(read_table(f"Email\n{rows}".encode(), max_rows=5).rows) == 5
    problem = refusal(f"Email\n{rows}x@example.org\n".encode(), max_rows=5)
    assert (problem.status, problem.slug) == (422, "too-many-rows")
    assert "5" in problem.detail
    problem = refusal(xlsx([["Email"], *[[f"u{i}@example.org"] for i in range(6)]]), max_rows=5)
    assert (problem.status, problem.slug) == (422, "too-many-rows")


@pytest.mark.parametrize("data", [b"", b"   \r\n\n", "\ufeff".encode()])
def test_empty_files(data: bytes) -> None:
    assert refusal(data).status == 422


def test_truncated_xlsx() -> None:
    data = xlsx([["Email"], ["a@example.org"]])
    problem = refusal(data[: len(data) // 2])
    assert (problem.status, problem.slug) == (422, "malformed-file")
    assert problem.errors == [{"field": "file", "message": "not a readable XLSX file"}]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, ".xls"),
        (b"%PDF-1.7\n...", "not a spreadsheet"),
        (b"\x00\x01\x02\x03garbage\xff\xfe" * 50, "encoding"),
        (bytes(range(256)) * 20, "encoding"),
    ],
)
def test_not_a_table(data: bytes, says: str) -> None:
    problem = refusal(data)
    assert problem.status == 415
    assert says in problem.detail


def test_a_zip_that_is_not_a_workbook() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<doc/>")
    problem = refusal(out.getvalue())
    assert problem.status == 415


def test_template_xlsx_has_the_headers_first_and_help_after() -> None:
    workbook = load_workbook(io.BytesIO(template_xlsx(TEMPLATE_HEADERS)))
    assert workbook.sheetnames == ["Users", "Help"]
    first = next(workbook.worksheets[0].iter_rows(values_only=True))
    assert list(first) == list(TEMPLATE_HEADERS)
    table = read_table(template_xlsx(TEMPLATE_HEADERS), max_rows=LIMIT)
    assert table.headers == list(TEMPLATE_HEADERS)
    assert table.rows == []


def test_a_nul_in_a_cell_is_the_rows_problem_not_the_files() -> None:
    data = b"Name,Email\r\nAna\x00Lima,ana@example.org\r\nBo,bo@example.org\r\n"
    table = read_table(data, max_rows=LIMIT)
    assert table.rows == [(2, ["Ana\x00Lima", "ana@example.org"]), (3, ["Bo", "bo@example.org"])]
    # UTF-16 without its BOM is half NULs: still not text.
    assert refusal("Name,Email\r\nAna,a@example.org\r\n".encode("utf-16-le")).status == 415
