"""Files an upload refuses, with the right error and nothing written; and files in older
encodings or with formulas, which get the right outcome."""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import Workbook

from tests.e2e.import_support import (
    csv_file,
    imports_path,
    list_imports,
    results,
    run_import,
    tag,
    upload,
)
from tests.support import Admin, Api, problem_type

pytestmark = pytest.mark.e2e

MB10 = 10 * 1024 * 1024


def workbook(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def refused(
    api: Api, admin: Admin, data: bytes, status: int, kind: str, *, file_name: str = "f.csv"
) -> dict[str, Any]:
    r = await upload(api, admin, data, file_name=file_name)
    assert r.status_code == status, r.text
    assert problem_type(r) == kind, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["detail"]
    assert any(e["field"] == "file" for e in body.get("errors", [])), body
    return body


async def test_bad_files_are_refused_and_nothing_is_written(api: Api) -> None:
    admin = await api.create_department()
    t = tag()
    good = workbook([["Name", "Email"], ["Ana", f"ana-{t}@example.org"]])
    await refused(api, admin, good[: len(good) - 200], 422, "malformed-file", file_name="a.xlsx")
    await refused(api, admin, b"", 422, "empty-file")
    await refused(api, admin, b"\r\n\r\n", 422, "empty-file")
    await refused(api, admin, csv_file([["Name", "Email"]]), 422, "no-rows")
    body = await refused(
        api, admin, csv_file([["Name", "Phone"], ["Ana", "555"]]), 422, "no-email-column"
    )
    assert "'Phone'" in body["detail"]
    await refused(api, admin, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", 415, "unsupported-file-type")
    await refused(
        api, admin, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), 415, "unsupported-file-type"
    )
    await refused(api, admin, bytes(range(256)) * 64, 415, "unsupported-file-type")

    # Not a multipart upload, or one without the file.
    url = api.url("membership", imports_path(admin))
    r = await api.http.post(url, json={"file": "x"}, headers=admin.headers)
    assert (r.status_code, problem_type(r)) == (415, "unsupported-media-type")
    r = await api.http.post(url, files={"other": ("x.csv", b"Email\n")}, headers=admin.headers)
    assert (r.status_code, problem_type(r)) == (422, "validation")
    r = await upload(api, admin, csv_file([["Email"], ["a@example.org"]]), mode="merge")
    assert r.status_code == 422

    assert await list_imports(api, admin) == []


async def test_size_and_row_limits_are_named_in_the_error(api: Api) -> None:
    admin = await api.create_department()
    t = tag()
    # Exactly 50,000 rows in exactly 10 MB is accepted (as a preview: nothing changes).
    header = "Name,Email,Notes\r\n"
    rows = [f"P {i},lim{i:05d}-{t}@example.org," for i in range(50_000)]
    size = len(header) + sum(len(r) + 2 for r in rows)
    pad, extra = divmod(MB10 - size, len(rows))
    body = header + "".join(
        r + "x" * (pad + (1 if i < extra else 0)) + "\r\n" for i, r in enumerate(rows)
    )
    data = body.encode()
    assert len(data) == MB10
    r = await upload(api, admin, data, dry_run=True)
    assert r.status_code == 202, r.text

    too_big = await refused(api, admin, data + b"x", 413, "file-too-large")
    assert "10 MB" in too_big["detail"]
    too_many = csv_file([["Email"], *[[f"many{i:05d}-{t}@example.org"] for i in range(50_001)]])
    assert len(too_many) < MB10
    body_ = await refused(api, admin, too_many, 422, "too-many-rows")
    assert "50,000" in body_["detail"]
    # Only the accepted preview was stored.
    assert len(await list_imports(api, admin)) == 1


async def test_older_encodings_are_read_as_the_spreadsheet_wrote_them(api: Api) -> None:
    admin = await api.create_department()
    t = tag()
    people = [["José Müller", f"jose-{t}@example.org"], ["Zoë Çelik", f"zoe-{t}@example.org"]]
    windows = csv_file([["Name", "Email"], *people], encoding="cp1252").replace(b",", b";")
    status = await run_import(api, admin, windows)
    assert status["counts"]["created"] == 2
    utf16 = csv_file([["Name", "Email"], ["Åsa Öberg", f"asa-{t}@example.org"]], encoding="utf-16")
    status16 = await run_import(api, admin, utf16)
    assert status16["counts"]["created"] == 1
    for name, email in [*people, ["Åsa Öberg", f"asa-{t}@example.org"]]:
        row = await api.wait_reported(admin, email)
        assert row["name"] == name
    got = await results(api, admin, status["import_id"])
    assert [r[1] for r in got[1:]] == ["José Müller", "Zoë Çelik"]


async def test_formulas_in_a_name_are_refused_and_neutralised_in_the_results(api: Api) -> None:
    admin = await api.create_department()
    t = tag()
    names = ["=1+2", "+SUM(A1:A9)", "-2+3", "@cmd", "Ana Lima"]
    data = csv_file(
        [["Name", "Email"], *[[n, f"f{i}-{t}@example.org"] for i, n in enumerate(names)]]
    )
    status = await run_import(api, admin, data)
    assert (status["counts"]["invalid"], status["counts"]["created"]) == (4, 1)
    got = await results(api, admin, status["import_id"])
    assert [r[1] for r in got[1:]] == ["'=1+2", "'+SUM(A1:A9)", "'-2+3", "'@cmd", "Ana Lima"]
    for row in got[1:5]:
        assert row[-2] == "invalid" and "formula" in row[-1]
        assert not row[-1].startswith(("=", "+", "-", "@"))
