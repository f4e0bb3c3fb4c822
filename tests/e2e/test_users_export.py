"""The users table's export end to end: exactly the rows and columns of the view (the
paged API is the reference), formula-like cells neutralised, CSV (with or without a
BOM) and XLSX that openpyxl opens, and a file name with the department and the date."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from openpyxl import load_workbook

from tests.e2e.users_table_support import (
    Dataset,
    Department,
    moment,
    users_url,
    viewer,
    walk,
)
from tests.support import Api, wait_for

pytestmark = pytest.mark.e2e

HEADERS = [
    "Name",
    "Email",
    "Role",
    "Status",
    "Groups",
    "Employee ID",
    "Joined (UTC)",
    "Last change (UTC)",
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def data(users_dataset: Dataset) -> Dataset:
    """Two departments made through the public API, as reporting shows them (made once
    per worker, shared with the other modules that only read them)."""
    return users_dataset


async def download(
    api: Api, dept: Department, params: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    """GET the export, read to the end."""
    r = await api.http.get(
        users_url(api, dept.id, "/export"),
        params=params,
        headers=headers or dept.admin.headers,
    )
    assert r.status_code == 200, r.text
    return r


def safe(text: str) -> str:
    """What a cell holds for ``text``: a leading ``'`` where a spreadsheet sees a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def expected_cells(row: dict[str, Any]) -> list[str]:
    """The view's row as the CSV must have it (times: UTC, to the second)."""
    return [
        safe(row["name"]),
        safe(row["email"]),
        row["role"],
        row["status"],
        safe("; ".join(g["name"] for g in row["groups"])),
        safe(row["employee_id"] or ""),
        moment(row["joined_at"]).strftime("%Y-%m-%d %H:%M:%S"),
        moment(row["updated_at"]).strftime("%Y-%m-%d %H:%M:%S"),
    ]


def csv_rows(body: bytes) -> list[list[str]]:
    """A CSV export's lines (header first)."""
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


def _views(data: Dataset) -> list[dict[str, Any]]:
    g = data.a.groups
    return [
        {},
        {"sort": "-joined_at", "role": "member,officer"},
        {"sort": "employee_id", "status": "active"},
        {"sort": "-employee_id"},
        {"sort": "email", "group": [g["Night shift"], g["+Plus crew"]]},
        {"sort": "-role", "q": "person"},
        {"sort": "updated_at", "q": "ana", "status": "active"},
        {"role": "admin", "status": "inactive"},  # nobody: the header alone
    ]


async def test_the_csv_is_exactly_the_view(api: Api, data: Dataset) -> None:
    for params in _views(data):
        view = await walk(api, data.a, params, limit=2)
        r = await download(api, data.a, {**params, "format": "csv"})
        header, *lines = csv_rows(r.content)
        assert header == HEADERS
        assert lines == [expected_cells(row) for row in view], params


async def test_formula_like_cells_are_neutralised(api: Api, data: Dataset) -> None:
    r = await download(api, data.a, {"format": "csv"})
    by_name = {line[0]: line for line in csv_rows(r.content)[1:]}
    assert by_name["'=SUM(1+2)"][5] == "'=1+1"
    assert by_name["'=SUM(1+2)"][4] == "'+Plus crew"
    assert {"'+Plus Person", "'-Minus Person", "'@At Person"} <= by_name.keys()
    assert by_name["'-Minus Person"][5] == "'-42"
    assert by_name["'+Plus Person"][4] == "'+Plus crew; Medics"
    for line in csv_rows(r.content):
        for cell in line:
            assert not cell.startswith(FORMULA_STARTS), line
    # The table itself shows the names as they are.
    names = {row["name"] for row in await walk(api, data.a, {})}
    assert {"=SUM(1+2)", "+Plus Person", "-Minus Person", "@At Person"} <= names


def _xlsx_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


async def test_the_xlsx_opens_and_matches_the_view(api: Api, data: Dataset) -> None:
    for params in _views(data)[:3]:
        view = await walk(api, data.a, params)
        r = await download(api, data.a, {**params, "format": "xlsx"})
        assert r.headers["content-type"] == (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        sheet = load_workbook(io.BytesIO(r.content)).active
        assert sheet is not None
        rows = list(sheet.iter_rows())
        assert [c.value for c in rows[0]] == HEADERS
        assert len(rows) == len(view) + 1, params
        for cells, row in zip(rows[1:], view, strict=True):
            assert all(c.data_type != "f" for c in cells), "no formulas, ever"
            joined, updated = cells[6].value, cells[7].value
            assert isinstance(joined, datetime) and isinstance(updated, datetime)
            # Excel keeps times to the millisecond: compare to the second.
            assert abs(joined.replace(tzinfo=UTC) - moment(row["joined_at"])) < timedelta(seconds=1)
            assert abs(updated.replace(tzinfo=UTC) - moment(row["updated_at"])) < timedelta(
                seconds=1
            )
            assert [_xlsx_value(c.value) for c in cells[:6]] == expected_cells(row)[:6]
    r = await download(api, data.a, {"format": "xlsx", "q": "sum("})
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    [_, formula] = list(sheet.iter_rows())
    assert formula[0].value == "'=SUM(1+2)" and formula[0].data_type == "s"


async def test_bom_only_when_asked(api: Api, data: Dataset) -> None:
    plain = await download(api, data.a, {"format": "csv"})
    bom = await download(api, data.a, {"format": "csv", "bom": "true"})
    assert not plain.content.startswith(b"\xef\xbb\xbf")
    assert bom.content.startswith(b"\xef\xbb\xbf")
    assert bom.content[3:] == plain.content
    assert plain.headers["content-type"] == "text/csv; charset=utf-8"


async def test_the_file_is_named_after_the_department_and_the_day(api: Api, data: Dataset) -> None:
    slug = re.sub(r"[^a-z0-9]+", "-", data.a.name.lower()).strip("-")
    assert slug.startswith("north-ems-")
    for fmt in ("csv", "xlsx"):
        before = datetime.now(UTC).date()
        r = await download(api, data.a, {"format": fmt})
        after = datetime.now(UTC).date()
        names = {f'attachment; filename="users-{slug}-{day}.{fmt}"' for day in (before, after)}
        assert r.headers["content-disposition"] in names
        assert r.headers["cache-control"] == "no-store"
        assert r.headers.get("transfer-encoding") == "chunked", "streamed, no length up front"
    # An officer's export is the same file.
    r = await download(api, data.a, {"format": "csv"}, headers=viewer(data.shared))
    assert r.content == (await download(api, data.a, {"format": "csv"})).content


async def test_unknown_formats_are_refused(api: Api, data: Dataset) -> None:
    r = await api.http.get(
        users_url(api, data.a.id, "/export"),
        params={"format": "pdf"},
        headers=data.a.admin.headers,
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["format"]


async def test_the_other_department_exports_only_its_own(api: Api, data: Dataset) -> None:
    r = await download(api, data.b, {"format": "csv"})
    emails = {line[1] for line in csv_rows(r.content)[1:]}
    assert emails == {m.email for m in data.b.members.values()}
    [shared] = [line for line in csv_rows(r.content)[1:] if line[1] == data.shared.email]
    assert shared[2:6] == ["member", "inactive", "Night shift", "B-7"]


COLUMNS = ["department_id", "account_id", "name", "sort_name", "email", "role", "status"]
COLUMNS += ["joined_at", "updated_at"]


async def _many_members(database_url: str, department_id: str, count: int) -> None:
    """``count`` extra rows in reporting's users table, straight in (API-made people
    would take minutes): enough for an export of many chunks."""
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    now = datetime.now(UTC)
    dept = uuid.UUID(department_id)
    rows = [
        (dept, uuid.uuid4(), f"Bulk {i:05d}", f"bulk {i:05d}", f"bulk{i}@example.org",
         "member", "active", now, now)
        for i in range(count)
    ]  # fmt: skip
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "users",
            records=rows,
            columns=COLUMNS,
        )
    finally:
        await conn.close()


async def _stuck_transactions(database_url: str) -> int:
    """Sessions on reporting's database idle inside a transaction for over a second."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'idle in transaction' AND state_change < now() - interval '1 second'"
        )
        return count
    finally:
        await conn.close()


async def test_an_abandoned_download_leaves_nothing_behind(api: Api, stack: Any) -> None:
    if stack is None:
        pytest.skip("PRODIGY_TEST_TARGET=external: this test writes into reporting's database")
    database_url = stack.service_env("reporting")["PRODIGY_DATABASE_URL"]
    admin = await api.create_department(name="Abandon EMS")
    await api.wait_reported(admin, admin.email)
    await _many_members(database_url, admin.department_id, 30_000)
    url = api.url("reporting", f"/v1/reports/departments/{admin.department_id}/users/export")

    # More abandoned downloads than the service has pooled connections. A CSV is left
    # after its first piece, mid-read. An XLSX as soon as its answer starts: its rows are
    # all read (in a transaction) before the first byte of the file, so that is when a
    # transaction can be left open; waiting for that byte took 8 of the test's 10 s.
    for fmt in ("csv", "xlsx", *["csv"] * 12):
        async with (
            httpx.AsyncClient(timeout=60) as client,
            client.stream("GET", url, params={"format": fmt}, headers=admin.headers) as r,
        ):
            assert r.status_code == 200
            if fmt == "csv":
                async for _ in r.aiter_raw():
                    break  # the user cancels the download

    async def settled() -> bool:
        return await _stuck_transactions(database_url) == 0

    await wait_for(settled, timeout=30, what="no transaction left open by an export")
    # Every pooled connection is clean: pages and a whole export still work.
    for _ in range(20):
        r = await api.http.get(
            api.url("reporting", f"/v1/reports/departments/{admin.department_id}/users"),
            params={"limit": 5, "sort": "-joined_at"},
            headers=admin.headers,
        )
        assert r.status_code == 200, r.text
    r = await api.http.get(url, params={"format": "csv"}, headers=admin.headers, timeout=120)
    assert r.status_code == 200
    assert len(csv_rows(r.content)) == 30_000 + 2  # the header, the admin, the bulk
