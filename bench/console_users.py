"""Benchmark the console's users page at 100,000 members: server time per page.

Seeds one department's 100,000 members straight into reporting's database (COPY,
as ``bench/reporting_reads.py`` does), then asks the console, over HTTP and signed
in as the department's admin, for ``-n`` users pages: every sort both ways, role,
status and group filters, searches, and pages deep in the cursor walk. Each is
measured twice: as the full page (a first visit) and as the htmx fragment a filter
change asks for (``HX-Request: true``). A console page costs three service calls
made at once (reporting's page of 50 rows with its count, membership's groups and
the person's departments, for the department's name) plus the rendering.

Target (issue 15): p95 of the full page under 150 ms.

Run:  python bench/console_users.py             (about two minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from harness import add_target_arguments, target_stack
from reporting_reads import page_requests, percentiles, reporting_process, seed, unseed
from sqlalchemy.engine import make_url

from tests.support import wait_for


def console_query(view: dict[str, Any], cursor: str | None = None) -> str:
    """The console's address for a reporting view (lists become comma-separated)."""
    pairs = [(k, ",".join(v) if isinstance(v, list) else str(v)) for k, v in view.items()]
    if cursor:
        pairs += [("cursor", cursor), ("page", "2")]
    return urlencode(pairs)


async def deep_cursors(
    http: httpx.AsyncClient, reporting: str, dept: uuid.UUID, token: str, view: dict[str, Any]
) -> list[str]:
    """Cursors of pages 2..20 of a view (read from reporting, as the console's links carry)."""
    cursors: list[str] = []
    cursor: str | None = None
    for _ in range(20):
        params: dict[str, Any] = {**view, "limit": 50, **({"cursor": cursor} if cursor else {})}
        r = await http.get(
            f"{reporting}/v1/reports/departments/{dept}/users",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
        )
        r.raise_for_status()
        cursor = r.json().get("next_cursor")
        if not cursor:
            break
        cursors.append(cursor)
    return cursors


async def measure(
    http: httpx.AsyncClient, base: str, queries: list[str], n: int, fragment: bool
) -> list[float]:
    """``n`` requests, one at a time, cycling through ``queries``; seconds each."""
    headers = {"HX-Request": "true"} if fragment else {}
    out: list[float] = []
    for i in range(n):
        started = time.perf_counter()
        r = await http.get(f"{base}?{queries[i % len(queries)]}", headers=headers)
        out.append(time.perf_counter() - started)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        assert "users-table" in r.text or "No users match" in r.text
    return out


async def main(args: argparse.Namespace) -> None:
    async with target_stack(args) as (api, stack):
        console = stack.url("console") if stack is not None else args.console
        admin = await api.create_department(name=f"Bench EMS {uuid.uuid4().hex[:4]}")
        dept = uuid.UUID(admin.department_id)
        await api.wait_reported(admin, admin.email, timeout=60)
        process = reporting_process(api.urls["reporting"])
        db = args.reporting_db or process.environ()["PRODIGY_DATABASE_URL"]
        dsn = make_url(db).set(drivername="postgresql").render_as_string(hide_password=False)
        print(f"seeding {args.members:,} members by COPY ...", flush=True)
        groups = await seed(dsn, dept, args.members, 0)
        try:

            async def seeded() -> bool:
                rows = await api.http.get(
                    api.url("reporting", f"/v1/reports/departments/{dept}/users"),
                    params={"limit": "1", "q": "e-000001"},
                    headers=admin.headers,
                )
                return rows.status_code == 200 and len(rows.json()["items"]) == 1

            await wait_for(seeded, what="the seeded rows")
            views = page_requests(groups)
            queries = [console_query(v) for v in views]
            for view in views[:6]:
                for cursor in (
                    await deep_cursors(api.http, api.urls["reporting"], dept, admin.token, view)
                )[4::5]:
                    queries.append(console_query(view, cursor))
            base = f"{console}/departments/{dept}/users"
            cookies = {"prodigy_session": admin.token}
            async with httpx.AsyncClient(cookies=cookies, timeout=30) as http:
                await measure(http, base, queries, 30, fragment=False)  # warm-up
                load = os.getloadavg()[0]
                full = await measure(http, base, queries, args.n, fragment=False)
                fragment = await measure(http, base, queries, args.n, fragment=True)
        finally:
            if args.keys_dir:
                await unseed(dsn, dept)

    print(f"\nconsole users page, one department of {args.members + 1:,} members, limit 50")
    print(f"(machine: {os.cpu_count()} cores, 1-min load average {load:.1f} when measuring)")
    for label, timed in (("full page", full), ("htmx fragment", fragment)):
        p50, p95, p99 = percentiles(timed)
        print(
            f"  {label:<14} {len(timed)} requests: "
            f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms"
        )
    print("  target: p95 of the full page under 150 ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_target_arguments(parser)
    parser.add_argument("--console", default="http://127.0.0.1:8100", help="with --keys-dir")
    parser.add_argument("--reporting-db", help="reporting's database URL (else from its process)")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("-n", type=int, default=300, help="requests of each kind")
    asyncio.run(main(parser.parse_args()))
