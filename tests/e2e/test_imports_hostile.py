"""Hostile spreadsheets against the running membership service: each refused with a 422
naming the problem, the service's memory (and its reader child's) within a budget, and
/readyz answering within a second while an upload is read.

Before: a 32 KB file declaring ``A1:XFD2001`` grew membership by 637 MB, a 129 KB
shared-strings bomb took 35.7 s and 275 MB, and health checks slowed to 562 ms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from tests import hostile_files
from tests.e2e.import_support import import_status, upload, wait_import
from tests.support import Admin, Api, problem_type

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
# What the service and its reader child may grow by over all the uploads below.
SERVICE_BUDGET = 120 * MB
CHILD_PEAK_BUDGET = 300 * MB


def _processes(stack: Any) -> tuple[psutil.Process, list[psutil.Process]]:
    service = psutil.Process(stack.pids()["membership"])
    return service, service.children(recursive=True)


def _peak(process: psutil.Process) -> int:
    """The highest resident size the process ever had (Linux's VmHWM)."""
    with open(f"/proc/{process.pid}/status") as status:
        line = next(x for x in status if x.startswith("VmHWM"))
    return int(line.split()[1]) * 1024


@pytest.fixture(scope="module")
async def admin(api: Api) -> Admin:
    return await api.create_department()


HOSTILE: list[tuple[str, Callable[[], bytes], str]] = [
    ("shared-strings bomb", hostile_files.shared_strings_bomb, "expands 41"),
    ("many shared strings", hostile_files.many_shared_strings, "more than 500,000 entries"),
    ("high-ratio part", hostile_files.high_ratio_part, "a compression bomb"),
    ("too much in all", hostile_files.too_much_in_all, "would expand to 300 MB"),
    ("many parts", hostile_files.many_parts, "has 1,009 parts"),
    ("XML entities", hostile_files.entity_expansion, "declares XML entities"),
]


async def test_hostile_files_are_refused_within_a_memory_budget(
    api: Api, admin: Admin, controllable: Any
) -> None:
    service, _ = _processes(controllable)
    before = service.memory_info().rss
    for what, build, says in HOSTILE:
        data = build()
        started = time.perf_counter()
        r = await upload(api, admin, data, file_name="users.xlsx")
        seconds = time.perf_counter() - started
        assert r.status_code == 422, (what, r.text)
        assert problem_type(r) == "unsafe-file", (what, r.text)
        body = r.json()
        assert says in body["detail"], (what, body["detail"])
        assert body["errors"][0]["field"] == "file"
        assert seconds < 30, f"{what}: {seconds:.1f} s"
    # The declared dimension is ignored: read as the two columns it has (a preview).
    r = await upload(
        api, admin, hostile_files.declared_huge_dimension(), file_name="dim.xlsx", dry_run=True
    )
    assert r.status_code == 202, r.text
    done = await wait_import(api, admin, r.json()["import_id"])
    assert done["total_rows"] == 2000 and done["counts"]["created"] == 2000
    assert done["columns"] == {"name": "Name", "email": "Email"}

    service, children = _processes(controllable)
    grown = service.memory_info().rss - before
    assert grown < SERVICE_BUDGET, f"membership grew by {grown / MB:.0f} MB"
    readers = [c for c in children if "spawn" in " ".join(c.cmdline())]
    assert readers, "the uploads were read in a child process"
    for reader in readers:
        assert _peak(reader) < CHILD_PEAK_BUDGET, f"reader peaked at {_peak(reader) / MB:.0f} MB"


async def test_the_service_stays_ready_while_a_big_upload_is_read(api: Api, admin: Admin) -> None:
    data = hostile_files.workbook(hostile_files.people(30_000, "ready"))
    slowest = 0.0
    answers = 0

    timeline: list[tuple[float, float]] = []
    t0 = time.perf_counter()

    async def poll_ready(until: asyncio.Task[Any]) -> None:
        nonlocal slowest, answers
        while not until.done():
            started = time.perf_counter()
            r = await api.http.get(api.url("membership", "/readyz"), timeout=5)
            slowest = max(slowest, time.perf_counter() - started)
            timeline.append((started - t0, time.perf_counter() - started))
            answers += r.status_code == 200
            await asyncio.sleep(0.1)

    uploading = asyncio.create_task(upload(api, admin, data, file_name="big.xlsx", dry_run=True))
    await poll_ready(uploading)
    r = await uploading
    assert r.status_code == 202, r.text
    assert answers >= 3, "the upload took long enough to check"
    slow = [(round(at, 1), round(took, 2)) for at, took in timeline if took > 0.25]
    assert slowest < 1.0, f"/readyz took {slowest:.2f} s during the upload (at s, took s: {slow})"
    status = await import_status(api, admin, r.json()["import_id"])
    assert status["total_rows"] == 30_000
