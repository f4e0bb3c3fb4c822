"""Helpers for the bulk-upload tests: upload, wait, read results.csv, count accounts."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import Admin, Api, wait_for


def csv_file(rows: Sequence[Sequence[str]], *, encoding: str = "utf-8") -> bytes:
    """A CSV file of these rows (the first is the header)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def imports_path(admin: Admin, suffix: str = "") -> str:
    """``/v1/departments/{dept}/imports{suffix}``."""
    return f"/v1/departments/{admin.department_id}/imports{suffix}"


async def upload(
    api: Api,
    admin: Admin,
    data: bytes,
    *,
    file_name: str = "users.csv",
    dry_run: bool = False,
    mode: str = "add",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a file to the department's imports (multipart field ``file``)."""
    params = {"mode": mode, **({"dry_run": "true"} if dry_run else {})}
    return await api.http.post(
        api.url("membership", imports_path(admin)),
        params=params,
        files={"file": (file_name, data, "application/octet-stream")},
        headers=headers if headers is not None else admin.headers,
    )


async def import_status(api: Api, admin: Admin, import_id: str) -> dict[str, Any]:
    """GET the import's progress."""
    r = await api.http.get(
        api.url("membership", imports_path(admin, f"/{import_id}")), headers=admin.headers
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def wait_import(
    api: Api, admin: Admin, import_id: str, *, timeout: float = 60.0
) -> dict[str, Any]:
    """Wait until every row of the import has its outcome."""

    async def probe() -> dict[str, Any] | None:
        body = await import_status(api, admin, import_id)
        return body if body["status"] == "finished" else None

    return await wait_for(probe, timeout=timeout, interval=0.2, what=f"import {import_id}")


async def run_import(api: Api, admin: Admin, data: bytes, **options: Any) -> dict[str, Any]:
    """Upload, expect 202, wait until finished; the final status."""
    timeout = options.pop("timeout", 60.0)
    r = await upload(api, admin, data, **options)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == r.json()["import_url"]
    return await wait_import(api, admin, r.json()["import_id"], timeout=timeout)


async def results(api: Api, admin: Admin, import_id: str) -> list[list[str]]:
    """results.csv as rows of cells (header first)."""
    r = await api.http.get(
        api.url("membership", imports_path(admin, f"/{import_id}/results.csv")),
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))


async def list_imports(api: Api, admin: Admin) -> list[dict[str, Any]]:
    """The department's imports, newest first."""
    r = await api.http.get(api.url("membership", imports_path(admin)), headers=admin.headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def accounts_with(database_url: str, emails: Sequence[str]) -> dict[str, int]:
    """How many identity accounts each address has (case-insensitively): 0 or 1."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT email_normalised, count(*) FROM accounts "
                    "WHERE email_normalised = ANY(:emails) GROUP BY email_normalised"
                ),
                {"emails": [e.lower() for e in emails]},
            )
            found = {r[0]: int(r[1]) for r in rows}
    finally:
        await engine.dispose()
    return {e.lower(): found.get(e.lower(), 0) for e in emails}


async def mail_count(api: Api, emails: Sequence[str]) -> dict[str, int]:
    """Captured mails per address."""
    wanted = {e.lower() for e in emails}
    counts = dict.fromkeys(wanted, 0)
    for mail in await api.mails():
        for to in mail["to"]:
            if to.lower() in wanted:
                counts[to.lower()] += 1
    return counts


def tag() -> str:
    """A short unique tag for this test's addresses."""
    return uuid.uuid4().hex[:8]
