"""Benchmark reporting's read side: the users table and its export at 100,000 members.

This measures the READ SIDE ONLY. The 100,000 members of one department (with
realistic variety: roles, statuses, groups, employee IDs, accented names, a few
removed people who must not show) are written straight into reporting's database
with COPY; no events are produced or projected (the projection has its own
benchmark, ``bench/replay_reporting.py``).

Starts its own stack (temporary data directory, free ports) unless ``--keys-dir``
and the URLs of a running one are given; reporting's process is found by the port
it listens on, its database from that process's ``PRODIGY_DATABASE_URL`` (or
``--reporting-db``). Then, against the running reporting service over HTTP:

  (a) p50/p95/p99 of ``-n`` filtered, sorted pages (limit 50): every sort both ways,
      role/status/group filters and their combinations, searches, and pages deep in
      a walk through the cursor (target: p99 under 50 ms), each with its ``total``
      (also shown apart by how it was counted: from the kept counts, up to 1,000 rows
      for a search or a group, or not at all for a search under 3 characters);
  (b) a CSV export of all 100,000 rows, three times: total time (target under 3 s)
      and the growth of the reporting process's peak RSS while it streams, sampled
      every ~10 ms (target under 50 MB); the same for a filtered CSV and for XLSX
      (no target).

With ``--under-load 50``, 50 admins of other departments add people as fast as the
answers come while (a) runs (the users table's target holds under that load too).

Also printed: the CPU the reporting process spent (per page request, per export)
and the load average, since the figures are wall-clock times on a shared machine.

Run:  python bench/reporting_reads.py            (about two minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import threading
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import psutil
from harness import add_target_arguments, target
from load_add_users import Tally, keep_adding
from sqlalchemy.engine import make_url

from prodigy_users.reporting.rules import sort_name
from tests.support import Admin, Api, wait_for

FIRST = (
    "Ana", "José", "Zoë", "Émile", "Łukasz", "Søren", "Renée", "João", "Chloé", "Mia",
    "Noah", "Liam", "Olivia", "Emma", "Ava", "Lucas", "Mateo", "Aïcha", "Fatima", "Yusuf",
    "Hana", "Kenji", "Priya", "Arjun", "Ingrid", "Björn", "Siobhán", "Niamh", "Dmitri", "Olga",
    "Carlos", "María", "Lucía", "Pat", "Sam", "Alex", "Jordan", "Taylor", "Chris", "Robin",
)  # fmt: skip
LAST = (
    "Lima", "Núñez", "Zola", "Müller", "Kowalski", "Ødegaard", "Dubois", "Silva", "García",
    "O'Brien", "Smith", "Johnson", "Brown", "Nguyen", "Kim", "Patel", "Singh", "Rossi",
    "Bianchi", "Schmidt", "Fischer", "Novak", "Horvat", "Yilmaz", "Kaya", "Sato", "Tanaka",
    "Andersen", "Larsen", "Jensen", "Martin", "Bernard", "Lefèvre", "Moreau", "Costa",
)  # fmt: skip
GROUPS = (
    "Night shift", "Day shift", "Weekend crew", "Paramedics", "EMT basic", "Dispatch",
    "Station 1", "Station 2", "Station 3", "Station 4", "Hazmat", "Water rescue",
    "Training officers", "Probationary", "Reserve", "Admin staff", "Fleet", "Wellness",
    "Peer support", "Command",
)  # fmt: skip
COLUMNS = (
    "department_id", "account_id", "name", "sort_name", "email", "role", "status",
    "employee_id", "groups", "joined_at", "updated_at", "removed_at",
)  # fmt: skip


def percentiles(values: Sequence[float]) -> tuple[float, float, float]:
    """p50, p95, p99 in milliseconds."""
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49] * 1000, q[94] * 1000, q[98] * 1000


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def members(
    dept: uuid.UUID, groups: list[uuid.UUID], current: int, removed: int, seed: int
) -> list[tuple[Any, ...]]:
    """``current`` members and ``removed`` former members as rows of reporting's ``users``."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    rows = []
    for i in range(current + removed):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        local = _ascii(name).replace(" ", ".").replace("'", "")
        joined = now - timedelta(seconds=rng.uniform(0, 5 * 365 * 86400))
        updated = joined + timedelta(seconds=rng.uniform(0, (now - joined).total_seconds()))
        roll = rng.random()
        role = "admin" if roll < 0.01 else "officer" if roll < 0.06 else "member"
        # Most people are in one or two groups; some in none, a few in many.
        in_groups = rng.sample(groups, k=rng.choices((0, 1, 2, 3, 5), (15, 45, 25, 10, 5))[0])
        rows.append(
            (
                dept,
                uuid.UUID(int=rng.getrandbits(128), version=4),
                name,
                sort_name(name),
                f"{local}.{i}@example.org",
                role,
                "inactive" if rng.random() < 0.15 else "active",
                f"E-{i:06d}" if rng.random() < 0.8 else None,
                in_groups,
                joined,
                updated,
                updated if i >= current else None,
            )
        )
    return rows


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU the process has used so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


def reporting_process(url: str) -> psutil.Process:
    """The process listening on the reporting service's port."""
    port = urlsplit(url).port
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    raise SystemExit(f"no process listens on {url}; is reporting running here?")


async def seed(dsn: str, dept: uuid.UUID, current: int, removed: int) -> list[uuid.UUID]:
    """COPY the department's groups and members into reporting's database; the group ids."""
    groups = [uuid.uuid4() for _ in GROUPS]
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "groups",
            records=[(g, dept, n, now) for g, n in zip(groups, GROUPS, strict=True)],
            columns=["group_id", "department_id", "name", "updated_at"],
        )
        await conn.copy_records_to_table(
            "users", records=members(dept, groups, current, removed, seed=5), columns=COLUMNS
        )
        await recount(conn, dept)
        await conn.execute("ANALYZE users")
    finally:
        await conn.close()
    return groups


async def recount(conn: asyncpg.Connection, dept: uuid.UUID) -> None:
    """The department's kept counts (``user_counts``) as its rows are now: the projection
    keeps them, and COPY went around it."""
    async with conn.transaction():
        await conn.execute("DELETE FROM user_counts WHERE department_id = $1", dept)
        await conn.execute(
            "INSERT INTO user_counts (department_id, role, status, members) "
            "SELECT department_id, role, status, count(*) FROM users "
            "WHERE department_id = $1 AND removed_at IS NULL GROUP BY department_id, role, status",
            dept,
        )


async def unseed(dsn: str, dept: uuid.UUID) -> None:
    """Take the seeded rows out again (a running stack that is not ours)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM users WHERE department_id = $1", dept)
        await conn.execute("DELETE FROM groups WHERE department_id = $1", dept)
        await conn.execute("DELETE FROM user_counts WHERE department_id = $1", dept)
    finally:
        await conn.close()


def page_requests(groups: list[uuid.UUID]) -> list[dict[str, Any]]:
    """The mix of views measured: one request each (walks add pages via the cursor)."""
    g = [str(x) for x in groups]
    sorts = ["name", "email", "role", "status", "employee_id", "joined_at", "updated_at"]
    views: list[dict[str, Any]] = [{"sort": s} for s in sorts] + [{"sort": "-" + s} for s in sorts]
    views += [
        {"role": "member", "sort": "-joined_at"},
        {"role": ["admin", "officer"], "sort": "name"},
        {"role": "admin", "sort": "-updated_at"},
        {"status": "inactive", "sort": "email"},
        {"status": "active", "role": "officer", "sort": "-name"},
        {"group": g[0], "sort": "name"},
        {"group": f"{g[1]},{g[2]}", "status": "active", "sort": "-joined_at"},
        {"group": g[19], "role": "officer", "sort": "employee_id"},
        {"group": g[5], "role": "admin", "status": "inactive", "sort": "name"},
        {"q": "lima", "sort": "name"},
        {"q": "NUNEZ", "sort": "-joined_at"},
        {"q": "zoe mull", "sort": "email"},
        {"q": "e-0420", "sort": "employee_id"},
        {"q": "joao.silva", "role": "member", "sort": "name"},
        {"q": "an", "status": "inactive", "sort": "-updated_at"},
        {"q": "xyzzy", "sort": "name"},
    ]
    return views


@dataclass
class Timed:
    """One measured request, and its view's ``total``."""

    view: str
    seconds: float
    total: int | None
    exact: bool

    @property
    def count_kind(self) -> str:
        """How the view was counted: from the kept counts, up to the cap, or not at all."""
        return "not counted" if self.total is None else "exact" if self.exact else "capped"

    @property
    def counted(self) -> str:
        """The total as a page would say it."""
        if self.total is None:
            return "not counted"
        return f"{self.total:,}" if self.exact else f"more than {self.total:,}"


async def measure_pages(api: Api, admin: Admin, groups: list[uuid.UUID], n: int) -> list[Timed]:
    """``n`` page requests: each view's first page and, in turn, pages deeper in its walk."""
    url = api.url("reporting", f"/v1/reports/departments/{admin.department_id}/users")
    views = page_requests(groups)
    cursors: dict[int, str | None] = {}
    timed: list[Timed] = []
    i = 0
    while len(timed) < n:
        k = i % len(views)
        i += 1
        params = {**views[k], "limit": "50"}
        cursor = cursors.get(k)
        if cursor:
            params["cursor"] = cursor
        t0 = time.perf_counter()
        r = await api.http.get(url, params=params, headers=admin.headers)
        elapsed = time.perf_counter() - t0
        assert r.status_code == 200, r.text
        body = r.json()
        cursors[k] = body["next_cursor"]  # the next round reads the next page
        timed.append(Timed(str(views[k]), elapsed, body.get("total"), body.get("total_exact")))
    return timed


class RssSampler:
    """Samples a process's RSS every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, process: psutil.Process, interval: float = 0.01) -> None:
        self.process = process
        self.interval = interval
        self.baseline: int = process.memory_info().rss
        self.peak: int = self.baseline
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        """Peak minus the RSS before the request, in MiB."""
        return (self.peak - self.baseline) / 2**20


@dataclass
class Exported:
    """One export: how long, how big, how many rows, how much the service grew."""

    fmt: str
    seconds: float
    first_byte: float
    size: int
    rows: int
    growth_mb: float
    samples: int
    cpu: float  # reporting's CPU seconds for it


async def export(
    api: Api, admin: Admin, process: psutil.Process, fmt: str, params: dict[str, str]
) -> Exported:
    """Download the export, streamed, while sampling the service's RSS."""
    url = api.url("reporting", f"/v1/reports/departments/{admin.department_id}/users/export")
    size = newlines = 0
    first: float | None = None
    cpu = cpu_seconds(process)
    with RssSampler(process) as rss:
        t0 = time.perf_counter()
        async with api.http.stream(
            "GET", url, params={"format": fmt, **params}, headers=admin.headers, timeout=300
        ) as r:
            assert r.status_code == 200, (await r.aread()).decode()
            async for chunk in r.aiter_raw():
                if first is None:
                    first = time.perf_counter() - t0
                size += len(chunk)
                newlines += chunk.count(b"\n")
        elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(process) - cpu
    rows = newlines - 1 if fmt == "csv" else -1
    return Exported(fmt, elapsed, first or elapsed, size, rows, rss.growth_mb, rss.samples, cpu)


@dataclass
class Adding(Tally):
    """A ``Tally`` of the background adds, with how long they ran."""

    seconds: float = 0.0


async def start_adding(api: Api, in_flight: int) -> Callable[[], Awaitable[Adding]]:
    """Start ``in_flight`` admins of as many new departments adding people (the load the
    users table must hold its times under); the returned coroutine stops them and
    gives their tally."""
    tally = Adding()
    if in_flight == 0:

        async def nothing() -> Adding:
            return tally

        return nothing
    admins = await asyncio.gather(*(api.create_department() for _ in range(in_flight)))
    stop = asyncio.Event()
    began = time.perf_counter()
    tasks = [asyncio.create_task(keep_adding(api, a, tally, stop.is_set)) for a in admins]

    async def stopped() -> Adding:
        stop.set()
        await asyncio.gather(*tasks)
        tally.seconds = time.perf_counter() - began
        return tally

    return stopped


async def main(args: argparse.Namespace) -> None:
    async with target(args) as api:
        admin = await api.create_department(name=f"Bench EMS {uuid.uuid4().hex[:4]}")
        dept = uuid.UUID(admin.department_id)
        await api.wait_reported(admin, admin.email, timeout=60)
        process = reporting_process(api.urls["reporting"])
        db = args.reporting_db or process.environ()["PRODIGY_DATABASE_URL"]
        dsn = make_url(db).set(drivername="postgresql").render_as_string(hide_password=False)

        print(f"seeding {args.members:,} members (+{args.removed:,} removed) by COPY ...")
        t0 = time.perf_counter()
        groups = await seed(dsn, dept, args.members, args.removed)
        print(f"  seeded in {time.perf_counter() - t0:.1f} s")
        try:

            async def seeded() -> bool:
                r = await api.http.get(
                    api.url("reporting", f"/v1/reports/departments/{dept}/users"),
                    params={"limit": "1", "q": "e-000001"},
                    headers=admin.headers,
                )
                return r.status_code == 200 and len(r.json()["items"]) == 1

            await wait_for(seeded, what="the seeded rows in the users table")
            await measure_pages(api, admin, groups, 40)  # warm-up: connections, plans, cache
            adding = await start_adding(api, args.under_load)
            load_before = os.getloadavg()[0]
            cpu = cpu_seconds(process)
            timed = await measure_pages(api, admin, groups, args.n)
            page_cpu = (cpu_seconds(process) - cpu) / len(timed)
            load_during = os.getloadavg()[0]
            tally = await adding()
            p50, p95, p99 = percentiles([t.seconds for t in timed])
            slowest = sorted(timed, key=lambda t: t.seconds)[-3:]
            everyone = [t for t in timed if t.view == str({"sort": "name"})]
            assert {(t.total, t.exact) for t in everyone} == {(args.members + 1, True)}

            expected = args.members + 1  # the seeded people and the department's admin
            csv_runs = [await export(api, admin, process, "csv", {}) for _ in range(3)]
            for run in csv_runs:
                assert run.rows == expected, f"CSV had {run.rows} rows, not {expected}"
            filtered = await export(
                api, admin, process, "csv", {"role": "member", "sort": "-joined_at"}
            )
            xlsx = await export(api, admin, process, "xlsx", {})
            load_after = os.getloadavg()[0]
        finally:
            if args.keys_dir:
                await unseed(dsn, dept)

    print(f"\nreporting read side, one department of {expected:,} current members")
    print(
        f"(machine: {os.cpu_count()} cores, 1-min load average {load_before:.1f} before the "
        f"pages, {load_after:.1f} after the exports; other work on it slows every figure)"
    )
    print(f"\n(a) users table pages (limit 50), {len(timed)} requests one at a time, over HTTP")
    print(f"    p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   p99 {p99:6.1f} ms   (target p99 < 50 ms)")
    print(f"    reporting's CPU per request: {page_cpu * 1000:.1f} ms")
    if args.under_load:
        rate = len(tally.latencies) / max(tally.seconds, 1e-9)
        print(
            f"    meanwhile {args.under_load} admins of other departments added people: "
            f"{len(tally.latencies)} adds in {tally.seconds:.1f} s = {rate:.1f}/s, "
            f"{sum(tally.errors.values())} errors (load average {load_during:.1f} at the end)"
        )
    print("    by how `total` was counted (kept counts, up to 1,000 rows, not counted):")
    for kind in ("exact", "capped", "not counted"):
        these = [t.seconds for t in timed if t.count_kind == kind]
        if len(these) >= 2:
            k50, k95, k99 = percentiles(these)
            print(
                f"      {kind:<12} {len(these):4} requests   p50 {k50:6.1f} ms   "
                f"p95 {k95:6.1f} ms   p99 {k99:6.1f} ms"
            )
    for t in reversed(slowest):
        print(f"    slow: {t.seconds * 1000:6.1f} ms  {t.view}  (total: {t.counted})")
    print("\n(b) exports, streamed; RSS growth = reporting's peak RSS minus its RSS before")
    print(
        f"    {'export':<34} {'rows':>8} {'size':>9} {'1st byte':>9} {'total':>8} "
        f"{'RSS growth':>11} {'samples':>8} {'CPU':>6}"
    )
    labelled = [
        *((f"CSV, all rows, by name (run {i + 1})", run) for i, run in enumerate(csv_runs)),
        ("CSV, role=member, -joined_at", filtered),
        ("XLSX, all rows, by name", xlsx),
    ]
    for label, run in labelled:
        rows = f"{run.rows:,}" if run.rows >= 0 else "-"
        print(
            f"    {label:<34} {rows:>8} {run.size / 2**20:>7.1f}MB {run.first_byte:>8.2f}s "
            f"{run.seconds:>7.2f}s {run.growth_mb:>9.1f}MB {run.samples:>8} {run.cpu:>5.2f}s"
        )
    worst = max(csv_runs, key=lambda r: r.seconds)
    print(
        f"\n    CSV worst of 3: {worst.seconds:.2f} s (target < 3 s), "
        f"RSS growth {max(r.growth_mb for r in csv_runs):.1f} MB (target < 50 MB)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=300, help="page requests measured (>= 200)")
    parser.add_argument("--members", type=int, default=100_000, help="current members seeded")
    parser.add_argument("--removed", type=int, default=2_000, help="removed members seeded")
    parser.add_argument(
        "--under-load",
        type=int,
        default=0,
        metavar="N",
        help="while the pages are measured, N admins of other departments add people "
        "as fast as answers come (bench/load_add_users.py's load; 50 for the target)",
    )
    parser.add_argument("--reporting-db", help="reporting's database URL (default: its env)")
    add_target_arguments(parser)
    asyncio.run(main(parser.parse_args()))
